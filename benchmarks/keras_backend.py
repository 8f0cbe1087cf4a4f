"""The blog's network on any Keras backend and device, TensorFlow not needed: a GPU check.

    KERAS_BACKEND=jax python -m benchmarks.keras_backend [--t91 DIR --set5 DIR] [--json FILE]

For a GPU machine where TensorFlow's own GPU build cannot be installed (its wheel alone is 573 MB
and wants CUDA 12 libraries): Keras 3 runs the same layers on JAX or PyTorch. Two parts:

- speed: training crops/s of the plain and the re-parameterized network in float32,
  mixed_float16 and mixed_bfloat16 (XLA-compiled steps), and inference megapixels/s.
- recipe: configs/t91.json's recipe (random crops with flips and quarter turns, per-epoch cosine
  schedule, near-identity start, Adam, MSE) rebuilt on NumPy instead of tf.data, trained for the
  epochs asked, then Set5 scored with test.py --benchmark's protocol on the *last* epoch's
  network (nothing is picked on Set5). Each run stops starting new ones past --budget seconds.

It reuses the package's Keras-only modules (network, reparam, config, images, metrics); train.py
itself needs TensorFlow (tf.data, tf.distribute).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import keras
import numpy as np

from srcnn.config import ModelConfig, TrainConfig
from srcnn.images import IMAGE_SUFFIXES, load_rgb, make_whole_pair
from srcnn.metrics import benchmark_metrics
from srcnn.network import build_model, compile_model, from_model_range, initialize_near_identity, to_model_range
from srcnn.reparam import build_training_model, collapse, initialize_training_model

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def training_speed(precision: str, reparam: bool, batch_size: int, patch_size: int = 64, steps: int = 60) -> float:
    """Training crops/s of the blog network (batches already in host memory, as fit gets them)."""
    config = ModelConfig()
    model = (build_training_model if reparam else build_model)(config, precision)
    compile_model(model, 1e-4, precision, jit=True)
    crops = np.random.default_rng(0).uniform(-1, 1, (batch_size * steps, patch_size, patch_size, 3))
    crops = crops.astype(np.float32)
    model.fit(crops[: 3 * batch_size], crops[: 3 * batch_size], batch_size=batch_size, verbose=0)  # compile
    start = time.perf_counter()
    model.fit(crops, crops, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
    return batch_size * steps / (time.perf_counter() - start)


def inference_speed(precision: str, side: int = 512, batch: int = 4, repeats: int = 10) -> float:
    """Megapixels/s of output through the plain network (predict_on_batch, compiled)."""
    model = build_model(ModelConfig(), precision)
    images = np.random.default_rng(0).uniform(-1, 1, (batch, side, side, 3)).astype(np.float32)
    model.predict_on_batch(images)  # compile
    start = time.perf_counter()
    for _ in range(repeats):
        np.asarray(model.predict_on_batch(images))
    return batch * side * side * repeats / (time.perf_counter() - start) / 1e6


def load_pairs(folder: Path, scale: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    """(low_res, high_res) uint8 arrays of every image in folder, made as prep_images.py --whole does."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return [tuple(np.asarray(image) for image in make_whole_pair(load_rgb(path), scale)) for path in paths]


