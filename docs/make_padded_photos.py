"""Test photos for "does pure white stay white": scikit-image photos (never trained on), halved and
pasted onto white squares as the blog does (plus its logo on white), and the same onto black.

Usage (from the project's root): python docs/make_padded_photos.py OUT_DIR
writes OUT_DIR/white/*.png and OUT_DIR/black/*.png, for test.py --benchmark OUT_DIR/white.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a script in docs/, run from anywhere
    from srcnn.images import pad_to_square, to_rgb

    out = Path((argv or sys.argv[1:])[0])
    for background, fill in (("white", (255, 255, 255)), ("black", (0, 0, 0))):
        (out / background).mkdir(parents=True, exist_ok=True)
        for name in PHOTOS:
            photo = Image.fromarray(np.asarray(getattr(skimage.data, name)()))
            photo = photo.resize((photo.width // 2, photo.height // 2), Image.Resampling.BICUBIC)
            pad_to_square(photo, fill).save(out / background / f"{name}_on_{background}.png")
    to_rgb(Image.fromarray(np.asarray(skimage.data.logo()))).save(out / "white" / "logo_on_white.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
