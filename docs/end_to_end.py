"""Fine-tune the two passes of a x3 or x4 model together, end to end, as LapSRN trains its levels.

Usage (from the project's root):
    python docs/end_to_end.py ../shared/data/T91 ../shared/data/BSD200 --val-names configs/bsd200-val.txt \
        --start checkpoints/pretrained-x3-routed/best.weights.h5 --out checkpoints/x3-end-to-end [--resume]

A second pass trained on what a fixed x2 model gives (prep_images.py --first-pass; pretrained-x3-routed,
pretrained-x4-routed): the first pass never learns what would help the second. Here both train at once: the small image
(PIL bicubic by the scale, the protocol's degradations.py recipe) is enlarged 2x by PIL bicubic, as
upscale.py does; the first network; bicubic to the full size inside the graph (TensorFlow's
antialiased bicubic, which equals PIL's to float precision for an enlargement, clipped to the
network's range as 8-bit pixels are); the second network; the pixel loss of train.py (MSE, or L1
with --loss l1, a --luma-weight share of it taken on each pixel's luma instead of on the three
colours alike, and the pure white/black margin) against the photo, over all but a --border of
each crop (6 pixels unless told); with --distill W, against the photo moved W of the way to what
the --start model gives with --ensemble (its eight views' mean, made once for each training photo;
the photo's pure white and black kept).

Photos: every image of the folders, cropped to a multiple of the scale (and again at each of
--downscales of its size), and each fourth again on a white and a black square (pure white and
black to keep exact, as the shipped models' squares);
--val-names leaves those photos out of training and picks the epoch on them: their mean Y-PSNR
(shaved by the scale) through the same passes upscale.py runs (srcnn/passes.enlarge: 8-bit
pixels between passes). Each epoch: --repeat random aligned --crop crops of each photo, flips and turns, a
quarter of them inverted (255 - x, as train.py's invert_chance), Adam with a cosine schedule. With
--reparam each layer trains as srcnn/reparam.py's sum of branches, collapsed into the blog's layer
before each score and save.

OUT/best.weights.h5 (the second pass) names OUT/first-pass/best.weights.h5 in its config.json, so
upscale.py --checkpoint, test.py and --export run both. Every epoch writes OUT/latest/ and a row
of OUT/history.csv; --resume goes on from OUT/latest's epoch, given the settings of OUT/run.json again (the
schedule where it was; Adam's moments start again, and with --reparam the extra branches, since
OUT/latest keeps the collapsed layers only). A new run needs a new (or empty) OUT.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srcnn import degradations  # noqa: E402
from srcnn.images import pad_to_square, whole_high_res  # noqa: E402
from srcnn.preparation import readable_photos  # noqa: E402

if TYPE_CHECKING:
    import keras

    from srcnn.config import ModelConfig
    from srcnn.passes import Pass

SCALES = (3, 4)
CROP = 96  # the crop's side in photo pixels (a multiple of the scale): 32 small-image pixels at 3x, 24 at 4x
REPEAT = 10  # crops of each photo an epoch
BATCH_SIZE = 16
# Assumed: photo pixels at each crop's edge the loss leaves out (--border). The two passes reach about
# 21 pixels (7 layers of 3x3 at 2x, bicubic, 7 at the full size), so with 6 the pixels between still
# see the crop's zero padding, as train.py's one-pass crops do (loss_border 0 in the shipped configs).
BORDER = 6
INVERT_CHANCE = 0.25
SQUARE_EVERY = 4
FIRST_SCALE = 2


def read_photos(
    folders: list[Path], scale: int, val_names: set[str], crop: int = CROP, downscales: list[float] | tuple = ()
) -> tuple[list, list]:
    """(training photos, validation photos): RGB images cropped to a multiple of the scale; each
    training photo also made smaller by each of `downscales` (PIL bicubic, antialiased), as VDSR and
    FSRCNN add their training images at 0.9 to 0.6 of their size: the same scenes with finer detail."""
    from PIL import Image

    training, validation = [], []
    photos = 0
    for path, photo in readable_photos(folders):
        if path.name in val_names:
            validation.append(whole_high_res(photo, scale))
            continue
        if min(photo.size) < crop:
            continue
        sizes = [(round(photo.width * factor), round(photo.height * factor)) for factor in downscales]
        versions = [photo] + [photo.resize(size, Image.Resampling.BICUBIC) for size in sizes if min(size) >= crop]
        for version in versions:  # each fourth on squares too, or the smaller copies dilute pure white and black
            training.append(whole_high_res(version, scale))
            photos += 1
            if photos % SQUARE_EVERY == 0:
                for fill in ((255, 255, 255), (0, 0, 0)):
                    training.append(whole_high_res(pad_to_square(version, fill), scale))
    return training, validation


def small_and_first_input(high_res, scale: int) -> tuple:
    """(the small image, what the first network sees: it enlarged 2x by PIL bicubic), as uint8 arrays."""
    from PIL import Image

    small, _ = degradations.small_and_low_res(high_res, scale, degradations.SUITE[degradations.DEFAULT])
    enlarged = small.resize((small.width * FIRST_SCALE, small.height * FIRST_SCALE), Image.Resampling.BICUBIC)
    return small, np.asarray(enlarged)


def epoch_crops(
    photos: list, scale: int, rng: np.random.Generator, crop: int = CROP, repeat: int = REPEAT
) -> tuple[np.ndarray, np.ndarray]:
    """`repeat` aligned crops of each (first-pass input, photo): the same place, flip, turn and negative."""
    side = crop // scale
    inputs, targets = [], []
    for _ in range(repeat):
        for low, high in photos:
            row = rng.integers(0, high.shape[0] // scale - side + 1)
            column = rng.integers(0, high.shape[1] // scale - side + 1)
            a = low[
                FIRST_SCALE * row : FIRST_SCALE * (row + side), FIRST_SCALE * column : FIRST_SCALE * (column + side)
            ]
            b = high[scale * row : scale * (row + side), scale * column : scale * (column + side)]
            if rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
            turns = rng.integers(0, 4)
            a, b = np.rot90(a, turns), np.rot90(b, turns)
            if rng.random() < INVERT_CHANCE:
                a, b = 255 - a, 255 - b
            inputs.append(a)
            targets.append(b)
    order = rng.permutation(len(inputs))
    return np.stack(inputs)[order], np.stack(targets)[order]


def two_pass_scale(scales: list[int]) -> int | None:
    """The scale of a chain of pass scales that is a x3 or x4 model of two passes after a x2 one, else None."""
    scale = scales[-1]
    return scale if scales == [FIRST_SCALE, scale] and scale in SCALES else None


def model_pairs(photos: list, scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(what the first network sees, the photo) as uint8 arrays, for training."""
    return [(small_and_first_input(high, scale)[1], np.asarray(high)) for high in photos]


