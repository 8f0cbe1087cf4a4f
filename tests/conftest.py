"""Shared fixtures: CPU only, quiet TensorFlow, seeded, tiny synthetic photos."""

from __future__ import annotations

import os

# Before TensorFlow is imported anywhere: tests run on the CPU, quietly.
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state."""
    np.random.seed(0)
    yield


def gradient_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth colour gradient with a little texture: something a network can learn on."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    red = 255 * x / max(width - 1, 1)
    green = 255 * y / max(height - 1, 1)
    blue = 127 + 100 * np.sin((x + y) / 3.0 + seed)
    pixels = np.stack([red, green, blue], axis=-1) + rng.normal(0, 8, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Six small non-square photos in a nested folder, in two formats."""
    folder = tmp_path / "photos"
    (folder / "trip").mkdir(parents=True)
    sizes = [(40, 30), (30, 44), (36, 36), (50, 26), (28, 40), (34, 30)]
    for index, (width, height) in enumerate(sizes):
        target = folder / "trip" if index % 2 else folder
        suffix = ".png" if index % 3 else ".jpg"
        gradient_image(width, height, seed=index).save(target / f"photo {index}{suffix}")
    return folder


def save_tiny_checkpoint(folder: Path, filters: int = 6, seed: int = 0) -> Path:
    """A small random network saved as train.py saves one: best.weights.h5 beside config.json."""
    import keras

    from srcnn.network import ModelConfig, build_model
    from srcnn.training import BEST_WEIGHTS_NAME, TrainConfig, write_run_config

    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    config = ModelConfig(filters=filters)
    build_model(config).save_weights(folder / BEST_WEIGHTS_NAME)
    write_run_config(folder, config, TrainConfig(), {})
    return folder / BEST_WEIGHTS_NAME
