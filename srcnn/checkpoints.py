"""Checkpoint folders: what a run writes, how inference and --resume read it back, and clear errors.

A checkpoint folder holds:
    config.json         the run record: model config (to rebuild the network), training settings,
                        the data it trained and validated on, and its results folder
    best.weights.h5     weights with the best validation PSNR so far
    latest.keras        the whole training state (weights and optimizer) for --resume
    state.json          epochs completed and the best validation PSNR, written after latest.keras

Inference (test.py, upscale.py) needs only this module and the network, never the training code.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shlex
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from srcnn.config import SHIPPED_NAMES, ModelConfig, TrainConfig
from srcnn.files import one_line, write_atomic, write_text_atomic
from srcnn.network import build_model

CONFIG_NAME = "config.json"
BEST_WEIGHTS_NAME = "best.weights.h5"
LATEST_NAME = "latest.keras"
STATE_NAME = "state.json"
# The models that ship with the project (README, "Results"; docs/results.md): "clean" for lossless inputs, used when
# nothing else is given, and two JPEG models, each trained on low-res inputs saved as JPEGs of a
# range of qualities: one model for every JPEG smooths what a good JPEG keeps and keeps what a poor
# one should lose, so a JPEG goes to the one for its quality (read from the file, images.jpeg_quality).
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED_WEIGHTS = {
    "clean": SHIPPED_DIR / "pretrained" / BEST_WEIGHTS_NAME,
    "jpeg-low": SHIPPED_DIR / "pretrained-jpeg-low" / BEST_WEIGHTS_NAME,  # trained on qualities 65-85
    "jpeg-high": SHIPPED_DIR / "pretrained-jpeg-high" / BEST_WEIGHTS_NAME,  # trained on qualities 85-95
    # Trained on a mix of ways to make a small image (srcnn/degradations.py): one model for any.
    "general": SHIPPED_DIR / "pretrained-general" / BEST_WEIGHTS_NAME,
    # Each fine-tuned from the general one on one kind of small image that the clean model
    # over-sharpens, which the router tells from the image (srcnn/routing.py): unfiltered (OpenCV's
    # cubic and nearest) and sharpened after the downscale (an unsharp mask).
    "unfiltered": SHIPPED_DIR / "pretrained-unfiltered" / BEST_WEIGHTS_NAME,
    "sharpened": SHIPPED_DIR / "pretrained-sharpened" / BEST_WEIGHTS_NAME,
}
# x3 and x4: a second pass after an x2 one (srcnn/passes.py), each model's two passes trained
# together (docs/end_to_end.py).
SHIPPED_BY_SCALE = {
    2: SHIPPED_WEIGHTS["clean"],
    3: SHIPPED_DIR / "pretrained-x3" / BEST_WEIGHTS_NAME,
    4: SHIPPED_DIR / "pretrained-x4" / BEST_WEIGHTS_NAME,
}
# The second pass after any other x2 model (the one --model auto picks for the small image): trained
# after the clean x2 model, it finishes what each of them gives; the shipped models' own second
# passes, trained with their first, do not (docs/scales.md).
AFTER_OTHER_X2 = {
    3: SHIPPED_DIR / "pretrained-x3-routed" / BEST_WEIGHTS_NAME,
    4: SHIPPED_DIR / "pretrained-x4-routed" / BEST_WEIGHTS_NAME,
}
ROUTER_DIR = SHIPPED_DIR / "pretrained-router"
# Where to switch, measured on the 20 held-out BSD200 images as JPEGs (docs/results.md, "Your photos"):
# jpeg-low leads up to quality 82, jpeg-high from 83; above 95 a JPEG is nearly lossless: the clean
# model is level with jpeg-high at 96 and leads from 97 (+2.06 dB over bicubic against +2.01).
JPEG_LOW_UP_TO, JPEG_HIGH_UP_TO = 82, 95


def jpeg_model_name(quality: int | None) -> str:
    """The shipped JPEG model for a JPEG of this quality (None: unknown, e.g. not a JPEG)."""
    return "jpeg-low" if quality is not None and quality <= JPEG_LOW_UP_TO else "jpeg-high"


def auto_model_name(quality: int | None) -> str:
    """The shipped model for a file holding a JPEG of this quality (None: a lossless file)."""
    return "clean" if quality is None or quality > JPEG_HIGH_UP_TO else jpeg_model_name(quality)


def auto_choice(
    small: np.ndarray | Callable[[], np.ndarray], jpeg_quality: int | None = None, scale: int = 2
) -> tuple[str, str]:
    """(shipped model name, why) for one small image as --model auto picks: a JPEG (quality up to
    JPEG_HIGH_UP_TO) goes to the JPEG model for its quality; any other image to the model the router
    picks for the kind it reads (routing.py: smooth -> clean, sharpened -> sharpened, box-filtered
    and unfiltered -> unfiltered); to the clean one
    where the router or that model does not ship. `small` may be a function that decodes it, called
    only when the router decides; `scale`: how many times it will be enlarged (at 3x and 4x, the x2
    model picked runs first)."""
    name = auto_model_name(jpeg_quality)
    if name != "clean" and SHIPPED_WEIGHTS[name].is_file():
        return name, f"a JPEG of quality {jpeg_quality}"
    from srcnn.routing import ROUTER_NAME

    if not (ROUTER_DIR / ROUTER_NAME).is_file():
        return "clean", "the router is not in this copy of the project"
    name, why = _router(ROUTER_DIR).choose(small() if callable(small) else small, scale)
    if not SHIPPED_WEIGHTS[name].is_file():
        return "clean", f"{why}, but the {name} model is not in this copy of the project"
    return name, why


@functools.cache
def _router(folder: Path):
    from srcnn.routing import Router

    return Router.load(folder)


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or made for another model; the message says what to do."""


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not found") from None
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable ({one_line(error)})") from None


