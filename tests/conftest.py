"""Shared fixtures: CPU only, quiet TensorFlow, seeded, tiny synthetic photos."""

from __future__ import annotations

import os

# Before TensorFlow is imported anywhere: tests run on the CPU, quietly.
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def run_script(name: str, *args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """One of the project's scripts as a user runs it: a subprocess on the CPU, output captured."""
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, str(ROOT / name), *args], cwd=cwd, env=environment, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def load_script(name: str):
    """One of the project's scripts as a module (test.py by path: `import test` would find Python's own)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"script_{Path(name).stem}", ROOT / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_main(monkeypatch, capsys):
    """Run a script's main(argv) in this process, in a given folder: (exit status, stdout, stderr).

    Much faster than a subprocess (no second TensorFlow start-up); an uncaught exception, which a
    user would see as a traceback, fails the test."""

    def run(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        status = load_script(name).main(list(args))
        captured = capsys.readouterr()
        return subprocess.CompletedProcess([name, *args], status, captured.out, captured.err)

    return run


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state: Python's, NumPy's and TensorFlow's."""
    import keras

    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def prepared_data(photo_folder, tmp_path) -> Path:
    """photo_folder prepared by prep_images.py into tmp_path/data as 24x24 pairs: 4 train, 1 val, 1 test.

    Six photos are too few for a hashed split to fill every split, so val and test get one each.
    """
    for split, name in (("val", "photo 2.png"), ("test", "photo 0.jpg")):
        (photo_folder / split).mkdir()
        os.rename(photo_folder / name, photo_folder / split / name)
    prep = run_script("prep_images.py", "--input", str(photo_folder), "--output", "data", "--size", "24", cwd=tmp_path)
    assert prep.returncode == 0, prep.stderr
    return tmp_path / "data"


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

    from srcnn.checkpoints import BEST_WEIGHTS_NAME, write_run_record
    from srcnn.config import ModelConfig, TrainConfig
    from srcnn.network import build_model

    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    config = ModelConfig(filters=filters)
    build_model(config).save_weights(folder / BEST_WEIGHTS_NAME)
    write_run_record(folder, config, TrainConfig(), {}, folder / "results")
    return folder / BEST_WEIGHTS_NAME


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height pixels, with almost no pixel data behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def make_corpus(folder: Path) -> dict[str, bool]:
    """The messy folder users point tools at: {relative path: usable?}. Nothing is downloaded."""
    import io

    folder.mkdir(parents=True, exist_ok=True)
    usable = {}

    def save(name: str, image: Image.Image, good: bool = True, **options) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, **options)
        usable[name] = good

    (folder / "empty.png").write_bytes(b"")
    usable["empty.png"] = False
    photo = gradient_image(40, 30)
    for suffix, image_format in ((".jpg", "JPEG"), (".png", "PNG")):
        buffer = io.BytesIO()
        photo.save(buffer, image_format)
        (folder / f"truncated{suffix}").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        usable[f"truncated{suffix}"] = False
    (folder / "notes.png").write_text("this is text, not a picture")
    usable["notes.png"] = False
    (folder / "bomb.png").write_bytes(png_header_only(100_000, 100_000))
    usable["bomb.png"] = False
    save("tiny.png", Image.new("RGB", (1, 1), (9, 99, 199)))
    save("strip.png", gradient_image(3000, 1))
    save("deep grey.png", Image.fromarray((np.arange(24 * 20).reshape(20, 24) * 130).astype(np.uint16)))
    save("print.jpg", photo.convert("CMYK"))
    palette = photo.convert("P")
    save("palette.png", palette, transparency=0)
    frames = [photo, gradient_image(40, 30, seed=5)]
    save("animated.gif", frames[0], save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display: upright it is 30 x 40
    save("rotated.jpg", photo, exif=exif)
    save("Fotos del año/café crème.png", gradient_image(26, 18, seed=2))
    (folder / "x.jpg").mkdir()  # a folder with an image's name
    (folder / "loop").mkdir()
    (folder / "loop" / "again").symlink_to(folder / "loop", target_is_directory=True)
    (folder / "self.png").symlink_to(folder / "self.png")  # a symlink loop to nothing
    usable["self.png"] = False
    return usable


def tiny_model_config(folder: Path) -> str:
    """A --config file asking train.py for a small network (6 filters): fast tests. The model's
    shape is a --config key, not a flag."""
    import json

    path = folder / "tiny-model.json"
    path.write_text(json.dumps({"model": {"filters": 6}}))
    return str(path)


def tiny_router(folder: Path, bias: tuple[float, float, float] = (0.0, 0.0, 0.0)):
    """A router saved in `folder` (smooth -> clean, unfiltered, sharpened) with an untrained
    classifier; a large bias picks its kind whatever the image. Returned as loaded from there."""
    from srcnn.routing import Router, build_classifier

    router = Router(("smooth", "unfiltered", "sharpened"), ("clean", "unfiltered", "sharpened"), bias)
    router.classifier = build_classifier(3)
    router.save(folder)
    return Router.load(folder)
