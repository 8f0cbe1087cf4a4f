"""A training run, in a few named steps: find the data, start the model (new, resumed or restarted),
make the datasets and callbacks, fit.

Blog: pixel mean-squared error on images scaled to [-1, 1]. What the run writes is described in
checkpoints.py (the checkpoint folder) and callbacks.py (history.csv, curves.png, tensorboard/).
"""

from __future__ import annotations

import hashlib
import json
import math
import shlex
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import keras
import numpy as np
import tensorflow as tf

from srcnn.callbacks import BestAndLatest, HistoryLog, Validation
from srcnn.checkpoints import (
    BEST_WEIGHTS_NAME,
    CONFIG_NAME,
    LATEST_NAME,
    SHIPPED_WEIGHTS,
    STATE_NAME,
    CheckpointError,
    check_writable,
    has_training_state,
    load_model_config,
    load_training_state,
    read_json,
    read_run_record,
    read_state,
    transfer_training_state,
    weights_of,
    write_run_record,
)
from srcnn.config import ModelConfig, TrainConfig
from srcnn.dataset import DataError, image_sizes, list_pairs, make_dataset, shard_by_data
from srcnn.distribution import describe, fit_across_workers, in_multi_worker_mode, is_chief, make_strategy
from srcnn.files import one_line
from srcnn.network import initialize_identity, initialize_near_identity
from srcnn.precision import resolve_jit, resolve_precision
from srcnn.preparation import MANIFEST_NAME
from srcnn.reparam import collapse, compiled_training_model, initialize_training_model


@dataclass(frozen=True)
class SelectionScore:
    """A validation PSNR that can pick best.weights.h5: its Validation key, bicubic's, and its name."""

    key: str
    bicubic_key: str
    label: str


# TrainConfig.select_on -> the score that picks the best epoch.
SELECTION_SCORES = {
    "rgb": SelectionScore("val_psnr", "val_bicubic_psnr", "PSNR"),
    "y": SelectionScore("val_psnr_y", "val_bicubic_psnr_y", "Y-PSNR"),
}


@dataclass(frozen=True)
class RunRequest:
    """What the caller asked for; `model_config` None means the default, or the resumed run's."""

    data_dir: Path
    train_config: TrainConfig
    model_config: ModelConfig | None = None
    resume: bool = False
    overwrite: bool = False
    verbose: int = 1
    log: Callable[[str], None] = print


@dataclass(frozen=True)
class RunFolders:
    checkpoints: Path
    results: Path
    backup: Path | None  # BackupAndRestore's folder with several workers, else None


@dataclass(frozen=True)
class TrainingData:
    train_pairs: list[tuple[Path, Path]]
    val_pairs: list[tuple[Path, Path]]
    val_sizes: set[tuple[int, int]]
    record: dict  # what config.json says the run trained and validated on


@dataclass(frozen=True)
class Start:
    """The compiled model and where it starts: epoch 0 for a new run (`new`: not resumed)."""

    model: keras.Model
    model_config: ModelConfig
    initial_epoch: int = 0
    best_psnr: float = -math.inf
    best_epoch: int = 0
    new: bool = False


@dataclass
class RunResult:
    # "finished", "interrupted", "diverged", "out of memory", "lost a worker" or "nothing to do"
    status: str
    epochs_completed: int
    best_val_psnr: float
    best_epoch: int
    bicubic_val_psnr: float
    score_label: str  # the validation score of best_val_psnr (SELECTION_SCORES' label)


