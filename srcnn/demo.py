"""The built-in demo (`python train.py --demo`): scikit-image's sample photos, which it ships offline,
prepared, trained on briefly, and tested, with the same code as a user's own photos.

The photos are written as PNGs into raw/{train,val,test}/ (prep_images.py keeps a split given by
such folders). This module prepares and tests; train.py runs the training in between.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from srcnn.config import PrepConfig
from srcnn.images import save_png_atomic
from srcnn.preparation import prepare_folder

# Where the demo works, unless --data, --checkpoint-dir or --results-dir say otherwise.
DATA_DIR, CHECKPOINT_DIR, RESULTS_DIR = Path("data/demo"), Path("checkpoints/demo"), Path("results/demo")
EPOCHS = 30  # Assumed: about two minutes on a 2-core CPU; enough to show the whole pipeline.

# Photos that keep test and validation apart from training: no crop of them is trained on.
TEST_PHOTOS = ("astronaut", "coffee")
VAL_PHOTOS = ("chelsea", "rocket")
TRAIN_PHOTOS = (
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
    "logo",  # RGBA: exercises compositing onto white
    "camera",  # the rest are grayscale; prep turns them into RGB
    "moon",
    "coins",
    "grass",
    "gravel",
    "brick",
    "page",
    "text",
    "clock",
)


def _photo(name: str) -> Image.Image:
    import skimage.data

    return Image.fromarray(np.asarray(getattr(skimage.data, name)()))


def _crops(image: Image.Image) -> dict[str, Image.Image]:
    """The four quadrants and the centre, each half the photo's size: more training variety."""
    width, height = image.size
    half_width, half_height = width // 2, height // 2
    corners = {
        "top_left": (0, 0),
        "top_right": (width - half_width, 0),
        "bottom_left": (0, height - half_height),
        "bottom_right": (width - half_width, height - half_height),
        "centre": ((width - half_width) // 2, (height - half_height) // 2),
    }
    return {key: image.crop((x, y, x + half_width, y + half_height)) for key, (x, y) in corners.items()}


def write_demo_photos(raw_dir: Path) -> int:
    """Write the demo photos (and crops of the training photos) under raw_dir; returns the count.

    Files already there are left alone, so their time stamps keep prep's outputs up to date.
    """
    count = 0
    for split, names in (("test", TEST_PHOTOS), ("val", VAL_PHOTOS), ("train", TRAIN_PHOTOS)):
        folder = raw_dir / split
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            image = _photo(name)
            images = {name: image}
            if split == "train":
                images.update({f"{name}_{key}": crop for key, crop in _crops(image).items()})
            for stem, picture in images.items():
                path = folder / f"{stem}.png"
                if not path.exists():
                    save_png_atomic(picture, path)
                count += 1
    return count


def prepare_demo(data_dir: Path, log: Callable[[str], None] = print) -> None:
    """The demo photos as the blog's 128x128 pairs in data_dir (in this process: they are few and
    small, and the caller may already run TensorFlow, which rules out forking workers)."""
    raw_dir = data_dir / "raw"
    count = write_demo_photos(raw_dir)
    log(f"demo: {count} photos from scikit-image in {raw_dir}")
    summary = prepare_folder(raw_dir, data_dir, PrepConfig(), workers=1, log=log)
    log(f"demo: {summary.written} pairs written, {summary.up_to_date} up to date -> {data_dir}")
