"""tf.data pipelines over the PNG pairs that prep_images.py writes."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from PIL import Image


class DataError(ValueError):
    """Prepared data missing or inconsistent; the message says which command fixes it."""


def list_pairs(data_dir: Path, split: str) -> list[tuple[Path, Path]]:
    """(low_res, high_res) PNG paths of one split, matched by file name, sorted."""
    high_res_dir, low_res_dir = data_dir / split / "hr", data_dir / split / "lr"
    if not high_res_dir.is_dir():
        return []
    pairs = []
    for high_res_path in sorted(high_res_dir.glob("*.png")):
        low_res_path = low_res_dir / high_res_path.name
        if low_res_path.is_file():
            pairs.append((low_res_path, high_res_path))
    return pairs


def _decode(path: tf.Tensor) -> tf.Tensor:
    return tf.io.decode_png(tf.io.read_file(path), channels=3)  # (height, width, 3) uint8


def _to_model_range(pixels: tf.Tensor) -> tf.Tensor:
    # Blog: targets are transformed to tanh's range [-1, 1].
    return tf.cast(pixels, tf.float32) / 127.5 - 1.0


def make_dataset(
    pairs: list[tuple[Path, Path]],
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    cache: bool = True,
) -> tf.data.Dataset:
    """Batches of (low_res, high_res) float32 images in [-1, 1], shape (batch, height, width, 3).

    Decoded uint8 images are cached in memory (a quarter of the float32 size), so PNGs are read
    once; shuffling is seeded and differs each epoch.
    """
    if not pairs:
        raise DataError("no image pairs to load")
    low_res_paths = tf.constant([str(low) for low, _ in pairs])
    high_res_paths = tf.constant([str(high) for _, high in pairs])
    dataset = tf.data.Dataset.from_tensor_slices((low_res_paths, high_res_paths))
    dataset = dataset.map(lambda low, high: (_decode(low), _decode(high)), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(
        lambda low, high: (_to_model_range(low), _to_model_range(high)), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def image_size(pairs: list[tuple[Path, Path]]) -> tuple[int, int]:
    """(height, width) shared by all high-res images of the pairs; DataError if they differ."""
    sizes = set()
    for low_res_path, high_res_path in pairs:
        with Image.open(high_res_path) as high_res, Image.open(low_res_path) as low_res:
            if high_res.size != low_res.size:
                raise DataError(f"{low_res_path}: size {low_res.size} differs from its high-res twin's {high_res.size}")
            sizes.add(high_res.size)
    if len(sizes) > 1:
        raise DataError(f"pairs have several sizes {sorted(sizes)}; prepare them again with one --size")
    width, height = sizes.pop()
    return height, width