def train(
    data_dir: Path,
    checkpoint_dir: Path,
    results_dir: Path,
    train_config: TrainConfig,
    model_config: ModelConfig | None = None,
    resume: bool = False,
    overwrite: bool = False,
    verbose: int = 1,
    log: Callable[[str], None] = print,
    strategy: str = "default",
) -> RunResult:
    """Train (or resume) the blog's network on data_dir's train split, validating on its val split.

    A given `model_config` that differs from a resumed checkpoint's is refused. `strategy` is a
    distribution.STRATEGIES name; `train_config.batch_size` is per replica. With several
    workers only the chief writes to checkpoint_dir and results_dir (see worker_folders).
    """
    request = RunRequest(data_dir, train_config, model_config, resume, overwrite, verbose, log)
    # Grappler's remapper tries to fuse each Conv + BiasAdd + LeakyReLU, which the LeakyReLU gradient
    # forbids (it reads the pre-activation the fusion removes), so it gave up on every training graph
    # with an "E ... remapper failed: Mutation::Apply error" line. Off: no such line, and the same
    # speed, measured for training and inference in both precisions (benchmarks/README.md).
    remapping = tf.config.optimizer.get_experimental_options().get("remapping")
    tf.config.optimizer.set_experimental_options({"remapping": False})
    try:
        return run_on_each_worker(request, checkpoint_dir, results_dir, strategy)
    finally:  # the setting is the process's: leave it as it was (say, for a test run next)
        tf.config.optimizer.set_experimental_options({"remapping": remapping if remapping is not None else True})


def run_on_each_worker(request: RunRequest, checkpoint_dir: Path, results_dir: Path, strategy: str) -> RunResult:
    """The chief runs in the run's folders, any other worker in temporary ones (see worker_folders)."""
    log, resume = request.log, request.resume
    # TensorFlow wants the multi-worker strategy made before any other TensorFlow work.
    distribution = make_strategy(strategy)
    log(describe(distribution))
    # Fault tolerance with several workers: the chief backs up the training state every epoch; after
    # a crash, the same command run again on every worker restores it, so all restart at the same
    # epoch. The backup goes away when training ends normally.
    backup_dir = checkpoint_dir / "backup" if in_multi_worker_mode(distribution) else None
    try:
        if is_chief(distribution):
            return run(RunFolders(checkpoint_dir, results_dir, backup_dir), request, distribution)
        with worker_folders(checkpoint_dir, backup_dir, resume) as folders:
            return run(folders, request, distribution)
    except (tf.errors.ResourceExhaustedError, MemoryError):
        # Out of memory before or after fit (the model, the bicubic baseline): what is saved is kept.
        epoch, best_psnr, best_epoch = read_state(checkpoint_dir)
        label = SELECTION_SCORES[request.train_config.select_on].label
        return RunResult("out of memory", epoch, best_psnr, best_epoch, math.nan, label)


@contextmanager
def worker_folders(checkpoint_dir: Path, backup_dir: Path | None, resume: bool) -> Iterator[RunFolders]:
    """A non-chief worker's own folders, in a temporary directory removed at the end: it reads the
    run to resume (or the chief's backup to restart from) from checkpoint_dir, and writes nothing there."""
    with tempfile.TemporaryDirectory(prefix="srcnn-worker-") as scratch:
        own_checkpoints = Path(scratch) / "checkpoints"
        own_checkpoints.mkdir()
        names = (CONFIG_NAME, LATEST_NAME, STATE_NAME) if resume and has_training_state(checkpoint_dir) else ()
        own_backup = None
        if backup_dir is not None:
            own_backup = Path(scratch) / "backup"
            if backup_dir.is_dir():  # a restart: the chief's backup and the run's settings
                shutil.copytree(backup_dir, own_backup)
                names = {*names, CONFIG_NAME, STATE_NAME}
        for name in names:
            if (checkpoint_dir / name).is_file():
                shutil.copy2(checkpoint_dir / name, own_checkpoints / name)
        yield RunFolders(own_checkpoints, Path(scratch) / "results", own_backup)


