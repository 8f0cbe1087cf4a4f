"""Enlarge a user's photo 2x: bicubic, then the network, in overlapping tiles of bounded memory.

The network was trained to sharpen bicubic-upscaled images, so inference does the same pairing:
bicubic x2 first, then the model on the result. Tiles overlap by the network's receptive-field
radius (the halo), so every output pixel sees exactly the context it would see in one pass.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from PIL import Image
from tqdm import tqdm

from srcnn.compare_page import ComparePage
from srcnn.config import DEFAULT_TILE, ModelConfig
from srcnn.files import one_line, write_atomic
from srcnn.images import HIGH_BIT_MODES, ORIENTATIONS, read_image, self_ensemble, to_8bit, unwritable_reason
from srcnn.network import from_model_range, to_model_range


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
        depth = "16-bit" if image.mode.startswith("I;16") else "32-bit"  # Pillow's I and F modes are 32-bit
        notes.append(f"{depth} ({image.mode}) reduced to 8-bit")
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


Predict = Callable[[np.ndarray], np.ndarray]  # float32 (batch, height, width, 3) in [-1, 1] -> the same


def run_tiled(
    predict: Predict,
    low_res: np.ndarray,
    halo: int,
    tile: int = DEFAULT_TILE,
    on_tile: Callable[[], None] | None = None,
    batch_size: int = 1,
) -> np.ndarray:
    """The model on a (height, width, 3) uint8 image, tile by tile; returns uint8 of the same size.

    Each tile is cut with `halo` extra pixels on every side, and only its centre is kept: outputs
    match a single pass over the whole image. Beyond the image's own edges the halo repeats the
    edge pixels: the network would pad with zeros, mid-grey in its [-1, 1] range, and the outermost
    pixels of a pure white background came out 254. Consecutive windows of the same shape go
    through the model `batch_size` at a time (worth it on a GPU).
    """
    height, width = low_res.shape[:2]
    output = np.empty_like(low_res)
    pending: list[tuple[int, int, int, int]] = []  # tiles (top, left, bottom, right) waiting for the model

    def window(top: int, left: int, bottom: int, right: int) -> np.ndarray:
        """The tile with `halo` more on every side; past the image's edges those rows and columns repeat the edge."""
        inside = low_res[max(top - halo, 0) : bottom + halo, max(left - halo, 0) : right + halo]
        rows = (max(halo - top, 0), max(bottom + halo - height, 0))
        columns = (max(halo - left, 0), max(right + halo - width, 0))
        return np.pad(inside, (rows, columns, (0, 0)), mode="edge")

    def flush() -> None:
        windows = np.stack([to_model_range(window(*box)) for box in pending])
        predicted = predict(windows)  # (batch, window height, window width, 3)
        for (top, left, bottom, right), result in zip(pending, predicted, strict=True):
            output[top:bottom, left:right] = from_model_range(
                result[halo : halo + bottom - top, halo : halo + right - left]
            )
            if on_tile is not None:
                on_tile()
        pending.clear()

    for box in tile_boxes(height, width, max(1, tile)):
        if pending and (len(pending) >= batch_size or _tile_shape(box) != _tile_shape(pending[0])):
            flush()
        pending.append(box)
    if pending:
        flush()
    return output


def _tile_shape(box: tuple[int, int, int, int]) -> tuple[int, int]:
    return box[2] - box[0], box[3] - box[1]


def upscale(
    predict: Predict,
    config: ModelConfig,
    photo: Prepared,
    scale: int = 2,
    tile: int = DEFAULT_TILE,
    on_tile: Callable[[], None] | None = None,
    batch_size: int = 1,
) -> Image.Image:
    """The photo `scale` times larger: bicubic, then the network; alpha by bicubic alone."""
    return upscale_in_passes([(predict, config, scale)], photo, tile, on_tile, batch_size)


# One pass of the enlargement: its network, the network's config, and the enlargement of the photo
# once it is done (srcnn/passes.py: x4 = the x2 model, then a network for the rest).
Stage = tuple[Predict, ModelConfig, int]


