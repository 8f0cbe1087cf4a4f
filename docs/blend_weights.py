"""Blend two fine-tunes of one network weight by weight, and pick the blend on scikit-image's photos.

How the shipped unfiltered model was made (docs/degradations.md, "Nearest neighbour"). OpenCV's
nearest neighbour keeps pixel 2i of each two, PIL's 2i+1: their small images sit half a pixel apart,
in opposite directions, and nothing in a small image tells which way (or OpenCV's unfiltered cubic,
which sits centred). A model trained with flips cannot learn the shift; one trained without them
learns it and pays for it on the other two. Weights (1 - beta) * START + beta * END, both fine-tuned
from one network (Wortsman et al. 2022, "Robust fine-tuning of zero-shot models": the weights of two
such fine-tunes blend as their outputs do), set how far towards the shift a single network of the
blog's size goes.

Usage (from the project's root):
    python docs/blend_weights.py START.weights.h5 END.weights.h5 --betas 0,0.1,0.2,0.25,0.3,0.4,0.5,1
    python docs/blend_weights.py START.weights.h5 END.weights.h5 --beta 0.4 --out checkpoints/blend

The first prints each blend's mean Y-PSNR gain over bicubic (and images below it) on OpenCV's cubic,
OpenCV's nearest and PIL's nearest, on scikit-image's photos (not among the benchmark sets) or
--photos DIR, and the beta it picks: the one whose worst way gains the most (maximin; OpenCV's and
PIL's nearest pull opposite ways, so it lands where they meet).
The second writes that blend as best.weights.h5 beside START's config.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WAYS = ("cv2-cubic", "cv2-nearest", "nearest")
# scikit-image's photos of real scenes (srcnn/demo.py trains and tests on crops of some of them; the
# shipped models never saw them, and the benchmark tables do not use them).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "grass", "gravel", "brick", "moon")


def blend(start: list[np.ndarray], end: list[np.ndarray], beta: float) -> list[np.ndarray]:
    """(1 - beta) * start + beta * end, weight by weight."""
    return [(1.0 - beta) * a + beta * b for a, b in zip(start, end, strict=True)]


def photos(folder: Path | None) -> list:
    from PIL import Image

    from srcnn.images import load_rgb, whole_high_res
    from srcnn.preparation import find_images

    if folder:
        return [whole_high_res(load_rgb(path)) for path in find_images(folder)]
    import skimage.data

    return [
        whole_high_res(Image.fromarray(np.asarray(getattr(skimage.data, name)())).convert("RGB")) for name in PHOTOS
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("start", type=Path, help="the fine-tune at beta 0 (.weights.h5 beside its config.json)")
    parser.add_argument("end", type=Path, help="the fine-tune at beta 1, from the same network")
    parser.add_argument("--betas", default="0,0.1,0.2,0.25,0.3,0.4,0.5,1", help="the grid to score")
    parser.add_argument("--photos", type=Path, help="a folder of photos instead of scikit-image's")
    parser.add_argument("--beta", type=float, help="with --out: the blend to write")
    parser.add_argument("--out", type=Path, help="a folder for the blend's best.weights.h5 and config.json")
    args = parser.parse_args(argv)
    if (args.beta is None) != (args.out is None):
        parser.error("--beta and --out go together")
    try:
        betas = [float(text) for text in args.betas.split(",")]
    except ValueError:
        parser.error(f"--betas: numbers separated by commas, got {args.betas!r}")
    from srcnn.precision import start_tensorflow

    start_tensorflow()  # quietly
    from srcnn import degradations
    from srcnn.checkpoints import CONFIG_NAME, CheckpointError, load_for_inference
    from srcnn.files import write_atomic, write_text_atomic
    from srcnn.metrics import benchmark_metrics
    from srcnn.network import super_resolve

    try:
        model, config = load_for_inference(args.start)
        end_model, end_config = load_for_inference(args.end)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if config != end_config:
        print(f"error: {args.start} and {args.end} are different networks ({config} vs {end_config})", file=sys.stderr)
        return 1
    start, end = model.get_weights(), end_model.get_weights()
    if args.out:
        model.set_weights(blend(start, end, args.beta))
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out / "best.weights.h5", model.save_weights)
        shutil.copyfile(args.start.parent / CONFIG_NAME, args.out / CONFIG_NAME)
        record = {"start": str(args.start), "end": str(args.end), "beta": args.beta}
        write_text_atomic(args.out / "blend.json", json.dumps(record, indent=1) + "\n")  # how it was made
        print(f"beta {args.beta}: {args.out / 'best.weights.h5'}")
        return 0

    def gain(low_res: np.ndarray, high_res: np.ndarray, bicubic: float) -> float:
        return benchmark_metrics(high_res, super_resolve(model, low_res), 2)["psnr_y"] - bicubic

    pairs = {way: [] for way in WAYS}
    for photo in photos(args.photos):
        for way in WAYS:
            low_res = np.asarray(degradations.degrade(photo, 2, degradations.SUITE[way]))
            high_res = np.asarray(photo)
            pairs[way].append((low_res, high_res, benchmark_metrics(high_res, low_res, 2)["psnr_y"]))
    picked = None
    print(f"mean Y-PSNR gain over bicubic (images below bicubic), {len(pairs[WAYS[0]])} photos")
    print(f"{'beta':>6s}" + "".join(f"{way:>21s}" for way in WAYS))
    for beta in betas:
        model.set_weights(blend(start, end, beta))
        gains = {way: np.array([gain(*row) for row in rows]) for way, rows in pairs.items()}
        cells = "".join(f"{row.mean():+10.2f} ({(row < 0).sum():2d} below)" for row in gains.values())
        print(f"{beta:6.2f}{cells}")
        worst = min(row.mean() for row in gains.values())
        if picked is None or worst > picked[1]:
            picked = (beta, worst)
    print(f"picked: beta {picked[0]} (its worst way gains {picked[1]:+.2f} dB, the most of the grid)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
