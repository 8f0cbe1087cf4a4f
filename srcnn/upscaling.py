"""Enlarge a user's photo 2x: bicubic, then the network, in overlapping tiles of bounded memory.

The network was trained to sharpen bicubic-upscaled images, so inference does the same pairing:
bicubic x2 first, then the model on the result. Tiles overlap by the network's receptive-field
radius (the halo), so every output pixel sees exactly the context it would see in one pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from srcnn.config import ModelConfig
from srcnn.files import write_atomic
from srcnn.images import HIGH_BIT_MODES, read_image, to_8bit
from srcnn.network import from_model_range, to_model_range

# Output tile side in pixels (before the halo). Chosen by measurement, see benchmarks in README.
DEFAULT_TILE = 512


@dataclass
class Prepared:
    """An input photo split into what the network sees and what travels beside it."""

    colour: Image.Image  # RGB
    alpha: Image.Image | None  # L, or None
    grey: bool  # the photo was grayscale: return grayscale
    notes: list[str]  # things the user should know (16-bit reduced to 8-bit, ...)
    icc_profile: bytes | None


def open_photo(path: str | Path) -> Prepared:
    """Read a photo for upscaling: first frame, EXIF-upright, split into colour and alpha."""
    image = read_image(path)
    return split_modes(image, image.info.get("icc_profile"))


def split_modes(image: Image.Image, icc_profile: bytes | None = None) -> Prepared:
    """Colour for the network, alpha for bicubic, and whether to give back grayscale."""
    notes = []
    if image.mode in HIGH_BIT_MODES:
        notes.append(f"{image.mode} reduced to 8-bit")
        image = to_8bit(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("PA", "RGBa"):
        image = image.convert("RGBA")
    elif image.mode == "La":
        image = image.convert("LA")
    elif image.mode == "1":
        image = image.convert("L")
    if image.mode in ("L", "LA"):
        alpha = image.getchannel("A") if image.mode == "LA" else None
        return Prepared(image.getchannel("L").convert("RGB"), alpha, True, notes, icc_profile)
    if image.mode == "RGBA":
        return Prepared(image.convert("RGB"), image.getchannel("A"), False, notes, icc_profile)
    if image.mode != "RGB":
        notes.append(f"{image.mode} converted to RGB")
        icc_profile = None  # A CMYK or Lab profile does not describe the RGB result.
        image = image.convert("RGB")
    return Prepared(image, None, False, notes, icc_profile)


def tile_boxes(height: int, width: int, tile: int) -> Iterator[tuple[int, int, int, int]]:
    """(top, left, bottom, right) of output tiles covering the image, row by row."""
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            yield top, left, min(top + tile, height), min(left + tile, width)


def count_tiles(height: int, width: int, tile: int) -> int:
    return math.ceil(height / tile) * math.ceil(width / tile)


def run_tiled(
    model: keras.Model,
    low_res: np.ndarray,
    halo: int,
    tile: int = DEFAULT_TILE,
    on_tile: Callable[[], None] | None = None,
    batch_size: int = 1,
) -> np.ndarray:
    """The model on a (height, width, 3) uint8 image, tile by tile; returns uint8 of the same size.

    Each tile is cut with `halo` extra pixels on every side that the image has, and only its
    centre is kept: outputs match a single pass over the whole image. Consecutive windows of the
    same shape go through the model `batch_size` at a time (worth it on a GPU).
    """
    height, width = low_res.shape[:2]
    output = np.empty_like(low_res)
    pending: list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]] = []

    def flush() -> None:
        windows = np.stack([to_model_range(low_res[ot:ob, ol:or_]) for _, (ot, ol, ob, or_) in pending])
        # predict_on_batch runs one compiled graph, 1.25x faster here than calling the model
        # eagerly layer by layer; it retraces only for the first few window shapes.
        predicted = model.predict_on_batch(windows)  # (batch, window height, window width, 3)
        for ((top, left, bottom, right), (outer_top, outer_left, _, _)), result in zip(pending, predicted, strict=True):
            inner = result[top - outer_top : bottom - outer_top, left - outer_left : right - outer_left]
            output[top:bottom, left:right] = from_model_range(inner)
            if on_tile is not None:
                on_tile()
        pending.clear()

    for box in tile_boxes(height, width, max(1, tile)):
        top, left, bottom, right = box
        outer = (max(top - halo, 0), max(left - halo, 0), min(bottom + halo, height), min(right + halo, width))
        shape = (outer[2] - outer[0], outer[3] - outer[1])
        if pending and (len(pending) >= batch_size or shape != _window_shape(pending[0][1])):
            flush()
        pending.append((box, outer))
    if pending:
        flush()
    return output


def _window_shape(outer: tuple[int, int, int, int]) -> tuple[int, int]:
    return outer[2] - outer[0], outer[3] - outer[1]


def upscale(
    model: keras.Model,
    config: ModelConfig,
    photo: Prepared,
    scale: int = 2,
    tile: int = DEFAULT_TILE,
    on_tile: Callable[[], None] | None = None,
    batch_size: int = 1,
) -> Image.Image:
    """The photo `scale` times larger: bicubic, then the network; alpha by bicubic alone."""
    width, height = photo.colour.size
    size = (width * scale, height * scale)
    bicubic = np.asarray(photo.colour.resize(size, Image.Resampling.BICUBIC))
    halo = config.receptive_field // 2
    result = Image.fromarray(run_tiled(model, bicubic, halo, tile, on_tile, batch_size))
    if photo.grey:
        result = result.convert("L")
    if photo.alpha is not None:
        result.putalpha(photo.alpha.resize(size, Image.Resampling.BICUBIC))
    return result


def save_image(image: Image.Image, path: Path, icc_profile: bytes | None) -> None:
    """Save by the file's suffix; JPEG drops alpha. Writes a temporary file, then renames it."""
    options = {"icc_profile": icc_profile} if icc_profile else {}
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        image = image.convert("L" if image.mode in ("L", "LA") else "RGB")
        options["quality"] = 95
    write_atomic(path, lambda temporary: image.save(temporary, format=Image.registered_extensions()[suffix], **options))


def export_model(model: keras.Model, out_dir: Path) -> tuple[Path, Path]:
    """A TensorFlow SavedModel and a TFLite model of the network, both for any image size.

    Both take and return float32 (batch, height, width, 3) in [-1, 1], like the Keras model.
    """
    import tensorflow as tf

    out_dir.mkdir(parents=True, exist_ok=True)
    saved_model = out_dir / "saved_model"
    model.export(str(saved_model), format="tf_saved_model", verbose=False)
    tflite_model = tf.lite.TFLiteConverter.from_saved_model(str(saved_model)).convert()
    tflite_path = out_dir / "srcnn.tflite"
    write_atomic(tflite_path, lambda temporary: temporary.write_bytes(tflite_model))
    return saved_model, tflite_path
