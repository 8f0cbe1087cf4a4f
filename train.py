"""Train the blog's network on prepared pairs: pixel MSE, Adam, checkpoints, logs and curves.

Usage:
    python train.py [--data data] [--epochs 100] [--batch-size 16]
    python train.py --config configs/clean.json --data data/clean   # settings from a JSON file
    python train.py --resume [--epochs 200]                     # continue the run in --checkpoint-dir
    python train.py --demo                                      # built-in photos: prep, train, test

Settings: the defaults < the resumed run's < --config < --set < flags. Research settings (schedule,
loss, crops, pure white/black margin, negatives, reparam, XLA, seed, the model's shape) are --config
keys, or --set KEY=VALUE: docs/training.md, "Settings".
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from dataclasses import Field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from srcnn.config import STRATEGIES, ModelConfig, TrainConfig, read_settings_file

if TYPE_CHECKING:
    from srcnn.training import RunResult

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Keep TensorFlow's start-up chatter out of the way.
# TensorFlow is imported in main(), not here, so that `--help` answers at once.

FLAG_TYPES = {"int": int, "float": float, "str": str}


def flag_fields(config_class: type) -> list[Field]:
    """The fields of a config that are offered as flags: those with a help text."""
    return [item for item in fields(config_class) if "help" in item.metadata]


TRAIN_FLAGS = [item.name for item in flag_fields(TrainConfig)]


def add_config_flags(parser: argparse.ArgumentParser, config_class: type, title: str) -> None:
    """One flag per config field that has a help text (`batch_size` -> `--batch-size`). Defaults stay
    None, so a flag that is not given never hides a --config value or a resumed run's setting."""
    group = parser.add_argument_group(title)
    defaults = config_class()
    for item in flag_fields(config_class):
        flag, default = "--" + item.name.replace("_", "-"), getattr(defaults, item.name)
        help_text = item.metadata["help"] + (f" (default: {default})" if default != "" else "")
        if item.type == "bool":  # --name / --no-name: a flag can also undo a --config setting
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            choices = item.metadata["choices"]
            group.add_argument(flag, type=FLAG_TYPES[item.type], choices=choices, default=None, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, metavar="DIR", help="prepared pairs from prep_images.py (default: data)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="JSON file of settings (configs/README.md)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one --config key: pure_margin=0, model.filters=16",
    )
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help="tf.distribute: auto (default) = mirrored with several GPUs, else default (one device);"
        " multiworker = several machines, from TF_CONFIG. --batch-size is per replica",
    )
    parser.add_argument("--checkpoint-dir", type=Path, metavar="DIR", help="the run's folder (default: checkpoints)")
    parser.add_argument("--results-dir", type=Path, metavar="DIR", help="logs, curves (default: results)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run saved in --checkpoint-dir, on its data and results"
    )
    parser.add_argument("--overwrite", action="store_true", help="start over even if --checkpoint-dir holds a run")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="scikit-image's photos: prep to data/demo, train to checkpoints/demo, test to results/demo",
    )
    add_config_flags(parser, TrainConfig, "training settings (also keys of --config)")
    return parser


def train_config_from(args: argparse.Namespace, checkpoint_dir: Path) -> TrainConfig:
    """Defaults < the resumed run's settings < --config file < flags given on the command line."""
    from srcnn.checkpoints import read_run_record
    from srcnn.demo import EPOCHS as DEMO_EPOCHS

    values, recorded = {}, {}
    if args.demo:
        values["epochs"] = DEMO_EPOCHS
    if args.resume:
        recorded = read_run_record(checkpoint_dir).get("train", {})
        # A run recorded before pure_margin or invert_chance existed trained without them: keep it so.
        values.update({"pure_margin": 0.0, "invert_chance": 0.0, **recorded} if recorded else {})
    if args.config is not None:
        values.update({key: value for key, value in read_settings_file(args.config).items() if key != "model"})
    values.update({key: value for key, value in settings_given(args.set).items() if not key.startswith("model.")})
    values.update({key: getattr(args, key) for key in TRAIN_FLAGS if getattr(args, key) is not None})
    config = TrainConfig.from_dict(values)
    config.validate()
    picked_on = recorded.get("select_on", "rgb") if recorded else config.select_on
    if config.select_on != picked_on:  # state.json's best score is of the other kind
        raise ValueError(f"the run picks its best epoch on {picked_on} PSNR; select_on cannot change on --resume")
    return config


def model_config_from(args: argparse.Namespace) -> ModelConfig | None:
    """The model's shape a --config file asks for under "model" ({"model": {"filters": 16}}), or
    None for the default (or, resumed, the checkpoint's)."""
    given = read_settings_file(args.config).get("model") if args.config is not None else None
    if given is not None and not isinstance(given, dict):
        raise ValueError(f'{args.config}: "model" takes the network\'s settings, e.g. {{"filters": 16}}')
    given = (given or {}) | {
        key.removeprefix("model."): value for key, value in settings_given(args.set).items() if key.startswith("model.")
    }
    if not given:
        return None
    config = ModelConfig.from_dict(given)
    config.validate()
    return config


