"""Compare the trained network with bicubic: side-by-side PNGs and metrics, or a standard benchmark.

Usage:
    python test.py [--data data] [--checkpoint-dir checkpoints | --checkpoint PATH] [--results-dir results]
    python test.py --benchmark ../shared/data/Set5 [--json results/set5.json] [--checkpoint PATH]
    python test.py --benchmark ../shared/data/Set5 --jpeg 75 --model jpeg   # the shipped JPEG model for q75
    python test.py --benchmark ../shared/data/Set5 --degradation all --model auto   # every way of making it small
    python test.py --benchmark ../shared/data/Set5 --scale 3 --ensemble   # 8 flips and turns averaged

The first writes RESULTS/compare/NAME.png (bicubic | model | original, each with PSNR and SSIM),
RESULTS/compare/index.html (a page to compare them at full size: slider, zoom, a table) and
RESULTS/metrics.csv for the prepared test pairs. The second scores every image of a folder with
the SRCNN paper's protocol (Y channel, borders shaved by the scale) against bicubic; --compare-dir
gives it the same PNGs and page. --scale 3 or 4 scores the shipped x3 or x4 model (or your own);
with --model, that x2 model is its first pass (auto: the one upscale.py picks for each image).
Without --checkpoint: the best weights in --checkpoint-dir, else the shipped pretrained model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from srcnn.config import SHIPPED_NAMES
from srcnn.degradations import SUITE

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
        choices=("auto", *SHIPPED_NAMES),
        default=None,
        help="a shipped model instead: clean (PIL-bicubic inputs), unfiltered (OpenCV's cubic resize, nearest"
        " neighbour), sharpened (unsharp-masked after the downscale), general (a mix of downscalers), jpeg (the"
        " JPEG model for --jpeg's quality: jpeg-low up to 82, else jpeg-high; jpeg-high without --jpeg), one of"
        " those two by name, or"
        " auto (with --benchmark): for each small image the one upscale.py picks",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=None, help="default: the named run's own results folder, else results"
    )
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="default: test")
    parser.add_argument("--benchmark", type=Path, default=None, help="folder of original images to score")
    parser.add_argument("--json", type=Path, default=None, help="with --benchmark: write the scores here")
    parser.add_argument("--compare-dir", type=Path, default=None, help="with --benchmark: write comparisons here")
    parser.add_argument(
        "--scale",
        type=int,
        help="with --benchmark: the enlargement (default: the model's, 2 for the shipped ones); x3 and x4: the"
        " shipped models for them (--model NAME: that x2 model first, then the second pass that follows it, as"
        " upscale.py runs them; auto: the one picked for each image), or yours",
    )
    parser.add_argument(
        "--degradation",
        metavar="NAME",
        help="with --benchmark: make the small image this way instead of PIL bicubic (one of"
        f" {', '.join(SUITE)}, or NAME:VALUE, e.g. blur:1.2), or all: one line per way",
    )
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="with --benchmark: score the mean of the model over the 8 flips and quarter turns of each small"
        " image (self-ensemble: about 9 times the time; docs/results.md)",
    )
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
    if args.scale is not None and args.benchmark is None:
        parser.error("--scale goes with --benchmark DIR (prepared pairs were made at one scale already)")
    if args.degradation is not None and args.benchmark is None:
        parser.error("--degradation goes with --benchmark DIR (it degrades the benchmark's images)")
    if args.ensemble and args.benchmark is None:
        parser.error("--ensemble goes with --benchmark DIR")
    if args.model == "auto" and args.benchmark is None:
        parser.error("--model auto goes with --benchmark DIR (it picks a model from each small image)")
    if args.model is not None and (args.checkpoint is not None or args.checkpoint_dir is not None):
        parser.error("--model names a shipped model; give it or --checkpoint/--checkpoint-dir, not both")
    if args.benchmark is not None and not args.benchmark.is_dir():
        parser.error(f"{args.benchmark}: no such folder")  # before any model loads
    try:
        recipes = benchmark_recipes(args.degradation)
    except ValueError as error:
        parser.error(str(error))
    from srcnn.precision import start_tensorflow

    start_tensorflow()
    from srcnn.checkpoints import CheckpointError, load_for_inference
    from srcnn.dataset import DataError

    try:
        if args.model == "auto":
            args.scale = args.scale or 2
            return run_benchmark(auto_picker(args.jpeg, args.scale), args, recipes)
        weights_path, first = chosen_weights(args)
        if args.benchmark is not None:
            from srcnn.passes import load_passes

            passes = load_passes(weights_path, first)
            trained = passes[-1].scale
            if args.scale not in (None, trained):
                raise CheckpointError(f"{weights_path}: a x{trained} model, not x{args.scale}")
            args.scale = trained
            after = f", after {passes[0].weights}" if len(passes) > 1 else ""
            print(f"model: {weights_path} (x{trained}{after}; {passes[-1].config})")
            return run_benchmark(passes, args, recipes)
        model, config = load_for_inference(weights_path)
        print(f"model: {weights_path} ({config})")
        from srcnn.evaluation import format_table, test_split

        data_dir, results_dir = run_folders(args, weights_path)
        print(f"data: {data_dir / args.split}")
        scores = test_split(model, data_dir, results_dir, args.split)
    except (CheckpointError, DataError, ValueError, OSError) as error:
        print(f"test.py: error: {error}", file=sys.stderr)
        return 2
    print(format_table(scores))
    print(f"comparisons: {results_dir / 'compare'}   page: {results_dir / 'compare' / 'index.html'}")
    print(f"metrics: {results_dir / 'metrics.csv'}")
    return 0


def chosen_weights(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """(the weights to test, the first pass to run before them in place of the one they name): a
    shipped model by name (x3 and x4 by --scale: checkpoints.shipped_passes), else --checkpoint or the
    run in --checkpoint-dir (choose_weights)."""
    from srcnn.checkpoints import choose_weights, shipped_passes, shipped_weights

    if args.scale not in (None, 2) and args.checkpoint is None and args.checkpoint_dir is None:
        return shipped_passes(args.model or "clean", args.scale, args.jpeg)
    if args.model:
        return shipped_weights(args.model, args.jpeg), None
    return choose_weights(args.checkpoint, args.checkpoint_dir), None


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


def benchmark_recipes(text: str | None) -> dict[str, dict | None]:
    """--degradation: {label: recipe} to score, in the suite's order for 'all'; {"": None} (PIL
    bicubic, the protocol) without it."""
    from srcnn import degradations

    if text is None:
        return {"": None}
    if text == "all":
        return dict(degradations.SUITE)
    recipe = degradations.parse(text)
    return {degradations.label(recipe): recipe}


def auto_picker(jpeg_quality: int | None, scale: int = 2):
    """--model auto: recipe -> a picker that gives each small image the shipped model upscale.py
    picks (checkpoints.auto_choice; a JPEG by its quality), as the passes checkpoints.shipped_passes
    gives for it (one at 2x), each loaded once."""
    from srcnn.checkpoints import auto_choice, shipped_passes
    from srcnn.passes import load_passes

    loaded = {}

    def picker_for(recipe: dict | None):
        quality = jpeg_quality or (recipe or {}).get("quality")

        def pick(small):
            name, _ = auto_choice(small, quality, scale)
            if name not in loaded:
                loaded[name] = load_passes(*shipped_passes(name, scale))
                print(f"model {name}: {', then '.join(str(step.weights) for step in loaded[name])}")
            return loaded[name], name

        return pick

    return picker_for


def run_benchmark(model, args: argparse.Namespace, recipes: dict[str, dict | None]) -> int:
    """Score every image of --benchmark for each recipe; `model` is one network, or (--model auto)
    a function of the recipe that gives the picker of auto_picker."""
    from srcnn.evaluation import (
        benchmark_image,
        benchmark_mean,
        degradation_summary,
        flat_region_summary,
        format_benchmark_table,
        format_degradation_table,
    )
    from srcnn.files import write_text_atomic
    from srcnn.images import ImageReadError, load_rgb
    from srcnn.preparation import find_images

    photos, failed = [], 0  # main() has refused a missing folder before any model loaded
    for path in find_images(args.benchmark):
        try:
            photos.append((path, load_rgb(path)))
        except ImageReadError as error:
            print(f"skipped {path}: {error}", file=sys.stderr)
            failed += 1
    if not photos:
        raise ValueError(f"{args.benchmark}: no usable images")
    page = None
    if args.compare_dir is not None:
        from srcnn.compare_page import Column, ComparePage, gain_columns

        args.compare_dir.mkdir(parents=True, exist_ok=True)
        page = ComparePage(
            args.compare_dir,
            f"bicubic against the model: {args.benchmark}, x{args.scale}" + (", --ensemble" if args.ensemble else ""),
            gain_columns("Y") + ([Column("model", "model used")] if args.model == "auto" else []),
            note="The SRCNN paper's protocol: Y channel, borders shaved by the scale.",
            sort_key="gain",
        )
    if args.ensemble:
        print("ensemble: the model's image is the mean of its 8 flips and quarter turns")
    results = {}
    for label, recipe in recipes.items():
        pick = model if args.model != "auto" or isinstance(model, list) else model(recipe)
        rows = []
        for path, photo in photos:
            suffix = f"_{label}" if label and len(recipes) > 1 else ""
            compare_path = args.compare_dir / f"{path.stem}{suffix}.png" if args.compare_dir else None
            try:
                scores = benchmark_image(pick, photo, args.scale, compare_path, args.jpeg, recipe, page, args.ensemble)
                rows.append({"name": path.stem, **scores})
            except ValueError as error:
                print(f"skipped {path}: {error}", file=sys.stderr)
        if not rows:
            raise ValueError(f"{args.benchmark}: no image could be scored")
        results[label] = rows
    report: dict = {"jpeg_quality": args.jpeg, "ensemble": args.ensemble}
    if len(recipes) > 1:
        summaries = {label: degradation_summary(rows) for label, rows in results.items()}
        print(f"{len(photos)} image(s) of {args.benchmark}, x{args.scale}, each made small every way:")
        print(format_degradation_table(summaries))
        report |= {
            "degradations": {label: {"summary": summaries[label], "images": rows} for label, rows in results.items()}
        }
    else:
        ((label, rows),) = results.items()
        if label:
            print(f"input: the small image made by {label}, then bicubic x{args.scale}")
        if args.jpeg is not None:
            print(f"input: the small image saved as JPEG quality {args.jpeg} (Pillow), then bicubic x{args.scale}")
        print(format_benchmark_table(rows))
        below = sum(row["psnr_y"] < row["bicubic_psnr_y"] for row in rows)
        print(f"{below} of {len(rows)} image(s) below bicubic in Y-PSNR")
        routed = [row["model"] for row in rows if "model" in row]
        if routed:
            print("models picked: " + ", ".join(f"{name} {routed.count(name)}" for name in sorted(set(routed))))
        summary = flat_region_summary(rows)
        if summary:
            print(summary)
        report |= {"images": rows, "mean": benchmark_mean(rows), "degradation": recipes[label]}
    if page is not None:
        print(f"comparison page: {page.write()}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
        print(f"scores: {args.json}")
    if failed:
        print(f"{failed} image(s) skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
