"""tf.data pipelines over the PNG pairs that prep_images.py writes."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from PIL import Image

from srcnn.config import TURNS

AUTOTUNE = tf.data.AUTOTUNE


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
    patch_size: int = 0,
    repeat: int = 1,
    augment: bool = False,
    invert_chance: float = 0.0,
    turns: str = "all",
) -> tf.data.Dataset:
    """Batches of (low_res, high_res) float32 images in [-1, 1], shape (batch, height, width, 3).

    Decoded uint8 images are cached in memory (a quarter of the float32 size), so PNGs are read
    once; shuffling is seeded and differs each epoch. With `patch_size`, every pair yields
    `repeat` random crops per epoch, the same window in both images; `augment` adds random
    flips and 90-degree turns (eight orientations; with `turns="diagonal"` the four that keep each
    diagonal a diagonal); `invert_chance` turns that share of the pairs
    into their negatives (255 - pixel), both images alike. All images of a batch must share a size.
    """
    if turns not in TURNS:
        raise ValueError(f"turns must be one of {TURNS}, got {turns!r}")
    if not pairs:
        raise DataError("no image pairs to load")
    low_res_paths = tf.constant([str(low) for low, _ in pairs])
    high_res_paths = tf.constant([str(high) for _, high in pairs])
    dataset = tf.data.Dataset.from_tensor_slices((low_res_paths, high_res_paths))
    # Stacked as (2, height, width, 3): one crop, flip or turn then moves both images alike.
    dataset = dataset.map(lambda low, high: tf.stack([_decode(low), _decode(high)]), num_parallel_calls=AUTOTUNE)
    dataset = dataset.cache()
    if repeat > 1:
        dataset = dataset.repeat(repeat)
    if shuffle:
        dataset = dataset.shuffle(len(pairs) * repeat, seed=seed, reshuffle_each_iteration=True)
    if patch_size or augment or invert_chance:
        # Each pair draws its crop, turn and negative from a seed of its own. Keras' global seed
        # would not do: a random op in a tf.data map restarts its sequence with every epoch, so
        # every epoch would draw the same numbers (with 20 photos and a chance of 0.1, often no
        # negative at all). These seeds differ each epoch and follow `seed`.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda pair, element_seed: _random_changes(pair, element_seed, patch_size, augment, invert_chance, turns)
        )
    dataset = dataset.map(
        lambda pair: (_to_model_range(pair[0]), _to_model_range(pair[1])), num_parallel_calls=AUTOTUNE
    )
    return dataset.batch(batch_size).prefetch(AUTOTUNE)


def _random_changes(
    pair: tf.Tensor, element_seed: tf.Tensor, patch_size: int, augment: bool, invert_chance: float, turns: str = "all"
) -> tf.Tensor:
    """The (2, height, width, 3) uint8 pair cropped, turned and inverted as drawn from `element_seed`."""

    def seed(stream: int) -> tf.Tensor:
        return tf.stack([element_seed, tf.constant(stream, tf.int64)])

    if patch_size:
        pair = tf.image.stateless_random_crop(pair, (2, patch_size, patch_size, 3), seed=seed(1))
    if augment and turns == "diagonal":  # as is, a half turn, or a mirror across either diagonal
        mirror = tf.random.stateless_uniform((), seed=seed(2)) < 0.5
        pair = tf.cond(mirror, lambda: tf.transpose(pair, [0, 2, 1, 3]), lambda: pair)
        half_turn = tf.random.stateless_uniform((), seed=seed(3)) < 0.5
        pair = tf.cond(half_turn, lambda: tf.reverse(pair, axis=[1, 2]), lambda: pair)
    elif augment:  # one of the eight flips and quarter turns of a square
        flip = tf.random.stateless_uniform((), seed=seed(2)) < 0.5
        pair = tf.cond(flip, lambda: tf.reverse(pair, axis=[2]), lambda: pair)
        pair = tf.image.rot90(pair, k=tf.random.stateless_uniform((), seed=seed(3), minval=0, maxval=4, dtype=tf.int32))
    if invert_chance:
        # The negative of a pair is a valid training pair for any photo: the low-res side is made by
        # linear resizes (and JPEG, nearly linear) that give 255 - x for 255 - x. What it adds is
        # pure black wherever a photo has pure white, and back: with the pure margin
        # (network.PixelLoss), a fine-tune on white-background photos also keeps black exact.
        invert = tf.random.stateless_uniform((), seed=seed(4)) < invert_chance
        pair = tf.cond(invert, lambda: 255 - pair, lambda: pair)
    return pair


def image_sizes(pairs: list[tuple[Path, Path]]) -> set[tuple[int, int]]:
    """The (height, width) sizes of the pairs' images (read from the PNG headers only)."""
    sizes = set()
    for low_res_path, high_res_path in pairs:
        with Image.open(high_res_path) as high_res, Image.open(low_res_path) as low_res:
            if high_res.size != low_res.size:
                raise DataError(f"{low_res_path}: size {low_res.size} differs from its high-res twin's {high_res.size}")
            sizes.add((high_res.height, high_res.width))
    return sizes


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """With several workers, each keeps its share of every batch (all read every file: DATA
    sharding, since the pairs are many small files, not one file per worker)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
