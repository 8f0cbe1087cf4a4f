"""Fit the router that sends a lossless small photo to the clean or the general model (srcnn/routing.py).

Usage (from the project's root):
    python docs/fit_router.py ../shared/data/T91 ../shared/data/BSD200 --exclude configs/bsd200-val.txt \
        --out checkpoints/pretrained-general/router.json

Every photo of the folders (less the excluded names: keep the benchmarks and the held-out images
out) is made small by each way of the suite, on its own and pasted on a white square, and its
spectral profile taken. Fisher's discriminant separates the ways the clean model handles (PIL
bicubic, bilinear, lanczos, blur) from those it over-sharpens (OpenCV's cubic and nearest, box/area,
sharpening). Prints, for each way, the share sent to the general model.

The threshold: with --clean and --general (weights), both models enlarge a 192x192 piece of every
3rd photo each way, and for each candidate quantile of the PIL-bicubic scores (the share of protocol
inputs left to the clean model) the routed result is scored. Kept: among the quantiles that keep
PROTOCOL_KEPT of the clean model's gain on the protocol, the one whose worst way loses least against
the better of the two models on that way. Without them, --quantile.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srcnn import degradations  # noqa: E402
from srcnn.images import ImageReadError, load_rgb, pad_to_square, whole_high_res  # noqa: E402
from srcnn.preparation import find_images  # noqa: E402
from srcnn.routing import Router, fit_weights, spectral_profile  # noqa: E402

SMOOTH = ("bicubic", "bilinear", "lanczos", "blur")  # the clean model beats bicubic on these
OTHER = ("cv2-cubic", "cv2-nearest", "box", "sharpen")  # it falls below bicubic, or nearly, on these
SHOWN = ("noise", "cv2-area", "jpeg")  # scored, not fitted on
QUANTILE = 0.5  # Without models to measure: half the protocol's inputs to the clean model
QUANTILES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
PROTOCOL_KEPT = 0.9  # of the clean model's gain on PIL-bicubic inputs, the benchmark protocol
MEASURE_EVERY = 3  # photos both models enlarge each way to pick the threshold (every 3rd: about 120)
CROP = 192  # the piece of each one they enlarge


def profiles(photos: list, name: str) -> np.ndarray:
    made = (degradations.downscale(photo, 2, degradations.recipe_for(name, seed=i)) for i, photo in enumerate(photos))
    found = (spectral_profile(np.asarray(small)) for small in made)
    return np.array([profile for profile in found if profile is not None])


def gains(photos: list, weights_paths: dict[str, Path]) -> dict[str, dict[str, np.ndarray]]:
    """{way: {"small": the small images, model: its Y-PSNR gain over bicubic per photo}} (2-pixel shave),
    on a CROP x CROP piece from the middle of each photo large enough: one shape, so each network is
    traced once."""
    from srcnn.checkpoints import load_for_inference
    from srcnn.metrics import benchmark_metrics
    from srcnn.network import super_resolve

    models = {name: load_for_inference(path)[0] for name, path in weights_paths.items()}
    pieces = []
    for photo in photos:
        width, height = photo.size
        if min(width, height) >= CROP:
            left, top = (width - CROP) // 2, (height - CROP) // 2
            pieces.append(photo.crop((left, top, left + CROP, top + CROP)))
    measured = {}
    for way in SMOOTH + OTHER + SHOWN[:2]:
        rows = {name: [] for name in models} | {"small": []}
        for index, piece in enumerate(pieces):
            recipe = degradations.recipe_for(way, seed=index)
            small, low_res_image = degradations.small_and_low_res(piece, 2, recipe)
            low_res, high_res = np.asarray(low_res_image), np.asarray(piece)
            bicubic = benchmark_metrics(high_res, low_res, 2)["psnr_y"]
            for name, model in models.items():
                rows[name].append(benchmark_metrics(high_res, super_resolve(model, low_res), 2)["psnr_y"] - bicubic)
            rows["small"].append(np.asarray(small))
        measured[way] = {key: (np.array(value) if key != "small" else value) for key, value in rows.items()}
    return measured


def pick_quantile(measured: dict, weights: np.ndarray, bicubic_scores: np.ndarray) -> float:
    """Among the quantiles that keep PROTOCOL_KEPT of the clean model's gain on PIL-bicubic inputs, the
    one whose worst way loses least against the better of the two models on that way (its regret)."""
    print("mean gain (share below bicubic) by way: clean alone, general alone, then routed at each quantile")
    print(f"{'':14s}" + "".join(f"{way:>15s}" for way in measured))
    for name in ("clean", "general"):
        cells = "".join(f"{rows[name].mean():+8.2f} ({(rows[name] < 0).mean():4.0%})" for rows in measured.values())
        print(f"{name + ' alone':14s}{cells}")
    best_of_two = {way: max(rows["clean"].mean(), rows["general"].mean()) for way, rows in measured.items()}
    choice = (np.inf, QUANTILE)
    for quantile in QUANTILES:
        router = Router(tuple(weights), float(np.quantile(bicubic_scores, quantile)))
        routed = {}
        for way, rows in measured.items():
            general = np.array([router.choose(small)[0] == "general" for small in rows["small"]])
            routed[way] = np.where(general, rows["general"], rows["clean"])
        cells = "".join(f"{gain.mean():+8.2f} ({(gain < 0).mean():4.0%})" for gain in routed.values())
        kept = routed["bicubic"].mean() / measured["bicubic"]["clean"].mean()
        regret = max(best_of_two[way] - gain.mean() for way, gain in routed.items())
        print(f"{'q ' + str(quantile):14s}{cells}  protocol kept {kept:.1%}, worst regret {regret:.2f} dB")
        if kept >= PROTOCOL_KEPT and regret <= choice[0]:
            choice = (regret, quantile)
    if not np.isfinite(choice[0]):
        print(f"no quantile keeps {PROTOCOL_KEPT:.0%} of the protocol's gain: {QUANTILE}, the default, is kept")
    return choice[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--exclude", type=Path, help="a file of image names (one per line) to leave out")
    parser.add_argument("--out", type=Path, required=True, help="where the router's JSON goes")
    parser.add_argument("--quantile", type=float, default=QUANTILE, help="without --clean/--general")
    parser.add_argument("--clean", type=Path, help="the clean model's weights, to pick the threshold by its gains")
    parser.add_argument("--general", type=Path, help="the general model's weights, likewise")
    args = parser.parse_args(argv)
    excluded = set()
    if args.exclude:
        lines = args.exclude.read_text(encoding="utf-8").splitlines()
        excluded = {line.split("#", 1)[0].strip() for line in lines} - {""}
    photos = []
    for folder in args.folders:
        for path in find_images(folder):
            if path.name in excluded:
                continue
            try:
                photo = load_rgb(path)
            except ImageReadError as error:
                print(f"skipped {path}: {error}", file=sys.stderr)
                continue
            if min(photo.size) < 32:
                print(f"skipped {path}: smaller than 32 pixels", file=sys.stderr)
                continue
            photos.append(whole_high_res(photo))
            if len(photos) % 4 == 0:  # a quarter again on white squares, as product photos are
                photos.append(whole_high_res(pad_to_square(photo)))
    by_name = {name: profiles(photos, name) for name in SMOOTH + OTHER + SHOWN}
    weights = fit_weights(np.concatenate([by_name[n] for n in SMOOTH]), np.concatenate([by_name[n] for n in OTHER]))
    quantile = args.quantile
    if args.clean and args.general:
        measured = gains(photos[::MEASURE_EVERY], {"clean": args.clean, "general": args.general})
        quantile = pick_quantile(measured, weights, by_name["bicubic"] @ weights)
    threshold = float(np.quantile(by_name["bicubic"] @ weights, quantile))
    fitted_on = f"{len(photos)} photos of {', '.join(f.name for f in args.folders)}; quantile {quantile}"
    router = Router(tuple(float(w) for w in weights), threshold, fitted_on)
    router.save(args.out)
    print(f"router: {args.out} ({fitted_on})")
    for name, rows in by_name.items():
        print(f"{name:12s} sent to the general model: {np.mean(rows @ weights > threshold):6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
