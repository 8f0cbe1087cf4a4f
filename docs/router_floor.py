"""Would a share floor help the router: a small image whose reading's top kind has less than FLOOR
of it goes to the clean model (the protocol's) instead of that kind's model? A lab measurement
(docs/degradations.md), not shipped.

Usage (from the project's root):
    python docs/router_floor.py ../shared/data/T91 ../shared/data/BSD200 --exclude configs/bsd200-val.txt
    ... --stride 16     # the same, each image read on overlapping tiles

The held-out third of the photos and the pieces docs/fit_router.py scores its rules on (the same
split, ways and seeds), read by the shipped router (checkpoints/pretrained-router, its bias
included); per floor, each way's mean gain over bicubic (and the share of pieces below it), and how
much of the clean model's gain the protocol keeps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fit_router  # noqa: E402

FLOORS = (0.0, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def floored_pick(router, reading: np.ndarray | None, floor: float) -> str:
    """The model the router picks for a reading, or the clean one where the top kind's share is under `floor`."""
    if reading is None:
        return "clean"
    kind = int(np.argmax(reading))
    return router.models[kind] if router.shares(reading)[kind] >= floor else "clean"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--exclude", type=Path, help="a file of image names (one per line) to leave out")
    parser.add_argument(
        "--stride", type=int, default=32, help="the tiles' step (32: side by side, as shipped; 16: overlapping)"
    )
    args = parser.parse_args(argv)
    if args.stride < 1:
        parser.error(f"--stride {args.stride}: one pixel or more")
    from srcnn.precision import start_tensorflow

    start_tensorflow()
    from srcnn.checkpoints import ROUTER_DIR
    from srcnn.files import read_names
    from srcnn.images import pad_to_square, whole_high_res
    from srcnn.preparation import readable_photos
    from srcnn.routing import Router

    excluded = set(read_names(args.exclude)) if args.exclude else set()
    sources = []  # as fit_router.main splits them
    for _, photo in readable_photos(args.folders, excluded):
        if min(photo.size) < 32:
            continue
        sources.append([whole_high_res(photo)])
        if len(sources) % 4 == 0:
            sources[-1].append(whole_high_res(pad_to_square(photo)))
    held_out = [photo for versions in sources[:: fit_router.HELD_OUT_EVERY] for photo in versions]
    router = Router.load(ROUTER_DIR)
    measured = fit_router.gains(held_out, sorted(set(router.models)))
    readings = {
        way: [router.reading(small, stride=args.stride) for small in rows["small"]] for way, rows in measured.items()
    }
    print(f"{len(measured['bicubic']['clean'])} pieces a way; mean gain (share below bicubic)")
    print(f"{'':12s}" + "".join(f"{way:>15s}" for way in measured))
    for floor in FLOORS:
        routed = {
            way: np.array([rows[floored_pick(router, reading, floor)][i] for i, reading in enumerate(readings[way])])
            for way, rows in measured.items()
        }
        kept = routed["bicubic"].mean() / measured["bicubic"]["clean"].mean()
        cells = "".join(f"{gain.mean():+8.2f} ({(gain < 0).mean():4.0%})" for gain in routed.values())
        print(f"floor {floor:<6.2f}{cells}  protocol kept {kept:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
