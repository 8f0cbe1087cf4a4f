"""Prepare (low-res, high-res) training pairs from a folder of photos, as the blog does.

Usage: python prep_images.py --input data/raw --output data [--size 128] [--scale 2]

Each photo is pasted centred on a white square, resized to SIZE x SIZE (high-res), and its
low-res twin is that square shrunk by SCALE with bicubic and enlarged back with bicubic.
Pairs go to OUTPUT/{train,val,test}/{hr,lr}/NAME.png with OUTPUT/manifest.json.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from srcnn import degradations
from srcnn.config import PrepConfig
from srcnn.files import read_names
from srcnn.preparation import prepare_folder

DEFAULTS = PrepConfig()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, type=Path, help="folder of photos, searched recursively")
    parser.add_argument("--output", default=Path("data"), type=Path, help="where the pairs go (default: data)")
    parser.add_argument("--size", type=int, default=DEFAULTS.size, help="side of the high-res square (default: 128)")
    parser.add_argument("--scale", type=int, default=DEFAULTS.scale, help="downscale factor for low-res (default: 2)")
    parser.add_argument("--val-fraction", type=float, default=DEFAULTS.val_fraction, help="default: 0.1")
    parser.add_argument("--test-fraction", type=float, default=DEFAULTS.test_fraction, help="default: 0.1")
    parser.add_argument(
        "--whole",
        action="store_true",
        help="keep each photo's own size (cropped to a multiple of --scale) instead of the blog's white square;"
        " for benchmark sets and for training on crops (train.py --patch-size)",
    )
    parser.add_argument("--split", choices=("train", "val", "test"), help="put every photo into this split")
    parser.add_argument(
        "--jpeg-quality",
        metavar="LOW-HIGH",
        help="save each low-res image as a JPEG of a quality drawn from LOW-HIGH (e.g. 70-95) before"
        " enlarging it, as real photos are: for a model that cleans JPEG artifacts",
    )
    parser.add_argument(
        "--background",
        choices=("white", "black"),
        default="white",
        help="the square's colour (default: white, the blog's); black pairs are named NAME_black.png",
    )
    parser.add_argument(
        "--degradation",
        default=DEFAULTS.degradation,
        metavar="NAME",
        help="how the small image is made (default: bicubic, the blog's PIL bicubic): one of"
        f" {', '.join(degradations.SUITE)} (optionally NAME:VALUE, e.g. blur:1.2), or mix: each pair drawn"
        " from a seeded mix of them (recorded per pair in the manifest), for a model of any small photo;"
        " mix:NAME,NAME draws from those ways only (e.g. mix:sharpen: unsharp masks of many strengths),"
        " NAME=WEIGHT sets a way's weight (mix:cv2-cubic=3,cv2-nearest=1)",
    )
    parser.add_argument(
        "--copies",
        "--jpeg-copies",
        type=int,
        default=1,
        help="with --jpeg-quality or --degradation mix: pairs per photo, each its own quality or draw",
    )
    parser.add_argument(
        "--val-names",
        type=Path,
        metavar="FILE",
        help="a file naming input images (one per line, # comments) that go to val whatever else says",
    )
    parser.add_argument(
        "--first-pass",
        type=Path,
        metavar="WEIGHTS",
        help="enlarge each small image with this model first (e.g. the x2 model's best.weights.h5), then bicubic"
        " to the full size: pairs for a x3 or x4 model that runs after it",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    parser.add_argument(
        "--prune", action="store_true", help="delete the pairs of photos since removed from --input (kept by default)"
    )
    parser.add_argument("--force", action="store_true", help="rewrite pairs even when they are up to date")
    return parser


def quality_range(text: str) -> tuple[int, int]:
    """'70-95' -> (70, 95); '90' -> (90, 90)."""
    low, _, high = text.partition("-")
    try:
        return int(low), int(high or low)
    except ValueError:
        raise ValueError(f"--jpeg-quality takes LOW-HIGH or one quality, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        val_names = read_names(args.val_names) if args.val_names else ()
        jpeg_quality = quality_range(args.jpeg_quality) if args.jpeg_quality else ()
        config = PrepConfig(
            size=args.size,
            scale=args.scale,
            val_fraction=args.val_fraction,
            test_fraction=args.test_fraction,
            mode="whole" if args.whole else "blog",
            split=args.split or "",
            val_names=val_names,
            jpeg_quality=jpeg_quality,
            degradation=args.degradation,
            copies=args.copies,
            background=args.background,
            first_pass=str(args.first_pass.resolve()) if args.first_pass else "",
        )
        summary = prepare_folder(
            args.input, args.output, config, workers=args.workers, force=args.force, prune=args.prune
        )
    except (ValueError, OSError) as error:
        print(f"prep_images.py: error: {error}", file=sys.stderr)
        return 2
    counts = summary.counts
    print(
        f"{summary.written} written, {summary.up_to_date} up to date, {summary.skipped} skipped -> {args.output}"
        f" (train {counts['train']}, val {counts['val']}, test {counts['test']})"
    )
    if summary.manifest is None:
        print(f"prep_images.py: error: no usable images found under {args.input}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
