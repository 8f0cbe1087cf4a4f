"""The blog's network on any Keras backend and device, TensorFlow not needed: a GPU speed probe.

    KERAS_BACKEND=jax python -m benchmarks.keras_backend [--json FILE] [--quick]

For a GPU machine where TensorFlow's own GPU build cannot be installed (its wheel alone is 573 MB
and wants CUDA 12 libraries): Keras 3 runs the same layers on JAX or PyTorch. It measures training
crops/s of the plain and the re-parameterized network in float32, mixed_float16 and
mixed_bfloat16 (XLA-compiled steps), and inference megapixels/s. It trains nothing to keep: there
is one trainer, train.py (TensorFlow: tf.data, tf.distribute). Until 2026-12-03 this file also
re-built a training recipe on NumPy; the GPU numbers in benchmarks/README.md that came from that
runner cite its last version, `git show 19e8c4d:benchmarks/keras_backend.py`.

It uses the package's Keras-only modules (network, reparam, config).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import keras
import numpy as np

from srcnn.config import ModelConfig
from srcnn.network import build_model, compile_model
from srcnn.reparam import build_training_model

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test on a CPU: float32 only, batch 4, a few steps, small images"
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    report = {"backend": keras.backend.backend(), "machine": platform.machine(), "devices": devices()}
    print(json.dumps(report), flush=True)
    steps = 4 if args.quick else 60
    precisions, batch_sizes = (("float32",), (4,)) if args.quick else (PRECISIONS, (32, 256))
    speed = []
    for precision in precisions:
        for reparam in (False, True):
            for batch_size in batch_sizes:
                rate = training_speed(precision, reparam, batch_size, patch_size=32 if args.quick else 64, steps=steps)
                speed.append(
                    {"precision": precision, "reparam": reparam, "batch_size": batch_size, "crops_per_s": rate}
                )
                print(
                    f"train {precision:15s} reparam={reparam!s:5s} batch {batch_size:3d}: {rate:9.0f} crops/s",
                    flush=True,
                )
        side = 64 if args.quick else 512
        rate = inference_speed(precision, side=side, repeats=2 if args.quick else 10)
        speed.append({"precision": precision, "inference_megapixels_per_s": rate})
        print(f"infer {precision:15s} 4 x {side}x{side}: {rate:9.1f} megapixels/s", flush=True)
    report["speed"] = speed
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