def epoch_crops(pairs: list, repeat: int, patch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`repeat` random crops per pair, the same window in both images, each in one of the eight
    flips and quarter turns (dataset.make_dataset's augmentation), shuffled."""
    low, high = [], []
    for _ in range(repeat):
        for low_res, high_res in pairs:
            top = rng.integers(0, low_res.shape[0] - patch_size + 1)
            left = rng.integers(0, low_res.shape[1] - patch_size + 1)
            window = np.stack([low_res, high_res])[:, top : top + patch_size, left : left + patch_size]
            if rng.integers(2):
                window = window[:, :, ::-1]
            window = np.rot90(window, k=int(rng.integers(4)), axes=(1, 2))
            low.append(window[0])
            high.append(window[1])
    order = rng.permutation(len(low))
    return to_model_range(np.stack(low)[order]), to_model_range(np.stack(high)[order])


def set5_scores(model: keras.Model, pairs: list) -> dict[str, float]:
    """Mean Y-PSNR/SSIM (border = scale = 2 shaved) of the model and of bicubic, as test.py --benchmark."""
    rows = []
    for low_res, high_res in pairs:
        super_res = from_model_range(model.predict_on_batch(to_model_range(low_res)[None])[0])
        model_values, bicubic_values = (
            benchmark_metrics(high_res, super_res, 2),
            benchmark_metrics(high_res, low_res, 2),
        )
        rows.append(
            [model_values["psnr_y"], model_values["ssim_y"], bicubic_values["psnr_y"], bicubic_values["ssim_y"]]
        )
    means = np.mean(rows, axis=0)
    return dict(zip(("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y"), map(float, means), strict=True))


def recipe_run(train_pairs: list, set5_pairs: list, config: TrainConfig, precision: str) -> dict:
    """config's recipe, trained on NumPy crops for config.epochs; Set5 of the last epoch."""
    model_config = ModelConfig()
    keras.utils.set_random_seed(config.seed)
    if config.reparam:
        model = build_training_model(model_config, precision)
        initialize_training_model(model, model_config)
    else:
        model = build_model(model_config, precision)
        initialize_near_identity(model, model_config)
    compile_model(
        model,
        config.learning_rate,
        precision,
        jit=True,
        loss=config.loss,
        loss_border=config.loss_border,
        pure_margin=config.pure_margin,
    )
    rng = np.random.default_rng(config.seed)
    schedule = keras.callbacks.LearningRateScheduler(config.learning_rate_at)
    start = time.perf_counter()
    for epoch in range(config.epochs):
        low, high = epoch_crops(train_pairs, config.repeat, config.patch_size, rng)
        model.fit(
            low,
            high,
            batch_size=config.batch_size,
            initial_epoch=epoch,
            epochs=epoch + 1,
            verbose=0,
            callbacks=[schedule],
        )
    seconds = time.perf_counter() - start
    plain = collapse(model, model_config) if config.reparam else build_model(model_config)
    if not config.reparam:
        plain.set_weights([np.asarray(weight, np.float32) for weight in model.get_weights()])
    return {"epochs": config.epochs, "reparam": config.reparam, "seconds": seconds, **set5_scores(plain, set5_pairs)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--t91", type=Path, help="T91 folder: also run the recipe and score Set5")
    parser.add_argument("--set5", type=Path, help="Set5 folder (with --t91)")
    parser.add_argument("--runs", default="140:plain,140:reparam", help="EPOCHS:plain|reparam, comma-separated")
    parser.add_argument("--precision", default="mixed_float16", choices=PRECISIONS, help="for the recipe runs")
    parser.add_argument("--budget", type=float, default=300, help="seconds after which no new recipe run starts")
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke test on a CPU)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)

    report = {"backend": keras.backend.backend(), "machine": platform.machine(), "devices": devices()}
    print(json.dumps(report), flush=True)
    steps = 4 if args.quick else 60
    speed = []
    for precision in PRECISIONS:
        for reparam in (False, True):
            for batch_size in (32, 256):
                rate = training_speed(precision, reparam, batch_size, steps=steps)
                speed.append(
                    {"precision": precision, "reparam": reparam, "batch_size": batch_size, "crops_per_s": rate}
                )
                print(
                    f"train {precision:15s} reparam={reparam!s:5s} batch {batch_size:3d}: {rate:9.0f} crops/s",
                    flush=True,
                )
        rate = inference_speed(precision, repeats=2 if args.quick else 10)
        speed.append({"precision": precision, "inference_megapixels_per_s": rate})
        print(f"infer {precision:15s} 4 x 512x512: {rate:9.1f} megapixels/s", flush=True)
    report["speed"] = speed

    if args.t91 and args.set5:
        train_pairs, set5_pairs = load_pairs(args.t91), load_pairs(args.set5)
        recipe = json.loads((Path(__file__).parent.parent / "configs" / "t91.json").read_text())
        report["recipe"], started = [], time.perf_counter()
        for run in args.runs.split(","):
            if time.perf_counter() - started > args.budget:
                print(f"skipped {run}: past --budget", flush=True)
                continue
            epochs, kind = run.split(":")
            config = TrainConfig(**{**recipe, "epochs": int(epochs), "reparam": kind == "reparam"})
            result = recipe_run(train_pairs, set5_pairs, config, args.precision)
            report["recipe"].append({**result, "precision": args.precision, "run": run})
            print(f"recipe {run}: {json.dumps(report['recipe'][-1])}", flush=True)
            if args.json:  # after each run: a cut-off call keeps what finished
                args.json.write_text(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def devices() -> list[str]:
    """What the backend computes on, in its own words."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return [str(device) for device in jax.devices()]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(0)] if torch.cuda.is_available() else ["cpu"]
    return [keras.backend.backend()]


if __name__ == "__main__":
    main()