def settings_given(items: list[str]) -> dict:
    """--set KEY=VALUE, each VALUE read as JSON where it can be (0, 0.9, true) and as text otherwise
    (y, cosine); the keys are checked with the rest of the settings."""
    values = {}
    for item in items:
        key, equals, text = item.partition("=")
        if not equals or not key:
            raise ValueError(f"--set takes KEY=VALUE, e.g. --set pure_margin=0; got {item!r}")
        try:
            values[key.strip()] = json.loads(text)
        except ValueError:
            values[key.strip()] = text
    return values


def raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from srcnn.precision import start_tensorflow

    start_tensorflow()
    from srcnn import demo
    from srcnn.checkpoints import CheckpointError
    from srcnn.dataset import DataError
    from srcnn.training import folders_for_resume, train

    checkpoint_dir = args.checkpoint_dir or (demo.CHECKPOINT_DIR if args.demo else Path("checkpoints"))
    try:
        if args.resume and args.start_from:
            raise ValueError("--start-from starts a new run; --resume continues one from its own state: pick one")
        if args.resume:  # the run's own folders, unless given
            data_dir, results_dir = folders_for_resume(checkpoint_dir, args.data, args.results_dir)
        else:
            data_dir = args.data or (demo.DATA_DIR if args.demo else Path("data"))
            results_dir = args.results_dir or (demo.RESULTS_DIR if args.demo else Path("results"))
        train_config = train_config_from(args, checkpoint_dir)
        model_config = model_config_from(args)
        if args.demo:
            demo.prepare_demo(data_dir)
        # A batch scheduler's SIGTERM saves like Ctrl-C does (until training ends).
        previous_handler = signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
        try:
            result = train(
                data_dir,
                checkpoint_dir,
                results_dir,
                train_config,
                model_config,
                resume=args.resume,
                overwrite=args.overwrite or (args.demo and not args.resume),
                verbose=2 if args.quiet else 1,
                strategy=args.strategy,
            )
        finally:
            signal.signal(signal.SIGTERM, previous_handler)
    except (DataError, CheckpointError, ValueError) as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("train.py: interrupted before training started; nothing was saved", file=sys.stderr)
        return 130
    resume = f"python train.py --resume --checkpoint-dir {shlex.quote(str(checkpoint_dir.resolve()))}"
    if args.strategy != "auto":
        resume += f" --strategy {args.strategy}"
    status = report(result, resume, checkpoint_dir, results_dir, train_config.batch_size)
    if args.demo and result.status in ("finished", "nothing to do"):
        return score_demo(data_dir, checkpoint_dir, results_dir)
    return status


def report(result: RunResult, resume: str, checkpoint_dir: Path, results_dir: Path, batch_size: int) -> int:
    """Print how the run ended, with the command that continues it (`resume`); returns the exit status."""
    when = f"epoch {result.best_epoch}" if result.best_epoch else "the start (no epoch beat it; kept as best)"
    best = f"best validation {result.score_label} {result.best_val_psnr:.2f} dB at {when}"
    kept = (
        f"the last good checkpoint (epoch {result.epochs_completed}) is kept in {checkpoint_dir}"
        if result.epochs_completed
        else "no epoch had finished, so nothing was saved"
    )
    if result.status == "interrupted":
        print(f"interrupted: saved after epoch {result.epochs_completed}; continue with: {resume}")
        return 130
    if result.status == "diverged":
        print(
            f"train.py: error: the loss became NaN or infinite after epoch {result.epochs_completed}; {kept}"
            f" ({best}). Try a smaller --learning-rate.",
            file=sys.stderr,
        )
        return 1
    if result.status == "out of memory":
        smaller = max(1, batch_size // 4)
        again = (
            f"continue with a quarter of the batch (halve it again until it fits): {resume} --batch-size {smaller}"
            if result.epochs_completed
            else f"run it again with --batch-size {smaller}, a quarter (halve it again until it fits)"
        )
        message = f"out of memory with --batch-size {batch_size} (per replica); {kept}; {again}"
        print(f"train.py: error: {message}", file=sys.stderr)
        return 2
    if result.status == "lost a worker":
        print(
            f"train.py: error: the job lost contact with a worker (TensorFlow aborted the step); {kept};"
            " run the same command again on every worker: each restarts from the backup of the last epoch",
            file=sys.stderr,
        )
        return 1
    if result.status == "finished":
        print(f"done: {result.epochs_completed} epochs, {best} (bicubic {result.bicubic_val_psnr:.2f} dB)")
        print(f"checkpoints: {checkpoint_dir}   history and curves: {results_dir}")
    return 0


def score_demo(data_dir: Path, checkpoint_dir: Path, results_dir: Path) -> int:
    from srcnn.checkpoints import BEST_WEIGHTS_NAME, load_for_inference
    from srcnn.evaluation import format_table, test_split

    model, _ = load_for_inference(checkpoint_dir / BEST_WEIGHTS_NAME)
    scores = test_split(model, data_dir, results_dir)
    # Not the validation images above (those picked the epoch): the held-out test split, whole.
    print(f"demo: the {len(scores)} test image(s) of {data_dir / 'test'}, used neither to train nor to pick the epoch")
    print(format_table(scores))
    print(f"demo: comparisons (bicubic | model | original) in {results_dir / 'compare'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
