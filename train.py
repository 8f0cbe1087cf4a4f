"""Train the blog's network on prepared pairs: pixel MSE, Adam, checkpoints, logs and curves.

Usage:
    python train.py [--data data] [--epochs 100] [--batch-size 16] [--learning-rate 1e-4]
    python train.py --resume            # continue the run in --checkpoint-dir
    python train.py --demo              # no photos needed: prep, train and test on built-in photos
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Keep TensorFlow's start-up chatter out of the way.

DEMO_EPOCHS = 30  # Assumed: about two minutes on a 2-core CPU; enough to show the whole pipeline.


def build_parser() -> argparse.ArgumentParser:
    from srcnn.training import INITIALIZATIONS, TrainConfig

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="prepared pairs from prep_images.py (default: data)")
    parser.add_argument("--epochs", type=int, default=None, help=f"total epochs (default: {defaults.epochs})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="default: %(default)s")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="default: %(default)s")
    parser.add_argument(
        "--init", choices=INITIALIZATIONS, default=defaults.init, help="weight start (default: %(default)s)"
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


def model_config_from(args: argparse.Namespace):
    """The model config the flags ask for, or None to use the default (or the checkpoint's)."""
    from srcnn.network import ModelConfig

    given = {key: getattr(args, key) for key in ("kernel_size", "filters", "layers") if getattr(args, key) is not None}
    return ModelConfig(**given) if given else None


def raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    demo = args.demo
    data_dir = args.data or Path("data/demo" if demo else "data")
    checkpoint_dir = args.checkpoint_dir or Path("checkpoints/demo" if demo else "checkpoints")
    results_dir = args.results_dir or Path("results/demo" if demo else "results")

    from srcnn.dataset import DataError
    from srcnn.training import CheckpointError, TrainConfig, train

    try:
        train_config = TrainConfig(
            epochs=args.epochs or (DEMO_EPOCHS if demo else TrainConfig.epochs),
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            init=args.init,
        )
        train_config.validate()
        model_config = model_config_from(args)
        if model_config is not None:
            model_config.validate()
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