def run(folders: RunFolders, request: RunRequest, distribution: tf.distribute.Strategy) -> RunResult:
    """One process's part of a run, in the folders it writes to."""
    log = request.log
    if request.resume and not has_training_state(folders.checkpoints):
        started = (folders.checkpoints / "config.json").is_file()
        raise CheckpointError(
            f"{folders.checkpoints}: no training state to resume"
            + (" (the run stopped before its first epoch ended)" if started else "")
            + f"; start it again with: python train.py --data {shlex.quote(str(request.data_dir))} --checkpoint-dir"
            f" {shlex.quote(str(folders.checkpoints))}" + (" --overwrite (and the settings it had)" if started else "")
        )
    config = request.train_config
    config.validate()
    if request.resume:
        config = resumed_start(config, folders.checkpoints)
    else:
        config = resolved_start(config, request.model_config, log)
    config = config.with_learning_rate()
    request = replace(request, train_config=config)
    data = find_data(request.data_dir, config, log)
    clear_folders(folders)
    precision, precision_reason = resolve_precision(config.precision)
    jit = resolve_jit(config.jit)
    # The model, its optimizer and its variables must be made under the strategy.
    with distribution.scope():
        start = start_model(folders, request, data, precision, jit)
    if start.initial_epoch >= config.epochs and folders.backup is None:
        log(f"already trained {start.initial_epoch} epochs; ask for more with --epochs")
        label = SELECTION_SCORES[config.select_on].label
        return RunResult("nothing to do", start.initial_epoch, start.best_psnr, start.best_epoch, math.nan, label)

    replicas = distribution.num_replicas_in_sync
    log(f"training on {describe_device()}: {len(data.train_pairs)} training pairs, {len(data.val_pairs)} validation")
    after = f", after {data.record['first_pass']}" if data.record.get("first_pass") else ""
    log(f"enlargement: x{data.record['scale']}{after} (from the prepared pairs' manifest)")
    log(f"precision: {precision} ({precision_reason}); XLA: {'on' if jit else 'off'}")
    if replicas > 1:
        log(f"batch: {config.batch_size} per replica x {replicas} replicas = {config.batch_size * replicas}")
    train_data, val_data = make_datasets(data, config, replicas, start.initial_epoch)
    validation = Validation(val_data)
    to_plain = (lambda model: collapse(model, start.model_config)) if config.reparam else (lambda model: model)
    selection = SELECTION_SCORES[config.select_on]
    checkpoints = BestAndLatest(
        folders.checkpoints, start.initial_epoch, start.best_psnr, start.best_epoch, to_plain, selection.key
    )
    if start.new:  # the start: the first thing to beat, and epoch 0, so a run never ends worse than it began
        begin, bicubic = validation.scores(lambda low_res: start.model(low_res, training=False)), validation.baseline
        log(
            f"start: validation PSNR {begin['val_psnr']:.2f} dB (Y {begin['val_psnr_y']:.2f}), SSIM "
            f"{begin['val_ssim']:.4f} (bicubic {bicubic['val_bicubic_psnr']:.2f} dB (Y "
            f"{bicubic['val_bicubic_psnr_y']:.2f}), {bicubic['val_bicubic_ssim']:.4f})"
        )
        checkpoints.remember_start(start.model, begin[selection.key])
    begun = {**begin, **bicubic} if start.new else None
    callbacks = [
        validation,  # first: the callbacks after it read its scores
        keras.callbacks.LearningRateScheduler(config.learning_rate_at),
        checkpoints,
        HistoryLog(folders.results, start.initial_epoch, begun),
        keras.callbacks.TensorBoard(log_dir=str(folders.results / "tensorboard")),
    ]
    if folders.backup is not None:
        # double_checkpoint: Keras writes the backup in place; a kill mid-write leaves the copy of the
        # epoch before, which Keras (and backup_epoch) fall back to.
        callbacks.append(keras.callbacks.BackupAndRestore(str(folders.backup), double_checkpoint=True))
    status = fit(start, distribution, train_data, callbacks, config.epochs, request)
    if status == "interrupted" and not diverged(start.model):
        checkpoints.save_latest()
    if checkpoints.stopped_on_nan or diverged(start.model):
        status = "diverged"
    return RunResult(
        status,
        checkpoints.completed_epochs,
        checkpoints.best_psnr,
        checkpoints.best_epoch,
        validation.baseline[selection.bicubic_key],
        selection.label,
    )


