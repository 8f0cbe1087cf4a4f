"""Would averaging the weights of runs that went on from one model lift it (a "model soup")? A lab
try for the x3 model (docs/scales.md), not shipped.

Usage (from the project's root):
    python docs/average_passes.py ../shared/data/BSD200 --val-names configs/bsd200-val.txt \
        checkpoints/pretrained-x3/best.weights.h5 /tmp/e2e-try1/latest/best.weights.h5 \
        /tmp/e2e-try2/latest/best.weights.h5

Each model's passes (docs/end_to_end.py's runs keep theirs in one folder), then the mean of their
weights, pass by pass, scored as docs/end_to_end.py picks an epoch: the mean Y-PSNR of the
--val-names photos (shaved by the scale) through the passes, 8-bit pixels between them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import end_to_end  # noqa: E402


def mean_weights(models: list[list[list[np.ndarray]]]) -> list[list[np.ndarray]]:
    """models[m][p][w]: model m's pass p's weight array w -> each pass's arrays averaged over the models."""
    return [[np.mean(arrays, axis=0) for arrays in zip(*passes, strict=True)] for passes in zip(*models, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the photos that hold the validation ones")
    parser.add_argument("--val-names", type=Path, required=True, help="names of the photos to score on")
    parser.add_argument("weights", nargs="+", type=Path, help="the models' last passes (two or more)")
    args = parser.parse_args(argv)
    if len(args.weights) < 2:
        parser.error("give two models or more to average")
    if not args.val_names.is_file():
        parser.error(f"--val-names {args.val_names}: no such file")
    from srcnn.precision import start_tensorflow

    start_tensorflow()
    from srcnn.checkpoints import CheckpointError
    from srcnn.files import read_names
    from srcnn.passes import load_passes

    try:
        chains = [load_passes(path) for path in args.weights]
    except CheckpointError as error:
        parser.error(str(error))
    if len({tuple((step.scale, step.config) for step in chain) for chain in chains}) != 1:
        parser.error("the models differ in their passes' scales or networks; only one kind averages")
    scale = chains[0][-1].scale
    _, validation = end_to_end.read_photos([args.folder], scale, set(read_names(args.val_names)))
    if not validation:
        parser.error(f"--val-names {args.val_names}: none of those photos is in {args.folder}")
    validation = end_to_end.scoring_pairs(validation, scale)
    models = [[step.model.get_weights() for step in chain] for chain in chains]
    passes, networks = chains[0], [step.model for step in chains[0]]
    for path, weights in zip(args.weights, models, strict=True):
        for network, arrays in zip(networks, weights, strict=True):
            network.set_weights(arrays)
        print(f"{end_to_end.validation_psnr(networks, passes, validation, scale):.4f} dB  {path}")
    for network, arrays in zip(networks, mean_weights(models), strict=True):
        network.set_weights(arrays)
    print(f"{end_to_end.validation_psnr(networks, passes, validation, scale):.4f} dB  the mean of the {len(models)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
