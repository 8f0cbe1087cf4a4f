"""Tune a model's weights for 8-bit integers (quantization-aware fine-tuning), for upscale.py's
`--runtime onnxruntime-int8` (srcnn/int8.py).

Usage (from the project's root):
    python docs/tune_int8.py --checkpoint checkpoints/pretrained/best.weights.h5 \
        ../shared/data/T91 ../shared/data/BSD200 --val-names configs/bsd200-val.txt --epochs 10 --learning-rate 5e-5

(the command that made the shipped checkpoints/pretrained/int8.weights.h5; its best epoch was the 7th).

The model is fine-tuned through its fake-quantized twin (srcnn.int8.FakeQuantized: every rounding
the 8-bit graph does, done in float, gradients passed straight through), on crops of the photos made
small the way `--degradation` says (default: PIL bicubic, the benchmark protocol); some photos
again pasted on white squares, as product photos are. The activation ranges are re-measured on the
calibration crops before each epoch. After each epoch the real 8-bit
graph (ONNX Runtime) is scored on the held-out photos (--val-names), and the best epoch's float
weights are written beside the checkpoint as int8.weights.h5 (replacing one there) if any epoch
beats the weights quantized as they are: the model's own weights stay as they were, and float
runtimes keep using them. x2 models only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srcnn import degradations  # noqa: E402
from srcnn.images import pad_to_square, whole_high_res  # noqa: E402
from srcnn.preparation import readable_photos  # noqa: E402

CROP = 64
CROPS_PER_PHOTO = 8
BATCH_SIZE = 32


def photos_of(folders: list[Path], held_out: set[str]) -> tuple[list, list]:
    """(training photos, held-out photos): whole, cropped to even sides; a quarter of the training
    ones again on white squares."""
    training, validation = [], []
    for path, photo in readable_photos(folders):
        if min(photo.size) < CROP:
            continue
        if path.name in held_out:
            validation.append(whole_high_res(photo))
            continue
        training.append(whole_high_res(photo))
        if len(training) % 4 == 0:
            training.append(whole_high_res(pad_to_square(photo)))
    return training, validation


def pairs_of(photos: list, degradation: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(low-res, high-res) float32 in [-1, 1] per photo, the low-res side made as `degradation` says."""
    from srcnn.network import to_model_range

    pairs = []
    for index, photo in enumerate(photos):
        recipe = degradations.recipe_for(degradation, degradations.seed_from(f"int8 {index}"))
        _, low_res = degradations.small_and_low_res(photo, 2, recipe)
        pairs.append((to_model_range(np.asarray(low_res)), to_model_range(np.asarray(photo))))
    return pairs


def crops(pairs: list, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(epoch)
    low, high = [], []
    for low_res, high_res in pairs:
        for _ in range(CROPS_PER_PHOTO):
            top = rng.integers(0, high_res.shape[0] - CROP + 1)
            left = rng.integers(0, high_res.shape[1] - CROP + 1)
            low.append(low_res[top : top + CROP, left : left + CROP])
            high.append(high_res[top : top + CROP, left : left + CROP])
    return np.stack(low), np.stack(high)


def held_out_psnr(predict, pairs: list) -> float:
    """Mean Y-PSNR (2-pixel shave) of `predict` on the held-out pairs, the benchmark's way."""
    from srcnn.metrics import benchmark_metrics
    from srcnn.network import from_model_range

    scores = []
    for low_res, high_res in pairs:
        output = from_model_range(predict(low_res[np.newaxis])[0])
        scores.append(benchmark_metrics(from_model_range(high_res), output, 2)["psnr_y"])
    return float(np.mean(scores))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="folders of training photos")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the model's best.weights.h5")
    parser.add_argument("--val-names", type=Path, required=True, help="a file of photo names held out to pick by")
    parser.add_argument("--degradation", default="bicubic", help="how the small images are made (prep_images.py's)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=3e-5, help="the start of a cosine decay")
    args = parser.parse_args(argv)
    from srcnn.precision import start_tensorflow

    start_tensorflow()  # quietly
    import keras

    from srcnn.checkpoints import load_for_inference
    from srcnn.files import read_names
    from srcnn.int8 import FakeQuantized, calibration_batch, int8_weights_of, quantized_onnx
    from srcnn.runtimes import conv2d_form, onnx_bytes, onnxruntime_predict

    model, config = load_for_inference(args.checkpoint)
    training, validation = photos_of(args.folders, set(read_names(args.val_names)))
    if not validation:
        parser.error(f"none of the names in {args.val_names} is in the folders")
    train_pairs, val_pairs = pairs_of(training, args.degradation), pairs_of(validation, args.degradation)
    print(f"{len(train_pairs)} training photos, {len(val_pairs)} held out")
    calibration = calibration_batch()

    def int8_score() -> float:
        graph = quantized_onnx(onnx_bytes(conv2d_form(model, config)), calibration)
        return held_out_psnr(onnxruntime_predict(graph), val_pairs)

    float_score, best = held_out_psnr(model.predict_on_batch, val_pairs), int8_score()
    print(f"held-out Y-PSNR: float32 {float_score:.3f} dB, 8-bit as they are {best:.3f} dB")
    twin = FakeQuantized(model, config, calibration)
    keras.utils.set_random_seed(0)
    steps = args.epochs * -(-len(train_pairs) * CROPS_PER_PHOTO // BATCH_SIZE)
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)
    twin.model.compile(keras.optimizers.Adam(schedule), loss=config_loss(args.checkpoint))
    target = int8_weights_of(args.checkpoint)
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        twin.calibrate()
        low, high = crops(train_pairs, epoch)
        twin.model.fit(low, high, batch_size=BATCH_SIZE, epochs=1, shuffle=True, verbose=0)
        model.set_weights(twin.float_weights())
        score = int8_score()
        print(f"epoch {epoch}: 8-bit {score:.3f} dB held out ({time.perf_counter() - started:.0f} s)")
        if score > best:
            best = score
            model.save_weights(str(target))
            print(f"  saved {target}")
    print(f"best 8-bit held-out Y-PSNR {best:.3f} dB (float32 {float_score:.3f})")
    if not target.is_file():
        print(f"no epoch beat the weights quantized as they are: nothing written to {target}")
    return 0


def config_loss(checkpoint: Path) -> str:
    """The loss the model was trained with (its run record), as Keras names it."""
    from srcnn.checkpoints import read_run_record

    return {"l1": "mae", "mse": "mse"}[read_run_record(checkpoint.parent).get("train", {}).get("loss", "mse")]


if __name__ == "__main__":
    sys.exit(main())