def find_data(data_dir: Path, config: TrainConfig, log: Callable[[str], None]) -> TrainingData:
    """The prepared pairs of the train and val splits, checked against the settings that will use them."""
    train_pairs, val_pairs = list_pairs(data_dir, "train"), list_pairs(data_dir, "val")
    if not train_pairs:
        from srcnn.config import SPLITS
        from srcnn.preparation import find_images

        photos = [path for path in find_images(data_dir) if path.relative_to(data_dir).parts[0] not in SPLITS]
        if photos:  # a folder of photos, not of prepared pairs
            raise DataError(
                f"{data_dir}: photos, not prepared pairs; prepare them first with: python prep_images.py"
                f" --input {shlex.quote(str(data_dir))} --output data, then: python train.py --data data"
            )
        raise DataError(
            f"{data_dir / 'train'}: no prepared image pairs; make them with: "
            f"python prep_images.py --input YOUR_PHOTOS --output {data_dir}  (or try: python train.py --demo)"
        )
    validated_on_train = not val_pairs
    if validated_on_train:
        log(f"warning: {data_dir / 'val'} has no pairs; validating on the training pairs instead")
        val_pairs = train_pairs
    train_sizes = image_sizes(train_pairs)
    patch = config.patch_size
    if patch and min(min(size) for size in train_sizes) < patch:
        raise DataError(f"{data_dir / 'train'}: some pairs are smaller than --patch-size {patch}")
    if not patch and len(train_sizes) > 1:
        raise DataError(
            f"{data_dir / 'train'}: pairs have several sizes {sorted(train_sizes)[:4]}; train on crops with"
            " --patch-size, or prepare them again with one --size"
        )
    entries = manifest_entries(data_dir)
    record = data_record(data_dir, entries, train_pairs, val_pairs, validated_on_train)
    if not validated_on_train:
        check_validation(data_dir, entries, train_pairs, val_pairs, config.val_images)
    return TrainingData(train_pairs, val_pairs, image_sizes(val_pairs), record)


def manifest_entries(data_dir: Path) -> dict[str, dict]:
    """prep_images.py's record of each pair (source, split, recipe) by pair name; {} without one."""
    manifest_path = data_dir / MANIFEST_NAME
    manifest = read_json(manifest_path) if manifest_path.is_file() else {}
    return {entry.get("name"): entry for entry in manifest.get("pairs", []) if isinstance(entry, dict)}


def check_validation(
    data_dir: Path, entries: dict[str, dict], train_pairs: list, val_pairs: list, val_images: tuple[str, ...]
) -> None:
    """Refuse a validation set that shares an image with the training set (its scores would flatter
    the model), or that is not the one the config names (`val_images`, source file names)."""
    trained = {hashlib.sha256(high_res.read_bytes()).hexdigest(): high_res for _, high_res in train_pairs}
    for _, high_res in val_pairs:
        twin = trained.get(hashlib.sha256(high_res.read_bytes()).hexdigest())
        if twin is not None:
            raise DataError(
                f"{high_res}: the same image as {twin} in the training split; a validation image must not be"
                " trained on: remove one of them"
            )
    if val_images:
        sources = {name: str(entry.get("source", "")) for name, entry in entries.items()}
        named = set(val_images)

        def name_of(high_res: Path) -> str:  # a listed name: the file's name, or its path's end
            source = sources.get(high_res.name, high_res.name)
            return next((name for name in named if source.endswith("/" + name) or source == name), Path(source).name)

        found = {name_of(high_res) for _, high_res in val_pairs}
        if found != named:
            missing, extra = sorted(named - found), sorted(found - named)
            raise DataError(
                f"{data_dir / 'val'}: not the validation images the config names (missing {missing[:5]},"
                f" not named {extra[:5]}); prepare them with prep_images.py --val-names"
            )


def data_record(
    data_dir: Path, entries: dict[str, dict], train_pairs: list, val_pairs: list, validated_on_train: bool
) -> dict:
    """What the run trains and validates on, for config.json: the folder, the pair counts, the
    source folders prep_images.py made them from (its manifest entries), and the validation images' names."""

    def split_record(pairs: list) -> dict:
        made = [entries[high_res.name] for _, high_res in pairs if high_res.name in entries]
        folders = sorted({str(Path(entry["source"]).parent) for entry in made if entry.get("source")})
        # Each way of making pairs once, with its count; a degradation by its name (each pair's own
        # parameters and seed stay in prep's manifest), so a mix of hundreds of draws reads in a few lines.
        named = (
            prep | ({"degradation": prep["degradation"]["name"]} if "degradation" in prep else {})
            for prep in (entry.get("prep") for entry in made)
            if prep
        )
        counts = Counter(json.dumps(prep, sort_keys=True) for prep in named)
        recipes = [json.loads(text) | {"pairs": count} for text, count in sorted(counts.items())]
        return {"pairs": len(pairs), "from": folders, "prep": recipes}

    val = split_record(val_pairs) | {"names": [high_res.name for _, high_res in val_pairs]}
    if validated_on_train:
        val["note"] = "no val split: validated on the training pairs"
    record = {"dir": str(data_dir.resolve()), "train": split_record(train_pairs), "val": val}
    return record | enlargement(
        data_dir, [entries[high.name] for _, high in train_pairs + val_pairs if high.name in entries]
    )


