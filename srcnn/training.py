"""Training with Keras fit: pixel MSE, Adam, per-epoch validation against bicubic, safe checkpoints.

Checkpoint folder:
    config.json         model config (+ data and training settings) to rebuild the network
    best.weights.h5     weights with the best validation PSNR so far
    latest.keras        the whole training state (weights and optimizer) for --resume
    state.json          epochs completed and the best validation PSNR, written after latest.keras
Results folder:
    history.csv, curves.png, tensorboard/
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from srcnn.files import write_atomic, write_text_atomic
from srcnn.network import ModelConfig, build_model, config_from_dict, initialize_near_identity
from srcnn.precision import JIT_CHOICES, PRECISIONS

CONFIG_NAME = "config.json"
BEST_WEIGHTS_NAME = "best.weights.h5"
LATEST_NAME = "latest.keras"
STATE_NAME = "state.json"
# The model that ships with the project (trained on T91, see README), used when nothing else is given.
PRETRAINED_WEIGHTS = Path(__file__).resolve().parent.parent / "checkpoints" / "pretrained" / BEST_WEIGHTS_NAME
INITIALIZATIONS = ("near-identity", "glorot")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100  # assumed: the blog trained "about 10 hours" on a GTX 1060 and gives no count
    batch_size: int = 16  # assumed: not in the blog
    # Assumed: Adam's step size; the blog names no optimizer. 1e-3 beat 3e-4 on the demo (README).
    learning_rate: float = 1e-3
    seed: int = 0
    # Assumed: the blog does not say how the weights start. "near-identity" starts from a net that
    # passes its input through (see network.initialize_near_identity); "glorot" is Keras' default.
    init: str = "near-identity"
    # "constant", or "cosine": per-epoch cosine decay from learning_rate to min_learning_rate.
    schedule: str = "constant"
    min_learning_rate: float = 1e-5
    # 0 trains on the prepared pairs as they are (the blog's 128x128 squares); N > 0 trains on
    # random N x N crops of them, `repeat` crops per pair per epoch (beyond the blog).
    patch_size: int = 0
    repeat: int = 1
    augment: bool = False  # random flips and quarter turns (beyond the blog)
    # Beyond the blog: the number format and XLA (srcnn/precision.py); "auto" picks per machine.
    precision: str = "auto"
    jit: str = "auto"

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.repeat < 1 or self.patch_size < 0:
            raise ValueError("epochs, batch size and repeat must be at least 1, patch size at least 0")
        if not self.learning_rate > 0 or not self.min_learning_rate > 0:
            raise ValueError(f"learning rates must be positive, got {self.learning_rate}, {self.min_learning_rate}")
        if self.init not in INITIALIZATIONS:
            raise ValueError(f"init must be one of {INITIALIZATIONS}, got {self.init!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.jit not in JIT_CHOICES:
            raise ValueError(f"jit must be one of {JIT_CHOICES}, got {self.jit!r}")
        if self.augment and not self.patch_size:
            # Quarter turns need square images; patches are square, prepared pairs may not be.
            raise ValueError("augment needs a patch size (--patch-size)")

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate for a 0-based epoch under the schedule."""
        if self.schedule == "constant":
            return self.learning_rate
        progress = min(epoch / max(self.epochs - 1, 1), 1.0)
        return self.min_learning_rate + 0.5 * (self.learning_rate - self.min_learning_rate) * (
            1 + math.cos(math.pi * progress)
        )

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        return config_from_dict(cls, values, "training settings")


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or made for another model; the message says what to do."""


# --- Metrics on the model's [-1, 1] range -------------------------------------------------------


@keras.saving.register_keras_serializable(package="srcnn")
def psnr(high_res: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
    """Per-image PSNR in dB, computed in [0, 1] so the peak is 1 (RGB, float, no rounding)."""
    return tf.image.psnr((high_res + 1.0) / 2.0, (tf.cast(predicted, tf.float32) + 1.0) / 2.0, max_val=1.0)


@keras.saving.register_keras_serializable(package="srcnn")
def ssim(high_res: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
    """Per-image SSIM (11x11 Gaussian window, RGB channels averaged), computed in [0, 1]."""
    return tf.image.ssim((high_res + 1.0) / 2.0, (tf.cast(predicted, tf.float32) + 1.0) / 2.0, max_val=1.0)


def compile_model(model: keras.Model, learning_rate: float, precision: str = "float32", jit: bool = False) -> None:
    # Blog: "Our loss function is about as simple as possible, its just the mean-squared error".
    # Assumed: Adam, the usual choice for the blog's era of TF tutorials.
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    if precision == "mixed_float16":
        # float16 gradients of a small loss underflow; scale the loss up and the gradients back.
        # (bfloat16 has float32's exponent range and needs no scaling.)
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    # No metrics on training batches (see Validation): the loss says how training goes.
    model.compile(optimizer=optimizer, loss="mse", jit_compile=jit)


# --- Safety checks ------------------------------------------------------------------------------


def check_writable(folder: Path) -> None:
    """Fail now, not after hours of training, if a folder cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise CheckpointError(f"{folder}: cannot write there ({error.strerror or error})") from None


