"""Make your own photos 2x (or 3x, 4x) larger with the trained network (bicubic, then the model).

Usage:
    python upscale.py photo.jpg -o photo_x2.png
    python upscale.py photos/ more.png --out-dir enlarged/ [--tile 512] [--checkpoint PATH] [--overwrite]
    python upscale.py photo.jpg -o photo_x2.png --runtime keras   # a given runtime (default: auto)
    python upscale.py photo.jpg -o photo_x2.png --model clean     # one shipped model for all (default: auto)
    python upscale.py photo.jpg -o photo_x3.png --scale 3 --ensemble   # 8 flips and turns averaged: better, ~9x slower
    python upscale.py photos/ --out-dir enlarged/ --compare enlarged/compare   # + a before/after page
    python upscale.py --export exported/           # SavedModel, TFLite (float32, int8) and ONNX

The x2 models that ship: "clean", trained on small images made the blog's way (PIL's bicubic);
"unfiltered", for small images made without antialiasing (OpenCV's cubic resize, nearest neighbour);
"sharpened", for small images sharpened after the downscale (phones, web pipelines); "general",
one model for a dozen ways; and two JPEG models, which clean
up block artifacts instead of sharpening them: "jpeg-low" for qualities up to 82 and "jpeg-high"
above. --model auto (default) sends a file that holds a JPEG (by content, not name) to the JPEG
model for its quality, read from the file's quantization table; the rest, and JPEGs above quality
95 (nearly lossless), to the model for the kind of small image the router reads from it
(srcnn/routing.py): smooth (clean), sharpened (sharpened), or box-filtered or unfiltered (unfiltered).
--scale 3 or 4: for a smooth image the shipped x3 or x4 model's own two passes; for any other the x2
model so picked (or named by --model) first, then a second pass trained after the clean x2 model.

Any size and mode: grayscale stays grayscale, alpha is kept (enlarged with bicubic), 16-bit
becomes 8-bit, EXIF orientation is applied and the ICC profile kept. Large photos go through in
overlapping tiles, so memory depends on --tile, not on the photo.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from srcnn.config import DEFAULT_TILE, RUNTIMES, SHIPPED_NAMES

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Keep TensorFlow's start-up chatter out of the way.


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="*", type=Path, help="image files or folders (searched recursively)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("-o", "--output", type=Path, help="output file, for a single input file")
    target.add_argument(
        "--out-dir", type=Path, help="folder for the outputs, named NAME_x2.png (NAME_x3.png at --scale 3, ...)"
    )
    parser.add_argument(
        "--tile", type=int, default=DEFAULT_TILE, help="tile side in output pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="tiles per model call (default: 4 on a GPU, 1 on the CPU)"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="a .weights.h5 file of your own, instead of the shipped models (--model)",
    )
    parser.add_argument(
        "--model",
        default="auto",
        choices=("auto", *SHIPPED_NAMES),
        help="which shipped model: auto (default) = for JPEG files the JPEG model for their quality"
        " (jpeg-low up to 82, else jpeg-high; above 95 as lossless); for lossless ones clean, unfiltered"
        " or sharpened, as the image reads; jpeg = the JPEG models for every file",
    )
    parser.add_argument(
        "--scale",
        type=int,
        choices=(2, 3, 4),
        help="how many times larger (default: 2, or what --checkpoint was trained for); x3 and x4: an x2 model"
        " (the shipped x3/x4 model's own for clean images, else the one --model picks), then a second pass",
    )
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="enlarge each photo in all 8 flips and quarter turns and average them (self-ensemble): +0.16 to"
        " +0.20 dB on Set5, about 9 times the time",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="DIR",
        help="also write DIR/index.html: each photo enlarged by bicubic against the model, with a slider and"
        " zoom (opens from disk in a browser)",
    )
    parser.add_argument(
        "--runtime",
        default="auto",
        choices=RUNTIMES,
        help="what runs the network: auto (default) = the fastest here that matches Keras float32 to 0.05 dB"
        " on Set5 (benchmarks/README.md)",
    )
    parser.add_argument(
        "--export",
        type=Path,
        metavar="DIR",
        help="write the model as SavedModel, TFLite (float32, int8) and ONNX to DIR (one model: --model NAME"
        " other than auto and jpeg, or --checkpoint)",
    )
    return parser


def plan(args: argparse.Namespace, scale: int) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(input, output) pairs to make, and one error line per input that cannot be planned."""
    from srcnn.preparation import find_images

    jobs, errors = [], []
    for item in args.inputs:
        if item.is_dir():
            if args.output is not None:
                errors.append(f"{item}: is a folder; use --out-dir for folders")
                continue
            for path in find_images(item, exclude=[args.out_dir, args.compare]):
                relative = path.relative_to(item).with_suffix("")
                jobs.append((path, args.out_dir / relative.parent / f"{relative.name}_x{scale}.png"))
        elif item.exists() or item.is_symlink():
            jobs.append((item, args.output or args.out_dir / f"{item.stem}_x{scale}.png"))
        else:
            errors.append(f"{item}: no such file or folder")
    return unique_targets(jobs, errors)