def upscale_in_passes(
    stages: list[Stage],
    photo: Prepared,
    tile: int = DEFAULT_TILE,
    on_tile: Callable[[], None] | None = None,
    batch_size: int = 1,
    ensemble: bool = False,
) -> Image.Image:
    """The photo enlarged by each pass in turn: bicubic to the pass's size, then its network, in
    tiles; alpha by bicubic alone to the last size. With `ensemble`, the colour is the mean of all
    eight flips and quarter turns enlarged so (images.self_ensemble; eight times the tiles)."""

    def enlarge(colour: np.ndarray) -> np.ndarray:
        height, width = colour.shape[:2]
        for predict, config, scale in stages:
            size = (width * scale, height * scale)
            bicubic = np.asarray(Image.fromarray(colour).resize(size, Image.Resampling.BICUBIC))
            colour = run_tiled(predict, bicubic, config.receptive_field // 2, tile, on_tile, batch_size)
        return colour

    colour = np.asarray(photo.colour)
    result = Image.fromarray(self_ensemble(enlarge, colour) if ensemble else enlarge(colour))
    size = result.size
    if photo.grey:
        result = result.convert("L")
    if photo.alpha is not None:
        result.putalpha(photo.alpha.resize(size, Image.Resampling.BICUBIC))
    return result


@dataclass
class Loaded:
    """A job's photo, read ahead of its turn, or why it cannot be done."""

    source: Path
    target: Path
    photo: Prepared | None = None
    error: str = ""
    kept: bool = False  # its output exists and is newer than the photo: up to date, left as it is
    made_by: str = ""  # a kept output's record of what made it (made_by_of), if it has one


@dataclass
class Tally:
    """What a folder run did, for its last line."""

    written: int = 0
    up_to_date: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        return f"{self.written} enlarged, {self.up_to_date} up to date (kept), {self.skipped} skipped"

    def add(self, other: Tally) -> Tally:
        return Tally(self.written + other.written, self.up_to_date + other.up_to_date, self.skipped + other.skipped)


def load(source: Path, target: Path, overwrite: bool, keep_newer: bool = True) -> Loaded:
    """Check where the result goes and read the photo (in a reader thread, ahead of the model)."""
    try:
        reason = unwritable_reason(target)
        if reason:
            raise ValueError(f"its output {target} {reason}")
        if os.path.realpath(target) == os.path.realpath(source):  # realpath: no error on symlink loops
            raise ValueError("the output would replace the input; choose another name")
        if target.exists() and not overwrite:
            # As prep does, with `keep_newer` (folder runs): an output newer than its photo is up to
            # date (a rerun enlarges only what is new, whichever model made it: kept_note says which);
            # an older one is the user's, never replaced unasked.
            if keep_newer and os.stat(target).st_mtime >= os.stat(source).st_mtime:
                return Loaded(source, target, kept=True, made_by=made_by_of(target))
            older = " and is older than the photo" if keep_newer else ""
            raise ValueError(f"{target} exists{older}; pass --overwrite to replace it")
        return Loaded(source, target, open_photo(source))
    except Exception as error:  # A file's problem, whatever it is, ends that file only, in one line.
        return Loaded(source, target, error=one_line(error))


def save(loaded: Loaded, result: Image.Image, made_by: str = "") -> str:
    """Write one result (in a writer thread, while the model works on the next photo); returns a note."""
    loaded.target.parent.mkdir(parents=True, exist_ok=True)
    save_image(result, loaded.target, loaded.photo.icc_profile, made_by)
    return f" ({'; '.join(loaded.photo.notes)})" if loaded.photo.notes else ""


def made_by_of(path: Path) -> str:
    """What an output of upscale.py records as having made it ("upscale.py x2, clean"); "" for a
    file without that record or that cannot be read."""
    if not os.path.isfile(path):  # a folder, or a pipe that would never end
        return ""
    try:
        with Image.open(path) as image:
            if image.format == "PNG" and "exif" not in image.info:
                return ""  # its getexif() would decode the whole image to look after the pixels
            exif = image.getexif()
            return str(exif.get(DESCRIPTION_TAG, "")) if exif.get(SOFTWARE_TAG) == "srcnn upscale.py" else ""
    except Exception:  # any file can sit at an output's name; it is only not ours
        return ""


def kept_note(loaded: Loaded, made_by: str) -> str:
    """A kept output's line: up to date, and, when its record names another model or setting than
    this run's, which (a rerun after a model changed would otherwise hide it)."""
    if loaded.made_by and loaded.made_by != made_by:
        return f" (up to date, kept: made by {loaded.made_by}; --overwrite redoes it)"
    return " (up to date, kept)"


def failure(message: str) -> Future:
    future = Future()
    future.set_exception(ValueError(message))
    return future


def done(note: str) -> Future:
    future = Future()
    future.set_result(note)
    return future


def enlarge_all(
    jobs: list[tuple[Path, Path]],
    stages: list[Stage],
    tile: int,
    batch_size: int,
    overwrite: bool,
    page: ComparePage | None = None,
    model_name: str = "",
    keep_newer: bool = True,
    notes: Mapping[Path, str] | None = None,
    ensemble: bool = False,
    made_by: str = "",
) -> Tally:
    """Upscale every job; returns what was done. Reading the next photo and encoding the previous
    result overlap with the model (one reader and one writer thread beside it). Each result is
    written once, under a temporary name first; at most two wait to be written, so memory stays
    bounded; outcomes are reported in the jobs' order. With `page`, each photo written is added to
    it: bicubic against the result, named by `model_name`. With `keep_newer`, an output newer than
    its photo is kept as up to date. `notes` adds a word on a photo to its line (why its model).
    `ensemble`: each photo as the mean of its eight flips and quarter turns (upscale_in_passes).
    `made_by` is recorded in each output (save_image) and compared with a kept one's record."""
    tally = Tally()
    one_photo = len(jobs) == 1
    scale = stages[-1][2]
    made_by = made_by.encode("ascii", "backslashreplace").decode()  # EXIF text is ASCII: compared as written
    on_written = None if page is None else lambda loaded: add_to_page(page, loaded, model_name, scale)
    with (
        ThreadPoolExecutor(1, thread_name_prefix="read") as reader,
        ThreadPoolExecutor(1, thread_name_prefix="write") as writer,
        tqdm(total=len(jobs), unit="photo", desc="upscale", disable=one_photo) as bar,
    ):
        ahead = reader.submit(load, *jobs[0], overwrite, keep_newer) if jobs else None
        writes: list[tuple[Loaded, Future]] = []
        for index in range(len(jobs)):
            loaded = ahead.result()
            if index + 1 < len(jobs):
                ahead = reader.submit(load, *jobs[index + 1], overwrite, keep_newer)
            if loaded.error or loaded.kept:
                writes.append((loaded, failure(loaded.error) if loaded.error else done(kept_note(loaded, made_by))))
                continue
            try:
                result = upscale_with_bar(stages, loaded, tile, batch_size, one_photo, ensemble)
            except (ValueError, OSError, MemoryError) as error:
                writes.append((loaded, failure(one_line(error))))
                continue
            report_writes(writes, bar, 1, tally, on_written, notes)  # the writer holds at most one more result
            writes.append((loaded, writer.submit(save, loaded, result, made_by)))
        report_writes(writes, bar, 0, tally, on_written, notes)
    return tally


def upscale_with_bar(
    stages: list[Stage], loaded: Loaded, tile: int, batch_size: int, one_photo: bool, ensemble: bool = False
) -> Image.Image:
    """upscale_in_passes(), with a bar over the tiles when a single photo is enlarged (a folder has
    one over photos)."""
    width, height = loaded.photo.colour.size
    # A quarter turn swaps height and width, and may tile differently: count both ways.
    tiles = sum(count_tiles(scale * height, scale * width, tile) for _, _, scale in stages)
    if ensemble:
        turned = sum(count_tiles(scale * width, scale * height, tile) for _, _, scale in stages)
        tiles = ORIENTATIONS // 2 * (tiles + turned)
    with tqdm(
        total=tiles, unit="tile", desc=loaded.source.name, leave=False, disable=not one_photo or tiles < 2
    ) as bar:
        return upscale_in_passes(stages, loaded.photo, tile, bar.update, batch_size, ensemble)


def report_writes(
    writes: list[tuple[Loaded, Future]],
    bar: tqdm,
    keep: int,
    tally: Tally,
    on_written: Callable[[Loaded], None] | None = None,
    notes: Mapping[Path, str] | None = None,
) -> None:
    """Report outcomes in order, waiting until at most `keep` are left, and count them in `tally`.
    `on_written` is called with each job whose result was written. A file that cannot be done is
    skipped with its reason; the run goes on."""
    while len(writes) > keep or (writes and writes[0][1].done()):
        loaded, future = writes.pop(0)
        try:
            # A kept output may have come from another model: what picked this run's says nothing of it.
            note = f" ({notes[loaded.source]})" if notes and loaded.source in notes and not loaded.kept else ""
            tqdm.write(f"{loaded.source} -> {loaded.target}{future.result()}{note}")
        except (ValueError, OSError, MemoryError) as error:
            tqdm.write(f"upscale.py: skipped {loaded.source}: {one_line(error)}", file=sys.stderr)
            tally.skipped += 1
            bar.update()
            continue
        if loaded.kept:
            tally.up_to_date += 1
        else:
            tally.written += 1
        if on_written is not None:
            try:
                on_written(loaded)
            except Exception as error:  # the photo is written; only its place on the page is lost
                tqdm.write(f"upscale.py: compare page: {loaded.source}: {one_line(error)}", file=sys.stderr)
        bar.update()


def add_to_page(page: ComparePage, loaded: Loaded, model_name: str, scale: int) -> None:
    """The photo enlarged by bicubic alone beside the result written (a copy as PNG where browsers
    show no such file, as with TIFF)."""
    photo = loaded.photo or open_photo(loaded.source)  # a kept output's photo was not read
    colour = photo.colour
    width, height = colour.size
    bicubic = colour.resize((scale * width, scale * height), Image.Resampling.BICUBIC)
    if photo.grey:
        bicubic = bicubic.convert("L")
    result: Path | Image.Image = loaded.target
    if loaded.target.suffix.lower() in (".tif", ".tiff"):
        with Image.open(loaded.target) as written:
            result = written.copy()
    numbers = {"input": f"{width}x{height}", "output": f"{scale * width}x{scale * height}", "model": model_name}
    page.add(loaded.source.name, {"bicubic": bicubic, "model": result}, numbers)


# EXIF tags of what made an output: ImageDescription and Software (PNG, JPEG, WebP and TIFF keep
# them; BMP has no place for them).
DESCRIPTION_TAG, SOFTWARE_TAG = 0x010E, 0x0131


def save_image(image: Image.Image, path: Path, icc_profile: bytes | None, made_by: str = "") -> None:
    """Save by the file's suffix; JPEG drops alpha. Writes a temporary file, then renames it. With
    `made_by`, records it in the file (made_by_of reads it back)."""
    options = {"icc_profile": icc_profile} if icc_profile else {}
    if made_by:
        exif = Image.Exif()
        exif[DESCRIPTION_TAG], exif[SOFTWARE_TAG] = made_by, "srcnn upscale.py"
        options["exif"] = exif.tobytes()
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        image = image.convert("L" if image.mode in ("L", "LA") else "RGB")
        options["quality"] = 95
    write_atomic(path, lambda temporary: image.save(temporary, format=Image.registered_extensions()[suffix], **options))


def export_model(
    model: keras.Model, config: ModelConfig, out_dir: Path, weights: Path | None = None
) -> list[tuple[Path, str]]:
    """The network as files other runtimes load, each for any batch and image size; returns
    (path, description) of each. All take and return float32 (batch, height, width, 3) in [-1, 1],
    like the Keras model; TFLite and ONNX hold the Conv2D form (same weights, see runtimes.py).
    Where `weights` has 8-bit-tuned weights beside it, their 8-bit ONNX graph too (srcnn/int8.py)."""
    from srcnn.int8 import int8_weights_of
    from srcnn.runtimes import conv2d_form, int8_onnx, onnx_bytes, tflite_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    saved_model = out_dir / "saved_model"
    model.export(str(saved_model), format="tf_saved_model", verbose=False)
    written = [(saved_model, "TensorFlow SavedModel")]
    convolutions = conv2d_form(model, config)
    for name, make, what in (
        ("srcnn.tflite", lambda: tflite_bytes(convolutions), "TFLite / LiteRT, float32"),
        ("srcnn-int8.tflite", lambda: tflite_bytes(convolutions, int8=True), "TFLite / LiteRT, int8 weights"),
        ("srcnn.onnx", lambda: onnx_bytes(convolutions), "ONNX, opset 15"),
    ):
        content = make()
        write_atomic(out_dir / name, lambda temporary, content=content: temporary.write_bytes(content))
        written.append((out_dir / name, what))
    if weights is not None and int8_weights_of(weights).is_file():
        content = int8_onnx(weights, config)
        name, what = "srcnn-int8.onnx", f"ONNX, 8-bit integers (QDQ), from {int8_weights_of(weights)}"
        write_atomic(out_dir / name, lambda temporary, content=content: temporary.write_bytes(content))
        written.append((out_dir / name, what))
    return written
