"""Image reading and the blog's pair recipe: pad onto white, resize, bicubic down and up.

PIL and NumPy only; nothing here imports TensorFlow, so prep stays light and fast.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from srcnn import degradations
from srcnn.files import write_atomic

# File types prep_images.py picks up (lower-case suffixes).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# The suffixes upscale.py writes (Pillow picks the format by them).
WRITABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")


def unwritable_reason(target: Path) -> str | None:
    """Why an enlarged photo cannot be written to `target`, known from its name and what is there
    (a sentence's predicate: "is a folder"), or None."""
    if target.is_dir():
        return "is a folder"
    if target.suffix.lower() not in WRITABLE_SUFFIXES:
        kind = f"ends in {target.suffix}" if target.suffix else "has no suffix"
        return f"{kind}, which no image writer here takes; use one of {', '.join(WRITABLE_SUFFIXES)}"
    return None


WHITE = (255, 255, 255)
# Pillow refuses images over 2 * MAX_IMAGE_PIXELS (about 179 megapixels) from the header alone,
# before decoding; below that its warning is only noise here. Set once for the process, not per
# read: catch_warnings() is not thread-safe, and upscale.py reads in a thread of its own.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageReadError(ValueError):
    """An input file that cannot be used as an image; the message says why."""


def read_image(path: str | os.PathLike) -> Image.Image:
    """Open and decode an image in its own mode: first frame, EXIF-upright, info (ICC) kept."""
    path = Path(path)
    if path.is_dir():
        raise ImageReadError("is a folder, not an image")
    try:
        with Image.open(path) as image:
            image.seek(0)  # GIF, APNG, multi-page TIFF: the first frame.
            image.load()
            upright = ImageOps.exif_transpose(image)
            return upright if upright is not image else image.copy()
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageReadError(_why_unreadable(error)) from None


def header_error(path: str | os.PathLike) -> str:
    """Why `path` is not an image, read from its header alone ('' when it looks like one: a
    truncated or corrupt one still fails when decoded). Cheap: for refusing a file before a model loads."""
    if Path(path).is_dir():
        return "is a folder, not an image"
    try:
        with Image.open(path):
            return ""
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError) as error:
        return _why_unreadable(error)


def _why_unreadable(error: Exception) -> str:
    if isinstance(error, Image.DecompressionBombError):
        return f"refused as a decompression bomb: {error}"
    if isinstance(error, Image.UnidentifiedImageError):
        return "not an image Pillow can read"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, FileNotFoundError):
        return "file not found"
    return f"cannot decode: {error}"  # truncated or corrupt data surfaces as one of the others


def jpeg_quality(path: str | os.PathLike) -> int | None:
    """The quality (1-100) a file holding a JPEG (by its content, whatever its name) was most likely
    saved at, or None for any other image and for files that cannot be read (their error comes when
    they are decoded).

    Read from the file's luminance quantization table, the one that sets how coarse the brightness
    is stored: the quality whose standard table (the IJG's, scaled as libjpeg scales it; Pillow,
    most software and many cameras use it) is nearest to it. Exact for files saved with those
    tables; for others (tables of their own), the nearest standard quality.
    """
    try:
        with Image.open(path) as image:
            if image.format not in ("JPEG", "MPO"):  # MPO: a camera's JPEG with extra frames
                return None
            table = (getattr(image, "quantization", None) or {}).get(0)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    if not table or len(table) != 64:
        return None
    observed = np.asarray(table, dtype=np.int64)
    distances = {quality: int(np.abs(observed - reference).sum()) for quality, reference in _ijg_tables().items()}
    # Ties (the top qualities share near-flat tables): the highest, the lightest compression that fits.
    return min(distances, key=lambda quality: (distances[quality], -quality))


@functools.cache
def _ijg_tables() -> dict[int, np.ndarray]:
    """Pillow's own luminance table for each quality 1-100 (in the order Pillow reports tables),
    made once by saving a tiny image at each quality: about 20 ms."""
    tables = {}
    tiny = Image.new("RGB", (8, 8))
    for quality in range(1, 101):
        buffer = io.BytesIO()
        tiny.save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as saved:
            tables[quality] = np.asarray(saved.quantization[0], dtype=np.int64)
    return tables


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Open any supported image as 8-bit RGB: first frame, EXIF-upright, transparency on white."""
    return to_rgb(read_image(path))


def to_8bit(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float grey as 8-bit L, scaled rather than clipped at 255."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        top = 1.0 if values.max(initial=0) <= 1.0 else 255.0
    else:
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
    return Image.fromarray(np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8))


HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparent pixels become white."""
    if image.mode in HIGH_BIT_MODES:
        return to_8bit(image).convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "RGB":
        return image
    return image.convert("RGB")