def scoring_pairs(photos: list, scale: int) -> list[tuple]:
    """(the small image, the photo), for validation_psnr."""
    return [(small_and_first_input(high, scale)[0], high) for high in photos]


def distilled_pairs(photos: list, passes: list, scale: int, weight: float) -> list[tuple]:
    """model_pairs, with each photo moved `weight` of the way to the passes' self-ensemble of its
    small image (images.self_ensemble): the eight views' mean as a teacher for one view."""
    from PIL import Image

    from srcnn.images import self_ensemble
    from srcnn.passes import enlarge

    distilled = []
    for high in photos:
        small, first_input = small_and_first_input(high, scale)
        photo = np.asarray(high)
        teacher = self_ensemble(lambda image: enlarge(passes, Image.fromarray(image)), np.asarray(small))
        target = np.rint((1 - weight) * photo.astype(np.float32) + weight * teacher.astype(np.float32))
        # Pure white and black stay the photo's: the pure margin of the loss keeps them exact.
        target = np.where((photo == 0) | (photo == 255), photo, target)
        distilled.append((first_input, target.astype(np.uint8)))
    return distilled


def add_run_arguments(parser: argparse.ArgumentParser, epochs: int, out_help: str) -> None:
    """The flags every script that trains or scores from a two-pass model shares."""
    parser.add_argument("folders", nargs="+", type=Path, help="training photos (and the validation ones)")
    parser.add_argument("--val-names", type=Path, required=True, help="names of the photos that pick the epoch")
    parser.add_argument("--start", type=Path, required=True, help="the x3 or x4 model's weights (two passes)")
    parser.add_argument("--out", type=Path, required=True, help=out_help)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--learning-rate", type=float, default=2e-4, help="the cosine schedule's start")


