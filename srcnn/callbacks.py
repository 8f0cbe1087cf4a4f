"""The Keras callbacks of a training run: validation against bicubic, checkpoints, the history log.

Keras' own callbacks are used where they do the job (LearningRateScheduler, TensorBoard,
BackupAndRestore). These three exist because Keras' lack something train.py needs:
- Validation: Keras validates through `evaluate`, with no bicubic baseline, and under
  MultiWorkerMirroredStrategy through the distributed path train.py cannot use (see distribution.py).
- BestAndLatest: ModelCheckpoint writes in place (a kill mid-write leaves a broken file), keeps no
  state.json (epoch, best PSNR) beside the model, and would save diverged weights.
- HistoryLog: CSVLogger appends, so a run resumed after a kill repeats the epochs it redoes.

Validation PSNR here is the *training-time* convention: RGB (val_psnr) or luma (val_psnr_y), float
images as the network outputs them (no rounding, no border shaved), peak 1. metrics.py holds the
conventions of test.py.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from srcnn.checkpoints import BEST_WEIGHTS_NAME, save_training_state
from srcnn.files import write_atomic, write_text_atomic
from srcnn.metrics import Y_WEIGHTS


def psnr_rgb_float(high_res: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
    """Per-image PSNR in dB of [-1, 1] tensors, taken in [0, 1] with peak 1 (RGB, no rounding)."""
    return tf.image.psnr((high_res + 1.0) / 2.0, (tf.cast(predicted, tf.float32) + 1.0) / 2.0, max_val=1.0)


def psnr_y_float(high_res: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
    """Per-image PSNR in dB of the luma of [-1, 1] tensors: Y as metrics.rgb_to_y (BT.601), peak 255
    (1 here), but unrounded and unshaved: the benchmarks' Y-PSNR in the training-time convention."""
    weights = tf.constant(Y_WEIGHTS, tf.float32) / 255.0  # Y's offset of 16 cancels in the error

    def luma(image: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum((tf.cast(image, tf.float32) + 1.0) / 2.0 * weights, axis=-1, keepdims=True)

    return tf.image.psnr(luma(high_res), luma(predicted), max_val=1.0)


def ssim_rgb_float(high_res: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
    """Per-image SSIM (11x11 Gaussian window, RGB channels averaged) of [-1, 1] tensors, in [0, 1]."""
    return tf.image.ssim((high_res + 1.0) / 2.0, (tf.cast(predicted, tf.float32) + 1.0) / 2.0, max_val=1.0)


class Validation(keras.callbacks.Callback):
    """Validation loss, PSNR and SSIM of the model each epoch, and of the bicubic input once.

    In one pass over the validation pairs, on every worker alike. Training batches are not
    scored: SSIM on every training batch cost about 6% of the training time (benchmarks/README.md).
    """

    def __init__(self, validation: tf.data.Dataset) -> None:
        super().__init__()
        self.validation = validation
        bicubic = self.scores(lambda low_res: low_res)
        self.baseline = {f"val_bicubic_{key[4:]}": value for key, value in bicubic.items() if key != "val_loss"}
        self._predict = None

    def scores(self, predict) -> dict[str, float]:
        losses, psnr_values, psnr_y_values, ssim_values = [], [], [], []
        for low_res, high_res in self.validation:
            predicted = tf.cast(predict(low_res), tf.float32)
            losses.append(tf.reduce_mean(tf.square(high_res - predicted), axis=[1, 2, 3]).numpy())
            psnr_values.append(psnr_rgb_float(high_res, predicted).numpy())
            psnr_y_values.append(psnr_y_float(high_res, predicted).numpy())
            ssim_values.append(ssim_rgb_float(high_res, predicted).numpy())
        return {
            "val_loss": float(np.mean(np.concatenate(losses))),  # per-image means, as Keras averages
            "val_psnr": float(np.mean(np.concatenate(psnr_values))),
            "val_psnr_y": float(np.mean(np.concatenate(psnr_y_values))),
            "val_ssim": float(np.mean(np.concatenate(ssim_values))),
        }

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._predict is None:  # one compiled graph, for validation images of any size
            self._predict = tf.function(lambda low_res: self.model(low_res, training=False), reduce_retracing=True)
        if logs is not None:
            logs.update(self.scores(self._predict))
            logs.update(self.baseline)


class BestAndLatest(keras.callbacks.Callback):
    """Every epoch: the best weights by validation PSNR (RGB, or luma: `monitor`), and the whole
    training state for --resume.

    A NaN or infinite loss stops training at once, at the batch where it appears (as Keras'
    TerminateOnNaN would), and nothing is saved after it: diverged weights never replace good ones.
    """

    def __init__(
        self,
        checkpoint_dir: Path,
        completed_epochs: int,
        best_psnr: float,
        best_epoch: int,
        to_plain: Callable[[keras.Model], keras.Model] = lambda model: model,
        monitor: str = "val_psnr",
    ) -> None:
        super().__init__()
        self.monitor = monitor  # the validation score that picks the best epoch: val_psnr or val_psnr_y
        self.checkpoint_dir = checkpoint_dir
        self.to_plain = to_plain  # the blog's network for best.weights.h5 (reparam.collapse when training branches)
        self.completed_epochs = completed_epochs
        self.best_psnr = best_psnr
        self.best_epoch = best_epoch
        self.stopped_on_nan = False
        self.start: keras.Model | None = None  # the new run's start, until an epoch has ended

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not math.isfinite(float((logs or {}).get("loss", 0.0))):
            self.stopped_on_nan = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.stopped_on_nan or not all(math.isfinite(float(logs.get(key, 0.0))) for key in ("loss", "val_loss")):
            self.stopped_on_nan = True
            self.model.stop_training = True
            return
        self.completed_epochs = epoch + 1
        val_psnr = float(logs.get(self.monitor, -math.inf))
        if val_psnr > self.best_psnr:
            self.best_psnr, self.best_epoch = val_psnr, epoch + 1
            write_atomic(self.checkpoint_dir / BEST_WEIGHTS_NAME, self.to_plain(self.model).save_weights)
        elif self.start is not None:  # no epoch has beaten the start yet: it is the best so far
            write_atomic(self.checkpoint_dir / BEST_WEIGHTS_NAME, self.start.save_weights)
        self.start = None
        self.save_latest()

    def remember_start(self, model: keras.Model, val_psnr: float) -> None:
        """The start as "epoch 0": if the first epoch does not beat it, it becomes best.weights.h5
        then (not now: a run that fails in its first epoch leaves no files, and can simply be rerun)."""
        plain = self.to_plain(model)
        self.start = keras.models.clone_model(plain)
        self.start.set_weights(plain.get_weights())
        self.best_psnr, self.best_epoch = val_psnr, 0

    def save_latest(self) -> None:
        save_training_state(self.model, self.checkpoint_dir, self.completed_epochs, self.best_psnr, self.best_epoch)


class HistoryLog(keras.callbacks.Callback):
    """history.csv (one row per epoch, exactly once, also across resumes) and curves.png, which also
    plots the start's validation scores as epoch 0 (start.json: kept for resumed runs)."""

    def __init__(self, results_dir: Path, initial_epoch: int, start: dict | None = None) -> None:
        super().__init__()
        self.csv_path = results_dir / "history.csv"
        self.plot_path = results_dir / "curves.png"
        self.start_path = results_dir / "start.json"
        headless_pyplot()  # imported now, not mid-run: a Ctrl-C inside an import leaves broken objects behind
        self.rows = [row for row in read_history(self.csv_path) if int(row["epoch"]) <= initial_epoch]
        if start is not None:  # a new run: its start, what every epoch is measured against
            self.start = {key: float(value) for key, value in start.items()}
            write_text_atomic(self.start_path, json.dumps(self.start, indent=1) + "\n")
        else:
            try:
                self.start = json.loads(self.start_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.start = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.rows.append({"epoch": epoch + 1, **{key: float(value) for key, value in sorted(logs.items())}})
        write_history(self.csv_path, self.rows)
        plot_history(([{"epoch": 0, **self.start}] if self.start else []) + self.rows, self.plot_path)


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


def headless_pyplot():
    """matplotlib.pyplot drawing to files only (imported on first use: a second or so)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(rows: list[dict], path: Path) -> None:
    """Loss and PSNR curves, model against bicubic, as a PNG (headless)."""
    plt = headless_pyplot()

    def column(name: str) -> tuple[list[int], list[float]]:
        pairs = [(int(row["epoch"]), float(row[name])) for row in rows if row.get(name) not in (None, "")]
        return [epoch for epoch, _ in pairs], [value for _, value in pairs]

    figure, (loss_axes, psnr_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for name, label in (("loss", "train"), ("val_loss", "validation")):
        loss_axes.plot(*column(name), label=label)
    loss_axes.set(title="MSE loss ([-1, 1] range)", xlabel="epoch", yscale="log")
    scores = (
        ("val_psnr", "model, RGB"),
        ("val_bicubic_psnr", "bicubic, RGB"),
        ("val_psnr_y", "model, luma (Y)"),
        ("val_bicubic_psnr_y", "bicubic, luma (Y)"),
    )
    for name, label in scores:
        if column(name)[0]:  # runs recorded before the luma score have none
            psnr_axes.plot(*column(name), label=label)
    psnr_axes.set(title="validation PSNR (dB)", xlabel="epoch")
    from matplotlib.ticker import MaxNLocator

    for axes in (loss_axes, psnr_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs, also on short runs
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    try:
        write_atomic(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
    finally:
        plt.close(figure)