def enlargement(data_dir: Path, made: list[dict]) -> dict:
    """{"scale": N} and, for pairs made after another model, {"first_pass": its weights}: what the
    model learns, read from prep's manifest (2 without one). Pairs of several kinds are refused."""
    kinds = {
        (int(entry.get("prep", {}).get("scale", 2)), entry.get("prep", {}).get("first_pass", "")) for entry in made
    }
    if len(kinds) > 1:
        listed = ", ".join(f"x{scale}" + (f" after {first}" if first else "") for scale, first in sorted(kinds))
        raise DataError(f"{data_dir}: pairs made for several enlargements ({listed}); prepare each into its own folder")
    scale, first_pass = kinds.pop() if kinds else (2, "")
    return {"scale": scale} | ({"first_pass": first_pass} if first_pass else {})


def clear_folders(folders: RunFolders) -> None:
    """Check the run's folders can be written, and remove files half-written by a killed run."""
    for folder in (folders.checkpoints, folders.results):
        check_writable(folder)
        for leftover in folder.glob(".tmp-*"):
            leftover.unlink(missing_ok=True)


def resolved_start(config: TrainConfig, model_config: ModelConfig | None, log: Callable[[str], None]) -> TrainConfig:
    """--init pretrained made concrete for a new run: the shipped clean model where the network
    has its shape, else a near-identity start (said in the log and kept in the run record)."""
    if config.init != "pretrained" or config.start_from:
        return config
    shipped = SHIPPED_WEIGHTS["clean"]
    try:
        shipped_config = load_model_config(shipped.parent)
    except CheckpointError as error:
        log(f"init: near-identity, since the shipped model cannot be read ({one_line(error)})")
        return replace(config, init="near-identity")
    if model_config is None or model_config == shipped_config:
        log(f"init: pretrained, {shipped} (--init near-identity trains from scratch)")
        return config
    log(f"init: near-identity, since the shipped model is another network ({shipped_config}); --init sets it")
    return replace(config, init="near-identity")


def resumed_start(config: TrainConfig, checkpoint_dir: Path) -> TrainConfig:
    """A resumed run keeps how it started (init, start_from) from its record; a learning rate left
    at 0 (pick by the start) is the one it ran with."""
    recorded = read_run_record(checkpoint_dir).get("train", {})
    config = replace(config, init=recorded.get("init", config.init), start_from=recorded.get("start_from", ""))
    if not config.learning_rate and recorded.get("learning_rate"):
        config = replace(config, learning_rate=float(recorded["learning_rate"]))
    return config


def start_model(folders: RunFolders, request: RunRequest, data: TrainingData, precision: str, jit: bool) -> Start:
    """The compiled model a run starts from: a worker's backup, the saved run (--resume), or a new one."""
    restart_epoch = backup_epoch(folders.backup)
    if restart_epoch is not None:
        start = restart_from_backup(folders, request, precision, jit, restart_epoch)
    elif request.resume:
        start = resume_run(folders.checkpoints, request, precision, jit)
    else:
        start = new_run(folders.checkpoints, request, precision, jit)
    if restart_epoch is None and start.initial_epoch < request.train_config.epochs:
        write_run_record(folders.checkpoints, start.model_config, request.train_config, data.record, folders.results)
    # Each epoch's shuffling and crops depend on the seed and the epoch, not on how the run got there.
    keras.utils.set_random_seed(request.train_config.seed + start.initial_epoch)
    return start