def build_trainable(first, second, scale: int):
    import keras
    import tensorflow as tf

    class Passes(keras.Model):
        """first network -> bicubic to `scale`/2 times its size -> second network."""

        def __init__(self):
            super().__init__()
            self.first, self.second = first, second

        def call(self, inputs, training=False):
            enlarged = self.first(inputs, training=training)
            size = tf.shape(enlarged)[1:3] * scale // FIRST_SCALE
            resized = tf.image.resize(tf.cast(enlarged, tf.float32), size, method="bicubic", antialias=True)
            return self.second(tf.clip_by_value(resized, -1.0, 1.0), training=training)

    return Passes()


def validation_psnr(networks: list, passes: list, validation: list, scale: int) -> float:
    """Mean Y-PSNR (shaved by the scale) of the validation photos through srcnn.passes.enlarge: the
    passes (float32, as test.py scores) given the training networks' weights."""
    from srcnn.metrics import benchmark_metrics
    from srcnn.passes import enlarge

    for network, step in zip(networks, passes, strict=True):
        copy_into(network, step)
    scores = [
        benchmark_metrics(np.asarray(high), enlarge(passes, small), scale)["psnr_y"] for small, high in validation
    ]
    return float(np.mean(scores))


def training_network(config: ModelConfig, precision: str, weights: Path, reparam: bool = False) -> keras.Model:
    """A pass's network as it trains, holding `weights`: the blog's network, or with `reparam` its
    re-parameterized form (srcnn/reparam.py, as train.py's --set reparam=true), whose extra branches
    start at zero: the same function, which they then help move."""
    from srcnn.network import build_model
    from srcnn.reparam import build_training_model, initialize_training_model

    if not reparam:
        network = build_model(config, precision)
        network.load_weights(weights)
        return network
    network = build_training_model(config, precision)
    initialize_training_model(network, config, lambda plain, _: plain.load_weights(weights))
    return network


def copy_into(network: keras.Model, step: Pass) -> None:
    """A training network's function into its pass's plain float32 network (collapsed, if re-parameterized)."""
    from srcnn.reparam import RepConv, collapse

    if isinstance(network.get_layer("deconv1"), RepConv):
        collapse(network, step.config, into=step.model)
    else:
        step.model.set_weights(network.get_weights())


def save_passes(models: list, folder: Path, start: Path, scale: int, note: dict) -> None:
    """folder/best.weights.h5 naming folder/first-pass/best.weights.h5, each with its config.json
    (the start's, less its training settings and results folder, which did not make these weights:
    `note` says what did, and the start's own note follows it as "after")."""
    from srcnn.checkpoints import BEST_WEIGHTS_NAME, CONFIG_NAME, read_run_record
    from srcnn.files import write_atomic, write_text_atomic
    from srcnn.passes import first_pass_of

    first_folder = folder / "first-pass"
    first_folder.mkdir(parents=True, exist_ok=True)
    data = ({"scale": FIRST_SCALE}, {"scale": scale, "first_pass": f"first-pass/{BEST_WEIGHTS_NAME}"})
    sources = (first_pass_of(start), start)
    for model, target, source, recorded in zip(models, (first_folder, folder), sources, data, strict=True):
        write_atomic(target / BEST_WEIGHTS_NAME, model.save_weights)
        record = {
            key: value for key, value in read_run_record(source.parent).items() if key not in ("train", "results_dir")
        }
        # A start trained end to end already keeps its own run as "after": the whole line stays on record.
        after = {"after": record["end_to_end"]} if "end_to_end" in record else {}
        record |= {"data": recorded, "end_to_end": note | after}
        write_text_atomic(target / CONFIG_NAME, json.dumps(record, indent=1) + "\n")


