"""Where a model moves pure white off 255: in the background, or at the edge of what stands on it.

test.py counts the pure white pixels a model keeps exactly (those whose 5x5 neighbourhood is pure
white in the photo, srcnn.metrics.flat_region_kept). This splits the ones it moves by their distance
to the nearest pixel of the photo that is not pure white: a grey speck far out in a catalogue
photo's background shows; a pixel a little darker beside the product's edge is the edge's own blur.

Usage (from the project's root):
    python docs/white_edges.py data/products checkpoints/pretrained-x4/best.weights.h5 \
        checkpoints/pretrained-x4-routed/best.weights.h5

Each model enlarges the photos' small images (PIL bicubic) by its own scale. (scipy, for the
distances, comes with scikit-image.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srcnn import degradations  # noqa: E402
from srcnn.images import whole_high_res  # noqa: E402
from srcnn.preparation import readable_photos  # noqa: E402

WHITE = 255
NEAR = 6  # photo pixels from the nearest other pixel: within it, an edge (1.5 small-image pixels at 4x)
VISIBLE = 2  # levels: a move of more than this is counted apart


def moved_white(photo: np.ndarray, output: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(pure white pixels of the photo test.py counts, the distance of each that the output moved
    to the nearest pixel that is not pure white, how many levels it moved)."""
    from scipy.ndimage import distance_transform_edt

    from srcnn.metrics import flat_region

    white = np.all(photo == WHITE, axis=-1)
    inside = flat_region(photo, WHITE)
    moved = inside & ~np.all(output == WHITE, axis=-1)
    levels = WHITE - output.min(axis=-1).astype(int)
    return int(inside.sum()), distance_transform_edt(white)[moved], levels[moved]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="photos on white (their small images made by PIL bicubic)")
    parser.add_argument("weights", type=Path, nargs="+", help="models (the last pass of each; it names the others)")
    args = parser.parse_args(argv)
    from srcnn.precision import start_tensorflow

    start_tensorflow()
    from srcnn.checkpoints import CheckpointError
    from srcnn.passes import enlarge, load_passes

    originals = [photo for _, photo in readable_photos([args.folder])]
    if not originals:
        parser.error(f"{args.folder}: no photos")
    pairs_by_scale = {}  # scale -> [(photo cropped to a multiple of it, its small image)], made once
    for weights in args.weights:
        try:
            passes = load_passes(weights)
        except (CheckpointError, ValueError, OSError) as error:
            parser.error(str(error).splitlines()[0])
        scale = passes[-1].scale
        if scale not in pairs_by_scale:
            photos = [whole_high_res(photo, scale) for photo in originals]
            bicubic = degradations.SUITE["bicubic"]
            pairs_by_scale[scale] = [(p, degradations.small_and_low_res(p, scale, bicubic)[0]) for p in photos]
        counted, distances, levels = 0, [], []
        for photo, small in pairs_by_scale[scale]:
            pixels, distance, level = moved_white(np.asarray(photo), enlarge(passes, small))
            counted += pixels
            distances.append(distance)
            levels.append(level)
        distance, level = np.concatenate(distances), np.concatenate(levels)
        far, near = distance > NEAR, distance <= NEAR
        print(
            f"{weights} (x{scale}): {len(distance)} of {counted} pure white pixels moved;"
            f" beyond {NEAR} px of the rest: {int(far.sum())} (up to {int(level[far].max(initial=0))} levels);"
            f" within: {int((near & (level > VISIBLE)).sum())} by more than {VISIBLE} levels"
            f" (up to {int(level[near].max(initial=0))})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
