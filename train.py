"""Train the blog's network on prepared pairs: pixel MSE, Adam, checkpoints, logs and curves.

Usage:
    python train.py [--data data] [--epochs 100] [--batch-size 16] [--learning-rate 1e-3]
    python train.py --config configs/t91.json --data data/t91   # settings from a JSON file
    python train.py --resume [--epochs 200]                     # continue the run in --checkpoint-dir
    python train.py --demo                                      # built-in photos: prep, train, test

Settings come from the defaults, then the run being resumed, then --config, then flags given.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Keep TensorFlow's start-up chatter out of the way.

DEMO_EPOCHS = 30  # Assumed: about two minutes on a 2-core CPU; enough to show the whole pipeline.
TRAIN_FLAGS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "seed",
    "init",
    "schedule",
    "min_learning_rate",
    "patch_size",
    "repeat",
    "augment",
    "precision",
    "jit",
)


def build_parser() -> argparse.ArgumentParser:
    from srcnn.distribution import STRATEGIES
    from srcnn.precision import JIT_CHOICES, PRECISIONS
    from srcnn.training import INITIALIZATIONS, SCHEDULES, TrainConfig

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="prepared pairs from prep_images.py (default: data)")
    parser.add_argument("--config", type=Path, default=None, help="JSON file of training settings (keys as below)")
    parser.add_argument("--epochs", type=int, help=f"total epochs (default: {defaults.epochs})")
    parser.add_argument("--batch-size", type=int, help=f"default: {defaults.batch_size}")
    parser.add_argument("--learning-rate", type=float, help=f"Adam step size (default: {defaults.learning_rate})")
    parser.add_argument("--schedule", choices=SCHEDULES, help=f"learning rate per epoch (default: {defaults.schedule})")
    parser.add_argument("--min-learning-rate", type=float, help=f"cosine's end (default: {defaults.min_learning_rate})")
    parser.add_argument("--seed", type=int, help=f"default: {defaults.seed}")
    parser.add_argument("--init", choices=INITIALIZATIONS, help=f"weight start (default: {defaults.init})")
    parser.add_argument("--patch-size", type=int, help="train on random N x N crops of the pairs (default: 0, whole)")
    parser.add_argument("--repeat", type=int, help="crops per pair per epoch (default: 1)")
    parser.add_argument("--augment", action="store_true", default=None, help="random flips and quarter turns")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="number format: auto (default) = mixed_bfloat16 on CPUs with bfloat16 instructions,"
        " mixed_float16 on CUDA GPUs, else float32",
    )
    parser.add_argument("--jit", choices=JIT_CHOICES, help="XLA: auto (default) = on with a GPU, off on a CPU")
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help="tf.distribute: auto (default) = mirrored with several GPUs, else default (one device);"
        " multiworker = several machines, from TF_CONFIG. --batch-size is per replica",
    )
    parser.add_argument("--checkpoint-dir", type=Path, default=None, help="default: checkpoints")
    parser.add_argument("--results-dir", type=Path, default=None, help="default: results")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint-dir")
    parser.add_argument("--overwrite", action="store_true", help="start over even if --checkpoint-dir holds a run")
    parser.add_argument("--kernel-size", type=int, default=None, help="model kernel size (default: 3, assumed)")
    parser.add_argument("--filters", type=int, default=None, help="filters per layer (default: 32, blog)")
    parser.add_argument("--layers", type=int, default=None, help="layers (default: 7, blog)")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="prepare scikit-image's sample photos into data/demo, train briefly into checkpoints/demo,"
        " and write comparisons to results/demo",
    )
    return parser


def train_config_from(args: argparse.Namespace, checkpoint_dir: Path):
    """Defaults < the resumed run's settings < --config file < flags given on the command line."""
    from srcnn.training import TrainConfig, load_train_config, one_line

    values = {}
    if args.demo:
        values["epochs"] = DEMO_EPOCHS
    if args.resume:
        values.update(load_train_config(checkpoint_dir))
    if args.config is not None:
        try:
            values.update(json.loads(args.config.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            raise ValueError(f"{args.config}: cannot read the settings ({one_line(error)})") from None
    values.update({key: getattr(args, key) for key in TRAIN_FLAGS if getattr(args, key) is not None})
    config = TrainConfig.from_dict(values)
    config.validate()
    return config


def model_config_from(args: argparse.Namespace):
    """The model config the flags ask for, or None to use the default (or the checkpoint's)."""
    from srcnn.network import ModelConfig

    given = {key: getattr(args, key) for key in ("kernel_size", "filters", "layers") if getattr(args, key) is not None}
    if not given:
        return None
    config = ModelConfig(**given)
    config.validate()
    return config


def raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    demo = args.demo
    data_dir = args.data or Path("data/demo" if demo else "data")
    checkpoint_dir = args.checkpoint_dir or Path("checkpoints/demo" if demo else "checkpoints")
    results_dir = args.results_dir or Path("results/demo" if demo else "results")

    from srcnn.dataset import DataError
    from srcnn.training import CheckpointError, train

    try:
        train_config = train_config_from(args, checkpoint_dir)
        model_config = model_config_from(args)
        if demo:
            prepare_demo(data_dir)
        # A batch scheduler's SIGTERM saves like Ctrl-C does.
        signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
        result = train(
            data_dir,
            checkpoint_dir,
            results_dir,
            train_config,
            model_config,
            resume=args.resume,
            overwrite=args.overwrite or (demo and not args.resume),
            verbose=2 if args.quiet else 1,
            strategy=args.strategy,
        )
    except (DataError, CheckpointError, ValueError) as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("train.py: interrupted before training started; nothing was saved", file=sys.stderr)
        return 130

    best = f"best validation PSNR {result.best_val_psnr:.2f} dB at epoch {result.best_epoch}"
    if result.status == "interrupted":
        print(
            f"interrupted: saved after epoch {result.epochs_completed}; continue with: python train.py --resume"
            f" --checkpoint-dir {checkpoint_dir}"
        )
        return 130
    if result.status == "diverged":
        print(
            f"train.py: error: the loss became NaN or infinite after epoch {result.epochs_completed}; the last"
            f" good checkpoint is kept in {checkpoint_dir} ({best}). Try a smaller --learning-rate.",
            file=sys.stderr,
        )
        return 1
    if result.status == "finished":
        print(f"done: {result.epochs_completed} epochs, {best} (bicubic {result.bicubic_val_psnr:.2f} dB)")
        print(f"checkpoints: {checkpoint_dir}   history and curves: {results_dir}")
    if demo:
        return run_demo_test(data_dir, checkpoint_dir, results_dir)
    return 0


def prepare_demo(data_dir: Path) -> None:
    from srcnn.demo import write_demo_photos
    from srcnn.preparation import PrepConfig, prepare_folder

    raw_dir = data_dir / "raw"
    count = write_demo_photos(raw_dir)
    print(f"demo: {count} photos from scikit-image in {raw_dir}")
    summary = prepare_folder(raw_dir, data_dir, PrepConfig(), workers=os.cpu_count() or 1)
    print(f"demo: {summary.written} pairs written, {summary.up_to_date} up to date -> {data_dir}")


def run_demo_test(data_dir: Path, checkpoint_dir: Path, results_dir: Path) -> int:
    from srcnn.evaluation import format_table, test_split
    from srcnn.training import BEST_WEIGHTS_NAME, load_for_inference

    model, _ = load_for_inference(checkpoint_dir / BEST_WEIGHTS_NAME)
    print(format_table(test_split(model, data_dir, results_dir)))
    print(f"demo: comparisons (bicubic | model | original) in {results_dir / 'compare'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
