"""Compare the trained network with bicubic: side-by-side PNGs and metrics, or a standard benchmark.

Usage:
    python test.py [--data data] [--checkpoint-dir checkpoints | --checkpoint PATH] [--results-dir results]
    python test.py --benchmark ../shared/data/Set5 [--json results/set5.json] [--checkpoint PATH]
    python test.py --benchmark ../shared/data/Set5 --jpeg 75 --model jpeg   # the shipped JPEG model for q75

The first writes RESULTS/compare/NAME.png (bicubic | model | original, each with PSNR and SSIM) and
RESULTS/metrics.csv for the prepared test pairs. The second scores every image of a folder with
the SRCNN paper's protocol (Y channel, borders shaved by the scale) against bicubic.
Without --checkpoint: the best weights in --checkpoint-dir, else the shipped pretrained model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Keep TensorFlow's start-up chatter out of the way.


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", type=Path, default=None, help="prepared pairs (default: the named run's own data, else data)"
    )
    parser.add_argument("--checkpoint-dir", type=Path, default=None, help="default: checkpoints")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a .weights.h5 file beside its config.json")
    parser.add_argument(
        "--model",
        choices=("clean", "jpeg", "jpeg-low", "jpeg-high"),
        default=None,
        help="a shipped model instead: clean (lossless inputs), jpeg (the JPEG model for --jpeg's quality:"
        " jpeg-low up to 82, else jpeg-high; jpeg-high without --jpeg), or one of those two by name",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=None, help="default: the named run's own results folder, else results"
    )
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="default: test")
    parser.add_argument("--benchmark", type=Path, default=None, help="folder of original images to score")
    parser.add_argument("--json", type=Path, default=None, help="with --benchmark: write the scores here")
    parser.add_argument("--compare-dir", type=Path, default=None, help="with --benchmark: write comparisons here")
    parser.add_argument("--scale", type=int, default=2, help="with --benchmark: the upscaling factor (default: 2)")
    parser.add_argument(
        "--jpeg",
        type=int,
        metavar="Q",
        help="with --benchmark: save the half-size image as a JPEG of quality Q (Pillow) before enlarging it",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.jpeg is not None and not 1 <= args.jpeg <= 100:
        parser.error("--jpeg takes a quality from 1 to 100")
    if args.jpeg is not None and args.benchmark is None:
        parser.error("--jpeg goes with --benchmark DIR (it degrades the benchmark's images)")
    if args.model is not None and (args.checkpoint is not None or args.checkpoint_dir is not None):
        parser.error("--model names a shipped model; give it or --checkpoint/--checkpoint-dir, not both")
    from srcnn.checkpoints import CheckpointError, choose_weights, load_for_inference, shipped_weights
    from srcnn.dataset import DataError

    try:
        weights_path = (
            shipped_weights(args.model, args.jpeg)
            if args.model
            else choose_weights(args.checkpoint, args.checkpoint_dir)
        )
        model, config = load_for_inference(weights_path)
        print(f"model: {weights_path} ({config})")
        if args.benchmark is not None:
            return run_benchmark(model, args)
        from srcnn.evaluation import format_table, test_split

        data_dir, results_dir = run_folders(args, weights_path)
        print(f"data: {data_dir / args.split}")
        scores = test_split(model, data_dir, results_dir, args.split)
    except (CheckpointError, DataError, ValueError, OSError) as error:
        print(f"test.py: error: {error}", file=sys.stderr)
        return 2
    print(format_table(scores))
    print(f"comparisons: {results_dir / 'compare'}   metrics: {results_dir / 'metrics.csv'}")
    return 0


def run_folders(args: argparse.Namespace, weights_path: Path) -> tuple[Path, Path]:
    """--data and --results-dir; when not given and a run was named (--checkpoint-dir or --checkpoint),
    that run's own folders from its config.json (so `--checkpoint-dir checkpoints/demo` tests the
    demo), else data/ and results/."""
    from srcnn.checkpoints import read_run_record

    record = read_run_record(weights_path.parent) if args.checkpoint_dir or args.checkpoint else {}
    recorded_data, recorded_results = record.get("data", {}).get("dir"), record.get("results_dir")
    data_dir = args.data or (Path(recorded_data) if recorded_data and Path(recorded_data).is_dir() else Path("data"))
    # The run's own results folder only for the run's own data: other scores must not replace its metrics.
    own_data = recorded_data is not None and data_dir.resolve() == Path(recorded_data).resolve()
    results_dir = args.results_dir or (Path(recorded_results) if own_data and recorded_results else Path("results"))
    return data_dir, results_dir


def run_benchmark(model, args: argparse.Namespace) -> int:
    from srcnn.evaluation import benchmark_image, benchmark_mean, flat_region_summary, format_benchmark_table
    from srcnn.files import write_text_atomic
    from srcnn.images import ImageReadError, load_rgb
    from srcnn.preparation import find_images

    if not args.benchmark.is_dir():
        raise ValueError(f"{args.benchmark}: no such folder")
    rows, failed = [], 0
    if args.compare_dir is not None:
        args.compare_dir.mkdir(parents=True, exist_ok=True)
    for path in find_images(args.benchmark):
        try:
            compare_path = args.compare_dir / f"{path.stem}.png" if args.compare_dir else None
            rows.append(
                {"name": path.stem, **benchmark_image(model, load_rgb(path), args.scale, compare_path, args.jpeg)}
            )
        except (ImageReadError, ValueError) as error:
            print(f"skipped {path}: {error}", file=sys.stderr)
            failed += 1
    if not rows:
        raise ValueError(f"{args.benchmark}: no usable images")
    if args.jpeg is not None:
        print(f"input: the half-size image saved as JPEG quality {args.jpeg} (Pillow), then bicubic x{args.scale}")
    print(format_benchmark_table(rows))
    below = sum(row["psnr_y"] < row["bicubic_psnr_y"] for row in rows)
    print(f"{below} of {len(rows)} image(s) below bicubic in Y-PSNR")
    summary = flat_region_summary(rows)
    if summary:
        print(summary)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"images": rows, "mean": benchmark_mean(rows), "jpeg_quality": args.jpeg}
        write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
        print(f"scores: {args.json}")
    if failed:
        print(f"{failed} image(s) skipped, {len(rows)} scored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
