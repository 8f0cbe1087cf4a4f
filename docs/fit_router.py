"""Fit the router that sends a lossless small photo to the clean or the general model (srcnn/routing.py).

Usage (from the project's root):
    python docs/fit_router.py ../shared/data/T91 ../shared/data/BSD200 --exclude configs/bsd200-val.txt \
        --out checkpoints/pretrained-general/router.json

Every photo of the folders (less the excluded names: keep the benchmarks and the held-out images
out) is made small by each way of the suite, on its own and pasted on a white square, and its
spectral profile taken. Fisher's discriminant separates the ways the clean model handles (PIL
bicubic, bilinear, lanczos, blur) from those it over-sharpens (OpenCV's cubic and nearest, box/area,
sharpening); the threshold lets QUANTILE of the PIL-bicubic inputs through to the clean model.
Prints, for each way, the share sent to the general model.
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
QUANTILE = 0.8  # Assumed: 80% of protocol inputs to the clean model, the rest cost part of their gain


def profiles(photos: list, name: str) -> np.ndarray:
    rows = []
    for index, photo in enumerate(photos):
        recipe = degradations.recipe_for(name, seed=index)
        profile = spectral_profile(np.asarray(degradations.downscale(photo, 2, recipe)))
        if profile is not None:
            rows.append(profile)
    return np.array(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--exclude", type=Path, help="a file of image names (one per line) to leave out")
    parser.add_argument("--out", type=Path, required=True, help="where the router's JSON goes")
    parser.add_argument("--quantile", type=float, default=QUANTILE)
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
            photos.append(whole_high_res(photo))
            if len(photos) % 4 == 0:  # a quarter again on white squares, as product photos are
                photos.append(whole_high_res(pad_to_square(photo)))
    by_name = {name: profiles(photos, name) for name in SMOOTH + OTHER + SHOWN}
    weights = fit_weights(np.concatenate([by_name[n] for n in SMOOTH]), np.concatenate([by_name[n] for n in OTHER]))
    threshold = float(np.quantile(by_name["bicubic"] @ weights, args.quantile))
    fitted_on = f"{len(photos)} photos of {', '.join(f.name for f in args.folders)}; quantile {args.quantile}"
    router = Router(tuple(float(w) for w in weights), threshold, fitted_on)
    router.save(args.out)
    print(f"router: {args.out} ({fitted_on})")
    for name, rows in by_name.items():
        print(f"{name:12s} sent to the general model: {np.mean(rows @ weights > threshold):6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