def new_run(checkpoint_dir: Path, request: RunRequest, precision: str, jit: bool) -> Start:
    """A fresh model, refusing to replace another run's checkpoints unless asked to."""
    if has_training_state(checkpoint_dir) and not request.overwrite:
        epoch, _, _ = read_state(checkpoint_dir)
        raise CheckpointError(
            f"{checkpoint_dir} already holds a training run (epoch {epoch}): continue it with --resume,"
            " or start over with --overwrite"
        )
    if (checkpoint_dir / BEST_WEIGHTS_NAME).is_file() and not request.overwrite:
        raise CheckpointError(
            f"{checkpoint_dir / BEST_WEIGHTS_NAME} exists: choose another --checkpoint-dir,"
            " or replace it with --overwrite"
        )
    starts = {"near-identity": initialize_near_identity, "identity": initialize_identity}
    # glorot: Keras' own start, which in the reparameterized form goes into the full k x k branch
    # alone (five Glorot branches added up would start far too loud).
    start = starts.get(request.train_config.init, lambda model, config: None)
    model_config = request.model_config or ModelConfig()
    source = request.train_config.start_from or ("pretrained" if request.train_config.init == "pretrained" else "")
    if source:  # fine-tuning: another model's weights, a fresh optimizer
        start, model_config = weights_of(source, request.model_config)
    keras.utils.set_random_seed(request.train_config.seed)
    model = compiled_training_model(model_config, request.train_config, precision, jit)
    if start is not None:
        if request.train_config.reparam:
            initialize_training_model(model, model_config, start)
        else:
            start(model, model_config)
    for name in (BEST_WEIGHTS_NAME, LATEST_NAME, STATE_NAME):  # the replaced run's (--overwrite)
        (checkpoint_dir / name).unlink(missing_ok=True)
    return Start(model, model_config, new=True)


def resume_run(checkpoint_dir: Path, request: RunRequest, precision: str, jit: bool) -> Start:
    """The saved run, rebuilt rather than used as loaded: it may go on in another precision (a CPU
    run resumed on a GPU) or with another XLA setting; weights and Adam's state carry over."""
    saved_config = load_model_config(checkpoint_dir)
    if request.model_config is not None and request.model_config != saved_config:
        raise CheckpointError(
            f"{checkpoint_dir} holds a model with {saved_config}, not the requested {request.model_config}"
        )
    saved_model = load_training_state(checkpoint_dir)
    model = compiled_training_model(saved_config, request.train_config, precision, jit)
    if len(saved_model.weights) != len(model.weights):
        raise CheckpointError(
            f"{checkpoint_dir / LATEST_NAME} was trained with reparam={not request.train_config.reparam};"
            " resume it with the same setting"
        )
    transfer_training_state(saved_model, model)
    epoch, best_psnr, best_epoch = read_state(checkpoint_dir)
    request.log(f"resuming from epoch {epoch} of {checkpoint_dir} (best validation PSNR {best_psnr:.2f} dB)")
    return Start(model, saved_config, epoch, best_psnr, best_epoch)


def restart_from_backup(folders: RunFolders, request: RunRequest, precision: str, jit: bool, epoch: int) -> Start:
    """A restarted worker: BackupAndRestore brings back the weights, optimizer and epoch in fit."""
    request.log(f"restarting from this worker's backup in {folders.backup} (epoch {epoch})")
    has_record = (folders.checkpoints / CONFIG_NAME).is_file()
    model_config = load_model_config(folders.checkpoints) if has_record else request.model_config or ModelConfig()
    model = compiled_training_model(model_config, request.train_config, precision, jit)
    # Adam's variables are made here, under the strategy, before the backup is loaded into them.
    model.optimizer.build(model.trainable_variables)
    _, best_psnr, best_epoch = read_state(folders.checkpoints)
    return Start(model, model_config, epoch, best_psnr, best_epoch)


