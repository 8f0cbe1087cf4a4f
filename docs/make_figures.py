"""The README's comparison figures: two crops of scikit-image's photos (never trained on), scored and
drawn by test.py --benchmark with the shipped model.

Usage (from the project's root): python docs/make_figures.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
# (photo, top, left): 192x192 crops, the astronaut's face and the coffee cup.
CROPS = {"astronaut_face": ("astronaut", 20, 160), "coffee_cup": ("coffee", 120, 190)}


def main() -> int:
    sys.path.insert(0, str(ROOT))  # a script in docs/, run from anywhere
    import test as test_script
    from srcnn.checkpoints import PRETRAINED_WEIGHTS

    with tempfile.TemporaryDirectory() as folder:
        for name, (photo, top, left) in CROPS.items():
            pixels = np.asarray(getattr(skimage.data, photo)())[top : top + 192, left : left + 192]
            Image.fromarray(pixels).save(Path(folder) / f"{name}.png")
        arguments = ["--benchmark", folder, "--checkpoint", str(PRETRAINED_WEIGHTS)]
        return test_script.main([*arguments, "--compare-dir", str(ROOT / "docs" / "pretrained")])


if __name__ == "__main__":
    sys.exit(main())