# --- Checkpoints -------------------------------------------------------------------------------


def one_line(error: BaseException) -> str:
    """The first line of an exception's message: errors are reported in one line."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not found") from None
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable ({one_line(error)})") from None


def load_train_config(checkpoint_dir: Path) -> dict:
    """The training settings stored next to a checkpoint, as a dict ({} when there are none)."""
    path = checkpoint_dir / CONFIG_NAME
    return read_json(path).get("train", {}) if path.is_file() else {}


def load_model_config(checkpoint_dir: Path) -> ModelConfig:
    """The model config stored next to a checkpoint."""
    values = read_json(checkpoint_dir / CONFIG_NAME)
    try:
        return ModelConfig.from_dict(values["model"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{checkpoint_dir / CONFIG_NAME}: not a model config ({one_line(error)})") from None


def load_for_inference(weights_path: Path) -> tuple[keras.Model, ModelConfig]:
    """Rebuild the network from the config.json beside `weights_path` and load the weights."""
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: no such checkpoint; train one first with: python train.py")
    config = load_model_config(weights_path.parent)
    model = build_model(config)
    try:
        model.load_weights(weights_path)
    except Exception as error:  # Keras raises ValueError, OSError or h5py errors for bad files.
        raise CheckpointError(
            f"{weights_path}: cannot load these weights into the model its config.json describes, {config}"
            f" ({one_line(error)})"
        ) from None
    return model, config


def choose_weights(checkpoint: Path | None, checkpoint_dir: Path | None, prefer_pretrained: bool = False) -> Path:
    """--checkpoint if given; else the best weights in --checkpoint-dir (default: checkpoints);
    else, when no folder was named and it holds none, the shipped pretrained model.

    `prefer_pretrained` (upscale.py) turns the last two around when no folder was named.
    """
    if checkpoint is not None:
        return checkpoint
    own = (checkpoint_dir or Path("checkpoints")) / BEST_WEIGHTS_NAME
    if checkpoint_dir is None and PRETRAINED_WEIGHTS.is_file() and (prefer_pretrained or not own.is_file()):
        return PRETRAINED_WEIGHTS
    return own


def has_training_state(checkpoint_dir: Path) -> bool:
    return (checkpoint_dir / STATE_NAME).is_file() and (checkpoint_dir / LATEST_NAME).is_file()


def load_training_state(checkpoint_dir: Path) -> tuple[keras.Model, dict]:
    """The compiled model with its optimizer state, and state.json, from the latest checkpoint."""
    state = read_json(checkpoint_dir / STATE_NAME)
    try:
        model = keras.models.load_model(checkpoint_dir / LATEST_NAME, safe_mode=True, compile=True)
    except Exception as error:  # A corrupt zip or h5 file surfaces as many exception types.
        raise CheckpointError(f"{checkpoint_dir / LATEST_NAME}: cannot load ({one_line(error)})") from None
    return model, state


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


class CheckpointCallback(keras.callbacks.Callback):
    """Saves the latest state every epoch and the best weights by validation PSNR.

    Order of writes: latest.keras, then state.json; a kill between them leaves the previous
    state.json pointing at an older epoch, and resuming simply repeats one epoch.
    """

    def __init__(self, checkpoint_dir: Path, best_psnr: float = -math.inf, best_epoch: int = 0) -> None:
        super().__init__()
        self.checkpoint_dir = checkpoint_dir
        self.best_psnr = best_psnr
        self.best_epoch = best_epoch
        self.completed_epochs = 0
        self.stopped_on_nan = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if not all(math.isfinite(float(logs.get(key, 0.0))) for key in ("loss", "val_loss")):
            # Never overwrite a good checkpoint with diverged weights.
            self.stopped_on_nan = True
            self.model.stop_training = True
            return
        self.completed_epochs = epoch + 1
        val_psnr = float(logs.get("val_psnr", -math.inf))
        if val_psnr > self.best_psnr:
            self.best_psnr, self.best_epoch = val_psnr, epoch + 1
            write_atomic(self.checkpoint_dir / BEST_WEIGHTS_NAME, self.model.save_weights)
        self.save_latest()

    def save_latest(self) -> None:
        write_atomic(self.checkpoint_dir / LATEST_NAME, self.model.save)
        state = {"epoch": self.completed_epochs, "best_val_psnr": self.best_psnr, "best_epoch": self.best_epoch}
        write_text_atomic(self.checkpoint_dir / STATE_NAME, json.dumps(state, indent=1) + "\n")


class Validation(keras.callbacks.Callback):
    """Validation loss, PSNR and SSIM of the model each epoch, and of the bicubic input once.

    In one pass over the validation pairs, on every worker alike. Training batches are not
    scored: SSIM on every training batch cost about 6% of the training time (benchmarks/README.md).
    """

    def __init__(self, validation: tf.data.Dataset) -> None:
        super().__init__()
        self.validation = validation
        bicubic = self.scores(lambda low_res: low_res)
        self.baseline = {"val_bicubic_psnr": bicubic["val_psnr"], "val_bicubic_ssim": bicubic["val_ssim"]}
        self._predict = None

    def scores(self, predict) -> dict[str, float]:
        losses, psnr_values, ssim_values = [], [], []
        for low_res, high_res in self.validation:
            predicted = tf.cast(predict(low_res), tf.float32)
            losses.append(tf.reduce_mean(tf.square(high_res - predicted), axis=[1, 2, 3]).numpy())
            psnr_values.append(psnr(high_res, predicted).numpy())
            ssim_values.append(ssim(high_res, predicted).numpy())
        return {
            "val_loss": float(np.mean(np.concatenate(losses))),  # per-image means, as Keras averages
            "val_psnr": float(np.mean(np.concatenate(psnr_values))),
            "val_ssim": float(np.mean(np.concatenate(ssim_values))),
        }

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._predict is None:  # one compiled graph, for validation images of any size
            self._predict = tf.function(lambda low_res: self.model(low_res, training=False), reduce_retracing=True)
        if logs is not None:
            logs.update(self.scores(self._predict))
            logs.update(self.baseline)


class HistoryCallback(keras.callbacks.Callback):
    """history.csv (one row per epoch, exactly once, also across resumes) and curves.png."""

    def __init__(self, results_dir: Path, initial_epoch: int) -> None:
        super().__init__()
        self.csv_path = results_dir / "history.csv"
        self.plot_path = results_dir / "curves.png"
        self.rows = [row for row in read_history(self.csv_path) if int(row["epoch"]) <= initial_epoch]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.rows.append({"epoch": epoch + 1, **{key: float(value) for key, value in sorted(logs.items())}})
        write_history(self.csv_path, self.rows)
        plot_history(self.rows, self.plot_path)


def read_history(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as file:
            return list(csv.DictReader(file))
    except FileNotFoundError:
        return []


def write_history(path: Path, rows: list[dict]) -> None:
    columns = ["epoch"] + sorted({key for row in rows for key in row} - {"epoch"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def plot_history(rows: list[dict], path: Path) -> None:
    """Loss and PSNR curves, model against bicubic, as a PNG (headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def column(name: str) -> tuple[list[int], list[float]]:
        pairs = [(int(row["epoch"]), float(row[name])) for row in rows if row.get(name) not in (None, "")]
        return [epoch for epoch, _ in pairs], [value for _, value in pairs]

    figure, (loss_axes, psnr_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for name, label in (("loss", "train"), ("val_loss", "validation")):
        loss_axes.plot(*column(name), label=label)
    loss_axes.set(title="MSE loss ([-1, 1] range)", xlabel="epoch", yscale="log")
    for name, label in (("val_psnr", "model (validation)"), ("val_bicubic_psnr", "bicubic (validation)")):
        psnr_axes.plot(*column(name), label=label)
    psnr_axes.set(title="PSNR, RGB (dB)", xlabel="epoch")
    for axes in (loss_axes, psnr_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    try:
        write_atomic(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
    finally:
        plt.close(figure)


def write_run_config(checkpoint_dir: Path, model_config: ModelConfig, train_config: TrainConfig, data: dict) -> None:
    run_config = {"model": model_config.to_dict(), "train": asdict(train_config), "data": data}
    write_text_atomic(checkpoint_dir / CONFIG_NAME, json.dumps(run_config, indent=1) + "\n")


def describe_device() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"GPU ({', '.join(gpu.name for gpu in gpus)})"
    return "CPU (no GPU visible)"


# --- The whole run -------------------------------------------------------------------------------


@dataclass
class RunResult:
    status: str  # "finished", "interrupted", "diverged" or "nothing to do"
    epochs_completed: int
    best_val_psnr: float
    best_epoch: int
    bicubic_val_psnr: float


def train(
    data_dir: Path,
    checkpoint_dir: Path,
    results_dir: Path,
    train_config: TrainConfig,
    model_config: ModelConfig | None = None,
    resume: bool = False,
    overwrite: bool = False,
    verbose: int = 1,
    log=print,
    strategy: str = "default",
) -> RunResult:
    """Train (or resume) the blog's network on data_dir's train split, validating on its val split.

    `model_config` None means the default for a new run, or whatever the checkpoint holds when
    resuming; a given config that differs from the checkpoint's is refused. `strategy` is a
    distribution.STRATEGIES name; `train_config.batch_size` is per replica. With several
    workers only the chief writes to checkpoint_dir and results_dir; the others write to a
    temporary folder, removed at the end, and read a run to resume from checkpoint_dir.
    """
    import shutil

    from srcnn.distribution import describe, in_multi_worker_mode, is_chief, make_strategy

    # TensorFlow wants the multi-worker strategy made before any other TensorFlow work.
    distribution = make_strategy(strategy)
    log(describe(distribution))
    backup_dir = None
    if in_multi_worker_mode(distribution):
        # Fault tolerance: the chief backs up the training state every epoch; after a crash, the same
        # command run again on every worker restores it (all from the chief's copy, so all restart
        # at the same epoch). The backup goes away when training ends normally.
        backup_dir = checkpoint_dir / "backup"
    arguments = (data_dir, train_config, model_config, resume, overwrite, verbose, log, distribution)
    if is_chief(distribution):
        return _train(checkpoint_dir, results_dir, *arguments, backup_dir)
    with tempfile.TemporaryDirectory(prefix="srcnn-worker-") as scratch:
        own_checkpoints = Path(scratch) / "checkpoints"
        own_checkpoints.mkdir()
        if resume and has_training_state(checkpoint_dir):
            for name in (CONFIG_NAME, LATEST_NAME, STATE_NAME):
                shutil.copy2(checkpoint_dir / name, own_checkpoints / name)
        own_backup = None
        if backup_dir is not None:
            own_backup = Path(scratch) / "backup"
            if backup_dir.is_dir():  # a restart: the chief's backup and the run's settings
                shutil.copytree(backup_dir, own_backup)
                for name in (CONFIG_NAME, STATE_NAME):
                    if (checkpoint_dir / name).is_file():
                        shutil.copy2(checkpoint_dir / name, own_checkpoints / name)
        return _train(own_checkpoints, Path(scratch) / "results", *arguments, own_backup)


def backup_epoch(backup_dir: Path | None) -> int | None:
    """The epoch a worker's BackupAndRestore folder holds, or None when there is no backup."""
    if backup_dir is None:
        return None
    try:
        return int(json.loads((backup_dir / "training_metadata.json").read_text(encoding="utf-8"))["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _train(
    checkpoint_dir: Path,
    results_dir: Path,
    data_dir: Path,
    train_config: TrainConfig,
    model_config: ModelConfig | None,
    resume: bool,
    overwrite: bool,
    verbose: int,
    log,
    distribution: tf.distribute.Strategy,
    backup_dir: Path | None,
) -> RunResult:
    from srcnn.dataset import DataError, image_sizes, list_pairs, make_dataset, shard_by_data
    from srcnn.distribution import fit_across_workers, in_multi_worker_mode
    from srcnn.precision import resolve_jit, resolve_precision

    if resume and not has_training_state(checkpoint_dir):
        raise CheckpointError(
            f"{checkpoint_dir}: no training state to resume; start a run with: python train.py"
            f" --checkpoint-dir {checkpoint_dir}"
        )
    train_config.validate()
    train_pairs, val_pairs = list_pairs(data_dir, "train"), list_pairs(data_dir, "val")
    if not train_pairs:
        raise DataError(
            f"{data_dir / 'train'}: no prepared image pairs; make them with: "
            f"python prep_images.py --input YOUR_PHOTOS --output {data_dir}  (or try: python train.py --demo)"
        )
    if not val_pairs:
        log(f"warning: {data_dir / 'val'} has no pairs; validating on the training pairs instead")
        val_pairs = train_pairs
    train_sizes, val_sizes = image_sizes(train_pairs), image_sizes(val_pairs)
    patch = train_config.patch_size
    if patch and min(min(size) for size in train_sizes) < patch:
        raise DataError(f"{data_dir / 'train'}: some pairs are smaller than --patch-size {patch}")
    if not patch and len(train_sizes) > 1:
        raise DataError(
            f"{data_dir / 'train'}: pairs have several sizes {sorted(train_sizes)[:4]}; train on crops with"
            " --patch-size, or prepare them again with one --size"
        )
    check_writable(checkpoint_dir)
    check_writable(results_dir)
    for folder in (checkpoint_dir, results_dir):
        for leftover in folder.glob(".tmp-*"):  # half-written by a run that was killed
            leftover.unlink(missing_ok=True)

    precision, precision_reason = resolve_precision(train_config.precision)
    jit = resolve_jit(train_config.jit)
    best_psnr, best_epoch, initial_epoch = -math.inf, 0, 0
    restart_epoch = backup_epoch(backup_dir)
    # The model, its optimizer and metrics must be made under the strategy.
    with distribution.scope():
        if restart_epoch is not None:
            # A restarted worker: BackupAndRestore brings back the weights, optimizer and epoch.
            log(f"restarting from this worker's backup in {backup_dir} (epoch {restart_epoch})")
            model_config = (
                load_model_config(checkpoint_dir) if (checkpoint_dir / CONFIG_NAME).is_file() else model_config
            )
            model_config = model_config or ModelConfig()
            model = build_model(model_config, precision)
            compile_model(model, train_config.learning_rate, precision, jit)
            # Adam's variables are made here, under the strategy, before the backup is loaded into them.
            model.optimizer.build(model.trainable_variables)
            if (checkpoint_dir / STATE_NAME).is_file():
                state = read_json(checkpoint_dir / STATE_NAME)
                best_psnr = float(state.get("best_val_psnr", -math.inf))
                best_epoch = int(state.get("best_epoch", 0))
            initial_epoch = restart_epoch
            keras.utils.set_random_seed(train_config.seed + initial_epoch)
        elif resume:
            saved_config = load_model_config(checkpoint_dir)
            if model_config is not None and model_config != saved_config:
                raise CheckpointError(
                    f"{checkpoint_dir} holds a model with {saved_config}, not the requested {model_config}"
                )
            saved_model, state = load_training_state(checkpoint_dir)
            # Rebuilt rather than used as loaded: the run may go on in another precision (a CPU run
            # resumed on a GPU) or with another XLA setting.
            model = build_model(saved_config, precision)
            compile_model(model, train_config.learning_rate, precision, jit)
            transfer_training_state(saved_model, model)
            initial_epoch = int(state.get("epoch", 0))
            best_psnr = float(state.get("best_val_psnr", -math.inf))
            best_epoch = int(state.get("best_epoch", 0))
            model_config = saved_config
            run_config = read_json(checkpoint_dir / CONFIG_NAME)
            write_run_config(checkpoint_dir, model_config, train_config, run_config.get("data", {}))
            log(f"resuming from epoch {initial_epoch} of {checkpoint_dir} (best validation PSNR {best_psnr:.2f} dB)")
            if initial_epoch >= train_config.epochs:
                log(f"already trained {initial_epoch} epochs; ask for more with --epochs")
                return RunResult("nothing to do", initial_epoch, best_psnr, best_epoch, math.nan)
            keras.utils.set_random_seed(train_config.seed + initial_epoch)
        else:
            if has_training_state(checkpoint_dir) and not overwrite:
                epoch = read_json(checkpoint_dir / STATE_NAME).get("epoch", "?")
                raise CheckpointError(
                    f"{checkpoint_dir} already holds a training run (epoch {epoch}): continue it with --resume,"
                    " or start over with --overwrite"
                )
            if (checkpoint_dir / BEST_WEIGHTS_NAME).is_file() and not overwrite:
                raise CheckpointError(
                    f"{checkpoint_dir / BEST_WEIGHTS_NAME} exists: choose another --checkpoint-dir,"
                    " or replace it with --overwrite"
                )
            model_config = model_config or ModelConfig()
            keras.utils.set_random_seed(train_config.seed)
            model = build_model(model_config, precision)
            if train_config.init == "near-identity":
                initialize_near_identity(model, model_config)
            compile_model(model, train_config.learning_rate, precision, jit)
            manifest = read_json(data_dir / "manifest.json") if (data_dir / "manifest.json").is_file() else {}
            write_run_config(checkpoint_dir, model_config, train_config, manifest.get("config", {}))
            (checkpoint_dir / BEST_WEIGHTS_NAME).unlink(missing_ok=True)

    log(f"training on {describe_device()}: {len(train_pairs)} training pairs, {len(val_pairs)} validation pairs")
    log(f"precision: {precision} ({precision_reason}); XLA: {'on' if jit else 'off'}")
    replicas = distribution.num_replicas_in_sync
    if replicas > 1:
        log(
            f"batch: {train_config.batch_size} per replica x {replicas} replicas = {train_config.batch_size * replicas}"
        )
    train_data = make_dataset(
        train_pairs,
        train_config.batch_size * replicas,
        shuffle=True,
        seed=train_config.seed + initial_epoch,
        patch_size=patch,
        repeat=train_config.repeat,
        augment=train_config.augment,
    )
    # Whole validation images of several sizes (a benchmark set) go one at a time.
    val_batch_size = train_config.batch_size if len(val_sizes) == 1 else 1
    val_data = make_dataset(val_pairs, val_batch_size, shuffle=False)  # not distributed: see Validation
    # Every worker reads all the files; each takes its own share of every batch.
    train_data = shard_by_data(train_data)

    validation = Validation(val_data)
    checkpoints = CheckpointCallback(checkpoint_dir, best_psnr, best_epoch)
    checkpoints.completed_epochs = initial_epoch
    callbacks = [
        validation,  # first: the callbacks after it read val_psnr
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.LearningRateScheduler(train_config.learning_rate_at),
        checkpoints,
        HistoryCallback(results_dir, initial_epoch),
        keras.callbacks.TensorBoard(log_dir=str(results_dir / "tensorboard")),
    ]
    if backup_dir is not None:
        callbacks.append(keras.callbacks.BackupAndRestore(str(backup_dir)))
    bicubic_psnr = validation.baseline["val_bicubic_psnr"]
    status = "finished"
    try:
        if in_multi_worker_mode(distribution):
            epochs, log_lines = train_config.epochs, (log if verbose else lambda line: None)
            fit_across_workers(model, distribution, train_data, epochs, initial_epoch, callbacks, log_lines)
        else:
            model.fit(
                train_data,
                epochs=train_config.epochs,
                initial_epoch=initial_epoch,
                callbacks=callbacks,
                shuffle=False,  # The tf.data pipeline already shuffles, with a seed.
                verbose=verbose,
            )
    except KeyboardInterrupt:
        status = "interrupted"
        if not _diverged(model):
            checkpoints.save_latest()
    if checkpoints.stopped_on_nan or _diverged(model):
        status = "diverged"
    return RunResult(status, checkpoints.completed_epochs, checkpoints.best_psnr, checkpoints.best_epoch, bicubic_psnr)


def _diverged(model: keras.Model) -> bool:
    return not all(np.all(np.isfinite(weight)) for weight in model.get_weights())