def backup_epoch(backup_dir: Path | None) -> int | None:
    """The epoch a worker's BackupAndRestore folder holds, or None when there is no backup.

    When the weights were being written as the job died, Keras restores its copy of the epoch
    before (double_checkpoint), and so the epoch is that copy's."""
    if backup_dir is None:
        return None
    metadata = backup_dir / "training_metadata.json"
    weights = backup_dir / "latest.weights.h5"
    if weights.is_file():
        try:
            h5py.File(weights, "r").close()
        except OSError:
            metadata = backup_dir / "training_metadata.json.bkp"
    try:
        return int(read_json(metadata)["epoch"])
    except (CheckpointError, KeyError, TypeError, ValueError):
        return None


def make_datasets(
    data: TrainingData, config: TrainConfig, replicas: int, initial_epoch: int
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """(training batches of the global batch size, sharded by data; validation batches, not distributed)."""
    train_data = make_dataset(
        data.train_pairs,
        config.batch_size * replicas,
        shuffle=True,
        seed=config.seed + initial_epoch,
        patch_size=config.patch_size,
        repeat=config.repeat,
        augment=config.augment,
        turns=config.turns,
        invert_chance=config.invert_chance,
    )
    # Whole validation images of several sizes (a benchmark set) go one at a time.
    val_batch_size = config.batch_size if len(data.val_sizes) == 1 else 1
    # Validation runs the same on every worker (see callbacks.Validation), so it is not distributed.
    val_data = make_dataset(data.val_pairs, val_batch_size, shuffle=False)
    return shard_by_data(train_data), val_data


def fit(
    start: Start,
    distribution: tf.distribute.Strategy,
    train_data: tf.data.Dataset,
    callbacks: list,
    epochs: int,
    request: RunRequest,
) -> str:
    """Train from start.initial_epoch to `epochs`; returns "finished", "interrupted", "out of memory"
    or, with several workers, "lost a worker" (one stopped answering: TensorFlow aborts the job)."""
    try:
        if in_multi_worker_mode(distribution):
            log = request.log if request.verbose else lambda line: None
            fit_across_workers(start.model, distribution, train_data, epochs, start.initial_epoch, callbacks, log)
        else:
            start.model.fit(
                train_data,
                epochs=epochs,
                initial_epoch=start.initial_epoch,
                callbacks=callbacks,
                shuffle=False,  # The tf.data pipeline already shuffles, with a seed.
                verbose=request.verbose,
            )
    except KeyboardInterrupt:
        return "interrupted"
    except (tf.errors.ResourceExhaustedError, MemoryError):
        return "out of memory"
    except (tf.errors.AbortedError, tf.errors.UnavailableError):
        if not in_multi_worker_mode(distribution):
            raise
        return "lost a worker"  # the backup of the last epoch stays: the same command restarts from it
    return "finished"


def diverged(model: keras.Model) -> bool:
    return not all(np.all(np.isfinite(weight)) for weight in model.get_weights())


def describe_device() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"GPU ({', '.join(gpu.name for gpu in gpus)})"
    return "CPU (no GPU visible)"


def folders_for_resume(checkpoint_dir: Path, data_dir: Path | None, results_dir: Path | None) -> tuple[Path, Path]:
    """The data and results folders of the run in checkpoint_dir, so `--resume` alone continues it
    exactly. A folder given on the command line wins when it is the recorded one, or when the
    recorded one is gone (the data moved); any other difference is refused, since it would mix two
    runs' logs or train on other data."""
    record = read_run_record(checkpoint_dir)
    chosen = []
    for given, recorded, flag, default in (
        (data_dir, record.get("data", {}).get("dir"), "--data", Path("data")),
        (results_dir, record.get("results_dir"), "--results-dir", Path("results")),
    ):
        if recorded is None:  # a run recorded before folders were: the flag, else the default
            chosen.append(given or default)
        elif given is None and flag == "--data" and not Path(recorded).exists():
            raise CheckpointError(
                f"{checkpoint_dir} is a run on {recorded}, which is gone; if the data moved, say where: --data FOLDER"
            )
        elif given is None or given.resolve() == Path(recorded).resolve() or not Path(recorded).exists():
            chosen.append(given or Path(recorded))
        else:
            raise CheckpointError(
                f"{checkpoint_dir} is a run with {flag} {recorded}, not {given}; leave out {flag} to continue it,"
                " or start a new run in another --checkpoint-dir"
            )
    return chosen[0], chosen[1]