def pad_to_square(image: Image.Image, fill: tuple[int, int, int] = WHITE) -> Image.Image:
    """Paste the image centred on a square canvas whose side is its longest side.

    Blog: "put it on a square white background whose length and width is the same as the
    largest side of the image".
    """
    width, height = image.size
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), fill)
    # Assumed: centred (the blog does not say where on the square the photo goes); an odd margin
    # puts the extra pixel on the right or bottom.
    canvas.paste(image.convert("RGB"), ((side - width) // 2, (side - height) // 2))
    return canvas


def bicubic_degrade(high_res: Image.Image, scale: int, jpeg_quality: int | None = None) -> Image.Image:
    """Downscale by `scale` with bicubic, then back up to the same size with bicubic.

    Blog: "we scale the low-resolution images down by a factor of 2 (making them 64x64) and then
    upscale them back to 128x128 using Bicubic interpolation".

    With `jpeg_quality` (beyond the blog), the small image is saved as a JPEG of that quality
    (Pillow's encoder, its default 4:2:0 chroma subsampling) and decoded before the enlargement:
    the low-res photos people really have are JPEGs, with the 8x8 block grid where a camera or a
    website put it, on the small image. The degradation suite's "bicubic" way: one definition.
    """
    return degradations.degrade(high_res, scale, degradations.SUITE[degradations.DEFAULT], jpeg_quality)


def make_pair(
    image: Image.Image,
    size: int = 128,
    scale: int = 2,
    jpeg_quality: int | None = None,
    fill: tuple[int, int, int] = WHITE,
) -> tuple[Image.Image, Image.Image]:
    """The blog's training pair for one photo: (low_res, high_res), both size x size RGB."""
    high_res = blog_high_res(image, size, scale, fill)
    return bicubic_degrade(high_res, scale, jpeg_quality), high_res


def blog_high_res(
    image: Image.Image, size: int = 128, scale: int = 2, fill: tuple[int, int, int] = WHITE
) -> Image.Image:
    """The blog's high-res target: the photo on its square, resized to size x size."""
    if size % scale:
        raise ValueError(f"size {size} is not a multiple of scale {scale}")
    # Assumed: bicubic for the resize to 128x128; the blog's text does not name the filter.
    return pad_to_square(image, fill).resize((size, size), Image.Resampling.BICUBIC)


def make_whole_pair(
    image: Image.Image, scale: int = 2, jpeg_quality: int | None = None
) -> tuple[Image.Image, Image.Image]:
    """The SR-benchmark pair: (low_res, high_res) at the photo's own size, no padding, no resize.

    High-res is the photo cropped to a multiple of `scale` (top-left kept); low-res is its bicubic
    round trip, the same degradation as the blog's pairs.
    """
    high_res = whole_high_res(image, scale)
    return bicubic_degrade(high_res, scale, jpeg_quality), high_res


def whole_high_res(image: Image.Image, scale: int = 2) -> Image.Image:
    """The SR-benchmark target: the photo cropped to a multiple of `scale` (top-left kept)."""
    width, height = image.size
    if width < scale or height < scale:
        raise ImageReadError(f"{width}x{height} is smaller than the scale {scale}")
    return image.crop((0, 0, width - width % scale, height - height % scale))


def save_png_atomic(image: Image.Image, path: str | os.PathLike) -> None:
    """Write a PNG under a temporary name in the same folder, then rename it into place."""
    write_atomic(path, lambda temporary: image.save(temporary, format="PNG"))


ORIENTATIONS = 8  # four quarter turns, each also mirrored


def orient(image: np.ndarray, index: int, undo: bool = False) -> np.ndarray:
    """One of the eight flips and quarter turns of a (height, width, ...) image: `index % 4` quarter
    turns, then mirrored left-right from index 4 on; `undo` turns such an image back."""
    turns, mirrored = index % 4, index >= 4
    if not undo:
        image = np.rot90(image, turns)
        return image[:, ::-1] if mirrored else image
    image = image[:, ::-1] if mirrored else image
    return np.rot90(image, -turns)


def self_ensemble(enlarge: Callable[[np.ndarray], np.ndarray], image: np.ndarray) -> np.ndarray:
    """`enlarge` (a uint8 image -> a larger uint8 image) run on all eight orientations of `image`,
    each result turned back, their mean rounded to uint8: the "self-ensemble" of EDSR (Lim et al.
    2017). The network is the same; it sees the photo eight ways and its errors partly cancel, for
    eight times the network's time (docs/results.md measures the gain). A pixel that all eight views
    keep pure white (or black) stays exact."""
    total = None
    for index in range(ORIENTATIONS):
        result = orient(enlarge(np.ascontiguousarray(orient(image, index))), index, undo=True)
        if total is None:
            total = result.astype(np.uint16)  # eight 8-bit values add up to at most 2040
        else:
            total += result
    return np.rint(total / ORIENTATIONS).astype(np.uint8)  # round half to even, once