def check_writable(folder: Path) -> None:
    """Fail now, not after hours of training, if a folder cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise CheckpointError(f"{folder}: cannot write there ({error.strerror or error})") from None


# --- The run record (config.json) -----------------------------------------------------------------


def write_run_record(
    checkpoint_dir: Path, model_config: ModelConfig, train_config: TrainConfig, data: dict, results_dir: Path
) -> None:
    """config.json: enough to rebuild the network, repeat the run, and resume it in the same folders.
    A first pass (the model that runs before this one) is named relative to the checkpoint folder,
    so that the two travel together."""
    if data.get("first_pass"):
        data = data | {"first_pass": Path(os.path.relpath(data["first_pass"], checkpoint_dir.resolve())).as_posix()}
    record = {
        "model": model_config.to_dict(),
        "train": asdict(train_config),
        "data": data,
        "results_dir": str(results_dir.resolve()),
    }
    write_text_atomic(checkpoint_dir / CONFIG_NAME, json.dumps(record, indent=1) + "\n")


def read_run_record(checkpoint_dir: Path) -> dict:
    """config.json as a dict ({} when there is none)."""
    path = checkpoint_dir / CONFIG_NAME
    return read_json(path) if path.is_file() else {}


def load_model_config(checkpoint_dir: Path) -> ModelConfig:
    """The model config stored next to a checkpoint."""
    values = read_json(checkpoint_dir / CONFIG_NAME)
    try:
        return ModelConfig.from_dict(values["model"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{checkpoint_dir / CONFIG_NAME}: not a model config ({one_line(error)})") from None


# --- Inference --------------------------------------------------------------------------------------


def load_for_inference(weights_path: Path) -> tuple[keras.Model, ModelConfig]:
    """Rebuild the network from the config.json beside `weights_path` and load the weights."""
    if not weights_path.is_file():
        folder = (
            ""
            if weights_path.parent == Path("checkpoints")
            else f" --checkpoint-dir {shlex.quote(str(weights_path.parent))}"
        )
        raise CheckpointError(f"{weights_path}: no such checkpoint; train one first with: python train.py{folder}")
    config = load_model_config(weights_path.parent)
    model = build_model(config)
    try:
        with warnings.catch_warnings():
            # Keras only warns when some layers find no weights and keep their random start: for
            # inference that is a wrong model, so it is an error here.
            warnings.simplefilter("error")
            model.load_weights(weights_path)
    except Exception as error:  # Keras raises ValueError, OSError or h5py errors for bad files.
        raise CheckpointError(
            f"{weights_path}: cannot load these weights into the model its config.json describes, {config}"
            f" ({one_line(error)})"
        ) from None
    return model, config


def weights_of(
    source: str, model_config: ModelConfig | None
) -> tuple[Callable[[keras.Model, ModelConfig], None], ModelConfig]:
    """(a start that copies the weights of `source`, their model config) for --start-from: a
    best.weights.h5 beside its config.json, or "pretrained" for the shipped model."""
    path = SHIPPED_WEIGHTS["clean"] if source == "pretrained" else Path(source)
    loaded, loaded_config = load_for_inference(path)
    if model_config is not None and model_config != loaded_config:
        raise CheckpointError(f"{path} holds a model with {loaded_config}, not the requested {model_config}")
    return lambda model, config: model.set_weights(loaded.get_weights()), loaded_config


def shipped_weights(name: str, jpeg_quality: int | None = None) -> Path:
    """The shipped model of that name (SHIPPED_NAMES; "jpeg": the JPEG model for `jpeg_quality`), or
    a CheckpointError if it is not there."""
    if name == "jpeg":
        name = jpeg_model_name(jpeg_quality)
    if name not in SHIPPED_WEIGHTS:
        raise CheckpointError(f"no shipped model named {name!r}; the shipped ones: {', '.join(SHIPPED_NAMES)}")
    path = SHIPPED_WEIGHTS[name]
    if not path.is_file():
        raise CheckpointError(f"{path}: the shipped {name} model is missing from this copy of the project")
    return path


def shipped_weights_at(scale: int) -> Path:
    """The shipped model that enlarges `scale` times (x3, x4: the last of its passes), or a
    CheckpointError if none ships for that scale or it is missing."""
    if scale not in SHIPPED_BY_SCALE:
        raise CheckpointError(f"no shipped x{scale} model; the shipped scales: {sorted(SHIPPED_BY_SCALE)}")
    path = SHIPPED_BY_SCALE[scale]
    if not path.is_file():
        raise CheckpointError(f"{path}: the shipped x{scale} model is missing from this copy of the project")
    return path


def shipped_passes(name: str, scale: int = 2, jpeg_quality: int | None = None) -> tuple[Path, Path | None]:
    """(weights, the first pass to run in place of the one they name) of the shipped model `name`
    at `scale`: at 2x that model; at 3x and 4x for clean the shipped x3 or x4 model, its own passes,
    for any other the second pass trained after the clean x2 model (AFTER_OTHER_X2) with that x2
    model first."""
    if scale == 2:
        return shipped_weights(name, jpeg_quality), None
    if name == "clean":
        return shipped_weights_at(scale), None
    second = AFTER_OTHER_X2.get(scale)
    if second is None or not second.is_file():
        raise CheckpointError(f"{second or 'x' + str(scale)}: no shipped x{scale} second pass for the {name} model")
    return second, shipped_weights(name, jpeg_quality)


def choose_weights(checkpoint: Path | None, checkpoint_dir: Path | None, prefer_pretrained: bool = False) -> Path:
    """--checkpoint if given; else the best weights in --checkpoint-dir (default: checkpoints);
    else, when no folder was named and it holds none, the shipped pretrained model.

    `prefer_pretrained` (upscale.py) turns the last two around when no folder was named.
    """
    if checkpoint is not None:
        return checkpoint
    own = (checkpoint_dir or Path("checkpoints")) / BEST_WEIGHTS_NAME
    shipped = SHIPPED_WEIGHTS["clean"]
    if checkpoint_dir is None and shipped.is_file() and (prefer_pretrained or not own.is_file()):
        return shipped
    return own


# --- Training state (--resume) ----------------------------------------------------------------------


def has_training_state(checkpoint_dir: Path) -> bool:
    return (checkpoint_dir / STATE_NAME).is_file() and (checkpoint_dir / LATEST_NAME).is_file()


def read_state(checkpoint_dir: Path) -> tuple[int, float, int]:
    """(epochs completed, best validation PSNR, its epoch) from state.json; (0, -inf, 0) without one."""
    path = checkpoint_dir / STATE_NAME
    state = read_json(path) if path.is_file() else {}
    return int(state.get("epoch", 0)), float(state.get("best_val_psnr", -math.inf)), int(state.get("best_epoch", 0))


def save_training_state(
    model: keras.Model, checkpoint_dir: Path, epoch: int, best_psnr: float, best_epoch: int
) -> None:
    """latest.keras, then state.json. A kill between the two leaves the previous state.json pointing
    at an older epoch, and resuming simply repeats one epoch."""
    write_atomic(checkpoint_dir / LATEST_NAME, model.save)
    state = {"epoch": epoch, "best_val_psnr": best_psnr, "best_epoch": best_epoch}
    write_text_atomic(checkpoint_dir / STATE_NAME, json.dumps(state, indent=1) + "\n")


def load_training_state(checkpoint_dir: Path) -> keras.Model:
    """The compiled model with its optimizer state from latest.keras, or a CheckpointError that
    says whether best.weights.h5 is still there to fall back on."""
    path = checkpoint_dir / LATEST_NAME
    problem = None if zipfile.is_zipfile(path) else "corrupt: not a Keras archive"
    if problem is None:
        try:
            return keras.models.load_model(path, safe_mode=True, compile=True)
        except Exception as error:  # A damaged archive surfaces as many exception types.
            problem = f"corrupt or unreadable ({one_line(error)})"
    _, best_psnr, best_epoch = read_state(checkpoint_dir)
    best = checkpoint_dir / BEST_WEIGHTS_NAME
    fallback = (
        f"; {best} (epoch {best_epoch}, {best_psnr:.2f} dB) is intact for test.py and upscale.py"
        if best.is_file() and _loads(best)
        else "; no usable best.weights.h5 either"
    )
    raise CheckpointError(
        f"{path}: {problem}; the training state cannot be resumed{fallback}; start a new run with --overwrite"
    )


def _loads(weights_path: Path) -> bool:
    try:
        load_for_inference(weights_path)
    except CheckpointError:
        return False
    return True


def adam_of(model: keras.Model) -> keras.optimizers.Optimizer:
    """The Adam optimizer itself, also when a loss-scale optimizer wraps it."""
    return getattr(model.optimizer, "inner_optimizer", model.optimizer)


def transfer_training_state(saved: keras.Model, model: keras.Model) -> None:
    """Weights and Adam's state (step count, moments) from a resumed model into a freshly built,
    compiled one, which may compute in another precision: the variables are float32 in both."""
    model.set_weights(saved.get_weights())
    source, target = adam_of(saved), adam_of(model)
    target.build(model.trainable_variables)
    if len(source.variables) != len(target.variables):
        raise CheckpointError("the saved optimizer state does not match this model")
    for saved_variable, variable in zip(source.variables, target.variables, strict=True):
        variable.assign(saved_variable)