def unique_targets(jobs: list[tuple[Path, Path]], errors: list[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Drop a job whose output another job already makes ('a.jpg' and 'a.png' both give a_x2.png),
    with an error line: one result must never replace another."""
    kept, taken = [], {}
    for source, target in jobs:
        key = os.path.realpath(target)
        if key in taken:
            errors.append(f"{source}: its output {target} is already the output of {taken[key]}; rename one of them")
            continue
        taken[key] = source
        kept.append((source, target))
    return kept, errors


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.export is None and not args.inputs:
        parser.error("give images to enlarge, or --export DIR")
    if args.inputs and args.output is None and args.out_dir is None:
        parser.error("say where the results go: -o FILE (one input) or --out-dir DIR")
    if args.output is not None and len(args.inputs) != 1:
        parser.error("-o takes exactly one input; use --out-dir for several")
    from srcnn.images import unwritable_reason

    reason = unwritable_reason(args.output) if args.output is not None else None
    if reason:  # said before the model loads
        hint = "" if args.output.suffix else "; for a folder of results use --out-dir"
        parser.error(f"-o {args.output} {reason}{hint}")
    # An existing -o file is refused before a model loads (a folder, a missing input or the input
    # itself as -o get their own, truer message later).
    if args.output is not None and args.output.exists() and not args.overwrite and args.inputs[0].is_file():
        if os.path.realpath(args.output) != os.path.realpath(args.inputs[0]):
            parser.error(f"-o {args.output} exists; pass --overwrite to replace it")
    if args.tile < 16:
        parser.error("--tile must be at least 16")
    if args.batch is not None and args.batch < 1:
        parser.error("--batch must be at least 1")

    if args.checkpoint is not None and args.model != "auto":
        parser.error("--checkpoint and --model both name the weights; give one")
    if args.ensemble and not args.inputs:
        parser.error("--ensemble goes with images to enlarge (an export is the network, one pass)")
    if args.export is not None and args.model == "jpeg":
        parser.error("--export writes one model: name it, --model jpeg-low or --model jpeg-high")

    missing = [item for item in args.inputs if not (item.exists() or item.is_symlink())]
    if args.inputs and len(missing) == len(args.inputs) and args.export is None:
        for item in missing:  # said before the model loads
            print(f"upscale.py: error: {item}: no such file or folder", file=sys.stderr)
        return 1
    from srcnn.precision import start_tensorflow

    start_tensorflow()
    from srcnn.checkpoints import CheckpointError
    from srcnn.files import one_line

    try:
        scale = chosen_scale(args.checkpoint, args.scale)
    except CheckpointError as error:
        print(f"upscale.py: error: {one_line(error)}", file=sys.stderr)
        return 2
    jobs, errors = plan(args, scale) if args.inputs else ([], [])
    from srcnn.images import header_error

    # A file that is no image is refused now, before a model loads and is named for it.
    unreadable = {job[0]: header_error(job[0]) for job in jobs}
    errors += [f"{source}: {why}" for source, why in unreadable.items() if why]
    jobs = [job for job in jobs if not unreadable[job[0]]]
    for error in errors:
        print(f"upscale.py: skipped {error}", file=sys.stderr)
    if args.inputs and not jobs and errors and args.export is None:
        return 1
    no_images = f"upscale.py: error: no images found in {', '.join(map(str, args.inputs))}"
    if args.inputs and not jobs and not errors and args.export is None:  # said before the model loads
        print(no_images, file=sys.stderr)
        return 1
    from srcnn.int8 import int8_weights_of
    from srcnn.passes import load_passes
    from srcnn.runtimes import make_runtime, resolve_runtime

    try:
        if args.export is not None:
            from srcnn.upscaling import export_model

            (weights, _, _, first, _), *_ = choose_models([], args.checkpoint, args.model, scale)
            passes = load_passes(weights, first)
            for number, step in enumerate(passes, start=1):
                folder = args.export / f"pass{number}" if len(passes) > 1 else args.export
                for path, what in export_model(step.model, step.config, folder, step.weights):
                    print(f"exported: {path} ({what}) from {step.weights}")
            if not args.inputs:
                return 0
            if not jobs and not errors:
                print(no_images, file=sys.stderr)
                return 1
        runtime_name, runtime_why = resolve_runtime(args.runtime)
        groups = choose_models(jobs, args.checkpoint, args.model, scale)
        runtimes, untuned = [], []
        for weights, why, group, first, readings in groups:
            passes = load_passes(weights, first)
            stages = []
            for step in passes:
                name = runtime_name
                if name == "onnxruntime-int8" and not int8_weights_of(step.weights).is_file():
                    name = "onnxruntime"  # a model not tuned for 8 bits runs in float32
                    untuned.append(str(step.weights))
                runtime = make_runtime(name, step.model, step.config, step.weights)
                stages.append((runtime.predict, step.config, step.scale))
            runtimes.append((stages, group, [step.weights for step in passes], readings))
            count = f", {len(group)} photo(s)" if len(groups) > 1 else ""
            if len(passes) > 1:
                print(f"model: {passes[0].weights} ({why}), then {weights} (the x{scale} second pass){count}")
            else:
                print(f"model: {weights} ({why}){count}")
    except (CheckpointError, ValueError, ImportError, OSError) as error:
        print(f"upscale.py: error: {one_line(error)}", file=sys.stderr)
        return 2
    print(f"runtime: {runtime_name} ({runtime_why})")
    if args.ensemble:
        print("ensemble: each photo enlarged in its 8 flips and quarter turns, averaged (about 9 times the time)")
    if untuned:
        print(f"runtime: onnxruntime (float32) for {', '.join(untuned)}: not tuned for 8 bits (docs/tune_int8.py)")

    if args.batch is None:
        import tensorflow as tf

        # Several tiles per call keep a GPU busy; on the CPU one tile already uses every core.
        args.batch = 4 if tf.config.list_physical_devices("GPU") else 1
    from srcnn.upscaling import Tally, enlarge_all

    page = None
    if args.compare is not None:
        from srcnn.compare_page import Column, ComparePage

        columns = [Column("input", "input size"), Column("output", "output size"), Column("model", "model")]
        ensemble = ", --ensemble" if args.ensemble else ""
        page = ComparePage(args.compare, f"bicubic against the model: your photos, x{scale}{ensemble}", columns)
    tally = Tally(skipped=len(errors))
    folder_run = args.out_dir is not None  # -o names one file: an existing one is refused, not kept
    for stages, group, chain, readings in runtimes:
        if group and len(groups) > 1:  # the lines that follow are this model's photos (every pass)
            print(f"with {', then '.join(map(str, chain))}:")
        if group:
            label = ", then ".join(model_label(path) for path in chain)
            # A single photo's reading is in its model line above; a folder's, on each photo's line.
            notes = readings if len(jobs) > 1 else None
            # What each output records of its making: a retrained model in the same folder differs by its digest.
            made_by = f"upscale.py x{scale}, {label} ({weights_digest(chain)})" + (
                ", --ensemble" if args.ensemble else ""
            )
            tally = tally.add(
                enlarge_all(
                    group,
                    stages,
                    args.tile,
                    args.batch,
                    args.overwrite,
                    page,
                    label,
                    folder_run,
                    notes,
                    args.ensemble,
                    made_by,
                )
            )
    if page is not None and page.entries:
        print(f"comparison page: {page.write()}")
    if len(jobs) + len(errors) > 1:
        print(f"upscale.py: {tally}")
    return 1 if tally.skipped else 0


def chosen_scale(checkpoint: Path | None, scale: int | None) -> int:
    """--scale, or the scale --checkpoint was trained for; a CheckpointError when they disagree."""
    from srcnn.checkpoints import CheckpointError, read_run_record
    from srcnn.config import record_scale

    if checkpoint is not None:
        trained = record_scale(read_run_record(checkpoint.parent))
        if scale is not None and scale != trained:
            raise CheckpointError(
                f"{checkpoint}: a x{trained} model, not x{scale}; drop --scale or give a x{scale} model"
            )
        return trained
    return scale or 2


def weights_digest(paths: list[Path]) -> str:
    """The first 8 hex digits of the SHA-256 of the weights files, in order (every pass of a model)."""
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:8]


def model_label(weights: Path) -> str:
    """A model's name on the comparison page: a shipped x2 model's, as --model names it (clean,
    jpeg-low, ...); else its folder's (x3's first pass: pretrained-x3/first-pass)."""
    from srcnn.checkpoints import SHIPPED_WEIGHTS

    shipped = {os.path.realpath(path): name for name, path in SHIPPED_WEIGHTS.items()}
    name = shipped.get(os.path.realpath(weights))
    if name:
        return name
    folder = weights.parent
    return f"{folder.parent.name}/{folder.name}" if folder.name == "first-pass" else folder.name


def choose_models(
    jobs: list[tuple[Path, Path]], checkpoint: Path | None, choice: str, scale: int = 2
) -> list[tuple[Path, str, list[tuple[Path, Path]], Path | None, dict[Path, str]]]:
    """[(weights, why, the jobs they enlarge, the first pass in place of the one the weights name,
    what --model auto read from each of those photos)]:
    one group, or with --model auto each file to the model checkpoints.auto_choice picks for it (a
    JPEG to the JPEG model for its quality, read from the file; any other image to the model for the
    kind the router reads from it); --model jpeg sends every file to the JPEG model for its quality.
    At x3 and x4 (checkpoints.shipped_passes): for clean, the shipped x3 or x4 model's own passes; for
    any other x2 model, it first, then the second pass trained after the clean one.
    Each group keeps the jobs' order."""
    from srcnn.checkpoints import choose_weights, shipped_passes, shipped_weights

    if checkpoint is not None:
        return [(checkpoint, "--checkpoint", jobs, None, {})]
    groups = choose_x2_models(jobs, choice, scale)
    if scale != 2:
        chosen = []
        for name, why, group, readings in groups:
            weights, first = shipped_passes(name, scale)
            chosen.append((weights, why, group, first, readings))
        return chosen
    clean = choose_weights(None, None, prefer_pretrained=True)  # the shipped one, or a trained one if it is missing
    return [
        (clean if name == "clean" else shipped_weights(name), why, group, None, readings)
        for name, why, group, readings in groups
    ]


def choose_x2_models(
    jobs: list[tuple[Path, Path]], choice: str, scale: int = 2
) -> list[tuple[str, str, list[tuple[Path, Path]], dict[Path, str]]]:
    """[(shipped x2 model's name, why, the jobs it enlarges, what --model auto read from each)]
    (choose_models)."""
    import numpy as np

    from srcnn.checkpoints import JPEG_HIGH_UP_TO, JPEG_LOW_UP_TO, auto_choice, jpeg_model_name
    from srcnn.images import ImageReadError, jpeg_quality, load_rgb

    # At 3x and 4x the clean one's chain is the x3 or x4 model's own (its first pass trained with its second).
    clean = "the clean model" if scale == 2 else f"the x{scale} model's own first pass (from the clean model)"
    if choice in ("jpeg-low", "jpeg-high", "general", "unfiltered", "sharpened"):
        return [(choice, f"the {choice} model, --model {choice}", jobs, {})]
    if choice == "clean" or not jobs:
        return [("clean", clean + (", --model clean" if choice == "clean" else ""), jobs, {})]
    why = {
        "jpeg-low": f"the JPEG model for qualities up to {JPEG_LOW_UP_TO}, for such JPEGs",
        "jpeg-high": f"the JPEG model for qualities {JPEG_LOW_UP_TO + 1}-{JPEG_HIGH_UP_TO}, for such JPEGs"
        if choice == "auto"
        else f"the JPEG model for qualities above {JPEG_LOW_UP_TO}, for such JPEGs and all other files",
        "clean": f"{clean}, for smooth lossless images (as PIL's bicubic makes them)"
        f" and JPEGs above quality {JPEG_HIGH_UP_TO}",
        "unfiltered": "the unfiltered model, for small images made without antialiasing (OpenCV's cubic"
        " resize, nearest neighbour) or by a box filter (OpenCV's area, linear at 2x)",
        "sharpened": "the sharpened model, for small images sharpened after the downscale",
        "general": "the general model, for small images made a dozen ways",
    }
    grouped: dict[str, list[tuple[Path, Path]]] = {name: [] for name in why}
    reasons: dict[str, str] = {}
    for job in jobs:
        quality = jpeg_quality(job[0])
        if choice == "jpeg":
            grouped[jpeg_model_name(quality)].append(job)
            continue
        try:
            # The image is decoded only where the router decides: a JPEG model's file is known by its quality.
            name, reasons[job[0]] = auto_choice(lambda path=job[0]: np.asarray(load_rgb(path)), quality, scale)
        except (ImageReadError, MemoryError):
            name = "clean"  # its error comes, with the file's name, when it is enlarged
        grouped[name].append(job)
    groups = []
    for name, group in grouped.items():
        if group:
            reason = why[name]
            if len(jobs) == 1 and reasons.get(group[0][0]):
                reason = f"{clean if name == 'clean' else f'the {name} model'}: {reasons[group[0][0]]}"
            readings = {source: reasons[source] for source, _ in group if reasons.get(source)}
            groups.append((name, f"{reason} (--model {choice})", group, readings))
    return groups


if __name__ == "__main__":
    sys.exit(main())
