"""A small folder of "product photos on white" for trying the default recipe as a shop would:
objects cut out of scikit-image's sample photos (never in the shipped models' training data),
pasted on pure white with a margin, in assorted sizes and shapes.

Usage (from the project's root): python docs/make_product_photos.py OUT_DIR [COUNT] [--also-on-black]
writes COUNT (default 25) PNGs to OUT_DIR, the same ones on every machine; --also-on-black adds
each one again on a black canvas (NAME_on_black.png).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageDraw, ImageFilter

# (photo, the object's box as fractions of the photo: left, top, right, bottom)
OBJECTS = (
    ("coffee", (0.15, 0.05, 0.85, 0.95)),
    ("chelsea", (0.2, 0.0, 0.85, 1.0)),
    ("rocket", (0.3, 0.0, 0.75, 0.9)),
    ("astronaut", (0.15, 0.0, 0.85, 1.0)),
    ("coins", (0.05, 0.05, 0.5, 0.5)),
    ("hubble_deep_field", (0.2, 0.2, 0.8, 0.8)),
    ("immunohistochemistry", (0.1, 0.1, 0.9, 0.9)),
    ("retina", (0.1, 0.1, 0.9, 0.9)),
    ("clock", (0.1, 0.05, 0.9, 0.95)),
    ("camera", (0.2, 0.05, 0.75, 0.95)),
    ("cat", (0.1, 0.0, 0.9, 1.0)),
)


def product_photo(index: int, background: str = "white") -> Image.Image:
    """Object `index % len(OBJECTS)`, cut with a soft oval or rounded box, on a white (or black) canvas."""
    rng = np.random.default_rng(index)
    name, (left, top, right, bottom) = OBJECTS[index % len(OBJECTS)]
    photo = Image.fromarray(np.asarray(getattr(skimage.data, name)())).convert("RGB")
    width, height = photo.size
    jitter = rng.uniform(-0.05, 0.05, 4)
    box = [
        int(width * min(max(left + jitter[0], 0), 0.4)),
        int(height * min(max(top + jitter[1], 0), 0.4)),
        int(width * max(min(right + jitter[2], 1), 0.6)),
        int(height * max(min(bottom + jitter[3], 1), 0.6)),
    ]
    item = photo.crop(box)
    side = int(rng.integers(160, 420))  # the object's longer side on the canvas
    scale = side / max(item.size)
    item = item.resize((max(int(item.width * scale), 8), max(int(item.height * scale), 8)), Image.Resampling.LANCZOS)
    mask = Image.new("L", item.size, 0)
    shape = ImageDraw.Draw(mask)
    if index % 2:
        shape.ellipse((0, 0, item.width - 1, item.height - 1), fill=255)
    else:
        shape.rounded_rectangle((0, 0, item.width - 1, item.height - 1), radius=min(item.size) // 6, fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(1.5))  # a cut-out's soft edge
    margin = rng.integers(16, 80, 4)
    canvas = Image.new("RGB", (item.width + margin[0] + margin[2], item.height + margin[1] + margin[3]), background)
    canvas.paste(item, (int(margin[0]), int(margin[1])), mask)
    return canvas


def main(argv: list[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    on_black = "--also-on-black" in args
    args = [arg for arg in args if arg != "--also-on-black"]
    out, count = Path(args[0]), int(args[1]) if len(args) > 1 else 25
    out.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        product_photo(index).save(out / f"product_{index:02d}.png")
        if on_black:
            product_photo(index, "black").save(out / f"product_{index:02d}_on_black.png")
    print(f"{count} photos on white{' and the same on black' if on_black else ''} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
