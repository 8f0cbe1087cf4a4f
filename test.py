"""Compare the trained network with bicubic on the test pairs: PNGs side by side and metrics.

Usage: python test.py [--data data] [--checkpoint-dir checkpoints | --checkpoint PATH] [--results-dir results]

Writes RESULTS/compare/NAME.png (bicubic | model | original, each with PSNR and SSIM) and
RESULTS/metrics.csv (per image and the mean), and prints a summary table.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Keep TensorFlow's start-up chatter out of the way.


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="prepared pairs (default: data)")
    parser.add_argument("--checkpoint-dir", type=Path, default=Path("checkpoints"), help="default: checkpoints")
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="a .weights.h5 file (default: best in --checkpoint-dir)"
    )
    parser.add_argument("--results-dir", type=Path, default=Path("results"), help="default: results")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="default: test")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from srcnn.dataset import DataError
    from srcnn.evaluation import format_table, test_split
    from srcnn.training import BEST_WEIGHTS_NAME, CheckpointError, load_for_inference

    weights_path = args.checkpoint or args.checkpoint_dir / BEST_WEIGHTS_NAME
    try:
        model, config = load_for_inference(weights_path)
        scores = test_split(model, args.data, args.results_dir, args.split)
    except (CheckpointError, DataError, ValueError, OSError) as error:
        print(f"test.py: error: {error}", file=sys.stderr)
        return 2
    print(f"model: {weights_path} ({config})")
    print(format_table(scores))
    print(f"comparisons: {args.results_dir / 'compare'}   metrics: {args.results_dir / 'metrics.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
