"""Would a third pass of the blog's network lift the x3 model? A lab try (docs/scales.md), not shipped.

Usage (from the project's root):
    python docs/third_pass.py ../shared/data/T91 ../shared/data/BSD200 --val-names configs/bsd200-val.txt \
        --start checkpoints/pretrained-x3/best.weights.h5 --out /tmp/x3-third-pass --epochs 16 --freeze 2

The x3 model's two passes (docs/end_to_end.py), then a third network at the full size, 48,003
parameters more, which starts as the identity (srcnn.network.initialize_identity: the three passes
begin where the two end). For --freeze epochs only the third network trains; then all three, as
docs/end_to_end.py trains two: its photos, crops, loss and a cosine schedule over all the epochs
(where all three join, a new Adam goes on at the schedule's rate then, its moments from zero).
Each epoch is scored on the --val-names photos through the three passes (as upscale.py would run
them: 8-bit pixels between passes); OUT/history.csv holds the scores, OUT/best/ the best epoch's
three networks' weights (passes 1, 2 and 3), OUT/latest/ the last epoch's. upscale.py does not run
a third pass at the same scale: this only measures whether one would pay.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import end_to_end  # noqa: E402

# Assumed: the scale of the identity start's random weights (0 would leave those filters with no
# gradient to start from; 0.05 costs 0.01 dB on BSD20 at the start).
NOISE_SCALE = 0.05


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    end_to_end.add_run_arguments(parser, 16, "a new folder")
    parser.add_argument("--freeze", type=int, default=2, help="epochs in which only the third network trains")
    args = parser.parse_args(argv)
    if args.epochs < 1 or not 0 <= args.freeze <= args.epochs:
        parser.error(f"--epochs {args.epochs} --freeze {args.freeze}: 1 epoch or more, and no more frozen than that")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out}: not empty; give a new folder")
    if not args.val_names.is_file():
        parser.error(f"--val-names {args.val_names}: no such file")
    if not args.start.is_file():
        parser.error(f"--start {args.start}: no such checkpoint")
    from srcnn.precision import resolve_precision, start_tensorflow

    start_tensorflow()
    import keras
    import tensorflow as tf

    from srcnn.checkpoints import CheckpointError
    from srcnn.files import read_names
    from srcnn.network import PixelLoss, build_model, initialize_identity, to_model_range
    from srcnn.passes import Pass, load_passes

    keras.utils.set_random_seed(0)  # the identity start's small random weights, the crops' order
    try:
        passes = load_passes(args.start)
    except CheckpointError as error:
        parser.error(str(error))
    scale = end_to_end.two_pass_scale([step.scale for step in passes])
    if scale is None:
        parser.error(f"--start {args.start}: not a x3 or x4 model of two passes after a x2 one")
    precision, _ = resolve_precision("auto")
    networks = [end_to_end.training_network(step.config, precision, step.weights) for step in passes]
    identity = build_model(passes[-1].config)
    initialize_identity(identity, passes[-1].config, noise_scale=NOISE_SCALE)
    networks.append(build_model(passes[-1].config, precision))
    networks[-1].set_weights(identity.get_weights())
    passes.append(Pass(args.start, identity, passes[-1].config, scale))  # bicubic to the same size: none

    training, validation = end_to_end.read_photos(args.folders, scale, set(read_names(args.val_names)))
    if not validation or not training:
        parser.error(f"--val-names {args.val_names}: needs validation photos in the folders and others to train on")
    training, validation = end_to_end.model_pairs(training, scale), end_to_end.scoring_pairs(validation, scale)
    two_passes = end_to_end.build_trainable(networks[0], networks[1], scale)

    class ThreePasses(keras.Model):
        def __init__(self):
            super().__init__()
            self.two, self.third = two_passes, networks[2]

        def call(self, inputs, training=False):
            return self.third(tf.cast(self.two(inputs, training=training), tf.float32), training=training)

    model = ThreePasses()
    steps_per_epoch = -(-len(training) * end_to_end.REPEAT // end_to_end.BATCH_SIZE)

    def compile_from(step: int) -> None:  # the schedule goes on where it was when more weights join
        schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps_per_epoch * args.epochs, alpha=0.01)
        model.compile(keras.optimizers.Adam(schedule), loss=PixelLoss(border=end_to_end.BORDER, pure_margin=5.0))
        model.optimizer.build(model.trainable_variables)
        model.optimizer.iterations.assign(step)

    args.out.mkdir(parents=True, exist_ok=True)
    best = end_to_end.validation_psnr(networks, passes, validation, scale)
    rows = [{"epoch": 0, "loss": "", "val_psnr_y": f"{best:.4f}", "seconds": 0}]
    print(f"epoch 0: validation Y-PSNR {best:.4f} dB (two passes and the identity start)", flush=True)
    for epoch in range(1, args.epochs + 1):
        if epoch in (1, args.freeze + 1):
            two_passes.trainable = epoch > args.freeze
            compile_from(steps_per_epoch * (epoch - 1))
        began = time.time()
        inputs, targets = end_to_end.epoch_crops(training, scale, np.random.default_rng(epoch))
        fitted = model.fit(to_model_range(inputs), to_model_range(targets), batch_size=end_to_end.BATCH_SIZE, verbose=0)
        score = end_to_end.validation_psnr(networks, passes, validation, scale)
        rows.append({"epoch": epoch, "loss": f"{fitted.history['loss'][-1]:.6f}", "val_psnr_y": f"{score:.4f}",
                     "seconds": f"{time.time() - began:.0f}"})  # fmt: skip
        for folder in ("latest",) + (("best",) if score > best else ()):
            (args.out / folder).mkdir(exist_ok=True)
            for number, network in enumerate(networks, 1):
                network.save_weights(args.out / folder / f"{number}.weights.h5")
        best = max(best, score)
        end_to_end.write_history(args.out / "history.csv", rows)
        print(f"epoch {epoch}: loss {rows[-1]['loss']}, validation Y-PSNR {score:.4f} dB (best {best:.4f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