def write_history(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser, 30, "a new folder (or the run's, with --resume)")
    parser.add_argument("--crop", type=int, default=CROP, help="crop side in photo pixels, a multiple of the scale")
    parser.add_argument("--border", type=int, default=BORDER, help="pixels at each crop's edge the loss leaves out")
    parser.add_argument("--loss", choices=("mse", "l1"), default="mse", help="train.py's pixel loss (default mse)")
    parser.add_argument("--downscales", default="", help="also each photo at these sizes, e.g. 0.9,0.8,0.7,0.6")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="crops of each training photo an epoch")
    parser.add_argument("--reparam", action="store_true", help="train each layer re-parameterized (srcnn/reparam.py)")
    parser.add_argument(
        "--distill",
        type=float,
        default=0.0,
        help="train towards (1 - W) x the photo + W x what --start gives with --ensemble (0: the photo alone)",
    )
    parser.add_argument(
        "--luma-weight", type=float, default=0.0, help="that share of the loss on luma, as TrainConfig's luma_weight"
    )
    parser.add_argument("--resume", action="store_true", help="go on from OUT/latest (the same settings again)")
    args = parser.parse_args(argv)
    try:
        downscales = [float(factor) for factor in args.downscales.split(",") if factor.strip()]
    except ValueError:
        downscales = [0.0]
    if not all(0 < factor < 1 for factor in downscales) or args.repeat < 1 or args.epochs < 1:
        parser.error(f"--downscales {args.downscales!r}: factors between 0 and 1; --repeat and --epochs 1 or more")
    if not 0 <= args.distill <= 1:
        parser.error(f"--distill {args.distill}: a weight from 0 to 1")
    if not 0 <= args.luma_weight <= 1:
        parser.error(f"--luma-weight {args.luma_weight}: a weight from 0 to 1")
    if not 0 <= 2 * args.border < args.crop:
        parser.error(f"--crop {args.crop} --border {args.border}: no border under 0, nor two as wide as the crop")
    if not args.val_names.is_file():
        parser.error(f"--val-names {args.val_names}: no such file")
    from srcnn.precision import resolve_precision, start_tensorflow

    start_tensorflow()  # quietly, before anything imports TensorFlow
    from srcnn.checkpoints import BEST_WEIGHTS_NAME

    latest, history_path, settings_path = args.out / "latest", args.out / "history.csv", args.out / "run.json"
    settings = {"start": str(args.start), "epochs": args.epochs, "learning_rate": args.learning_rate}
    settings |= {"crop": args.crop, "border": args.border, "downscales": downscales, "repeat": args.repeat}
    settings |= {"loss": args.loss, "reparam": args.reparam, "distill": args.distill, "luma_weight": args.luma_weight}
    if args.resume:
        if not (latest / BEST_WEIGHTS_NAME).is_file() or not settings_path.is_file():
            parser.error(f"{args.out}: no finished epoch to resume from; start it again without --resume")
        # A run recorded before a setting existed ran with its default.
        defaults = ("crop", "border", "repeat", "loss", "reparam", "distill", "luma_weight")
        recorded = {key: parser.get_default(key) for key in defaults} | {"downscales": []}
        recorded |= json.loads(settings_path.read_text())
        if recorded != settings:
            parser.error(f"{args.out}: ran with {json.dumps(recorded)}; --resume takes those settings again")
    elif args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out}: not empty; --resume to go on with that run, or give a new folder")
    import keras

    from srcnn.checkpoints import load_for_inference, read_run_record
    from srcnn.files import read_names, write_text_atomic
    from srcnn.network import PixelLoss, to_model_range
    from srcnn.passes import Pass, pass_chain

    chain = pass_chain(args.start)
    scale = two_pass_scale([pass_scale for _, pass_scale in chain])
    if scale is None:
        parser.error(f"--start {args.start}: not a x3 or x4 model of two passes after a x2 one")
    if args.crop % scale:
        parser.error(f"--crop {args.crop}: not a multiple of the scale, {scale}")
    precision, _ = resolve_precision("auto")
    # A resumed run goes on from OUT/latest (a re-parameterized one from its collapsed weights, the
    # extra branches at zero again, as its Adam moments).
    sources = [latest / "first-pass" / BEST_WEIGHTS_NAME, latest / BEST_WEIGHTS_NAME] if args.resume else None
    networks, passes = [], []
    for index, (weights, pass_scale) in enumerate(chain):
        plain, config = load_for_inference(weights)
        passes.append(Pass(weights, plain, config, pass_scale))
        # The same weights, in the precision that trains fastest.
        networks.append(training_network(config, precision, sources[index] if sources else weights, args.reparam))
    training, validation = read_photos(args.folders, scale, set(read_names(args.val_names)), args.crop, downscales)
    if not validation:
        parser.error(f"--val-names {args.val_names}: none of those photos is in the folders")
    if not training:
        parser.error(f"{' '.join(map(str, args.folders))}: no training photo of {args.crop} pixels or more a side")
    print(f"{len(training)} training photos (squares included), {len(validation)} validation; x{scale}; {precision}")
    validation = scoring_pairs(validation, scale)
    # With --distill, the start's passes teach, before any epoch has put other weights in them.
    training = distilled_pairs(training, passes, scale, args.distill) if args.distill else model_pairs(training, scale)

    steps_per_epoch = -(-len(training) * args.repeat // BATCH_SIZE)
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps_per_epoch * args.epochs, alpha=0.01)
    trainable = build_trainable(*networks, scale)
    loss = PixelLoss(args.loss, border=args.border, pure_margin=5.0, luma_weight=args.luma_weight)
    trainable.compile(keras.optimizers.Adam(schedule), loss=loss)
    if args.resume:
        start_epoch = int(read_run_record(latest)["end_to_end"]["epoch"])
        with history_path.open() as file:
            rows = [row for row in csv.DictReader(file) if int(row["epoch"]) <= start_epoch]
        trainable.optimizer.build(trainable.trainable_variables)
        trainable.optimizer.iterations.assign(steps_per_epoch * start_epoch)  # the schedule where it was
        best = max(float(row["val_psnr_y"]) for row in rows)
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(settings_path, json.dumps(settings) + "\n")
        start_epoch = 0
        best = validation_psnr(networks, passes, validation, scale)
        rows = [{"epoch": 0, "loss": "", "val_psnr_y": f"{best:.4f}", "seconds": 0}]
        save_passes([step.model for step in passes], args.out, args.start, scale, settings | {"epoch": 0})
        write_history(history_path, rows)
        print(f"epoch 0: validation Y-PSNR {best:.4f} dB (the start)")
    for epoch in range(start_epoch + 1, args.epochs + 1):
        began = time.time()
        inputs, targets = epoch_crops(training, scale, np.random.default_rng(epoch), args.crop, args.repeat)
        fitted = trainable.fit(to_model_range(inputs), to_model_range(targets), batch_size=BATCH_SIZE, verbose=0)
        score = validation_psnr(networks, passes, validation, scale)
        rows.append({"epoch": epoch, "loss": f"{fitted.history['loss'][-1]:.6f}", "val_psnr_y": f"{score:.4f}",
                     "seconds": f"{time.time() - began:.0f}"})  # fmt: skip
        # latest, then best, then the history: a kill between them costs at most this epoch again.
        plain = [step.model for step in passes]  # validation_psnr has just put the networks' weights there
        save_passes(plain, latest, args.start, scale, settings | {"epoch": epoch})
        if score > best:
            best = score
            save_passes(plain, args.out, args.start, scale, settings | {"epoch": epoch})
        write_history(history_path, rows)
        print(f"epoch {epoch}: loss {rows[-1]['loss']}, validation Y-PSNR {score:.4f} dB (best {best:.4f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
