"""Throughput of training, upscaling and preparation on this machine, as ratios measured in one run.

Usage:
    python benchmarks/run.py [--quick] [--json FILE]

Everything runs on synthetic data made here (nothing is downloaded). Training goes through
train.py's own pieces: prepared PNG pairs on disk, its tf.data pipeline, its model, its compile
settings and Keras fit; the time of each epoch after a warm-up epoch is taken, and the median
of the repeats is reported. The bound is this machine's measured matmul speed divided by the
model's training FLOPs per image: no real training step can beat it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = 128  # the blog's training images: 128x128
BATCH_SIZE = 16  # train.py's default


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer and shorter repeats (about 3 minutes on 2 cores)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument(
        "--only", nargs="+", choices=("bound", "train", "infer", "prep"), default=None, help="run only these parts"
    )
    return parser.parse_args(argv)


# --- Synthetic data ------------------------------------------------------------------------------


def synthetic_photo(height: int, width: int, seed: int):
    """A smooth random picture with edges (JPEG and bicubic behave as on photos, not as on noise)."""
    import numpy as np
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    noise = Image.fromarray(noise).filter(ImageFilter.GaussianBlur(1))
    return Image.blend(image, noise, 0.25)


def write_pairs(folder: Path, count: int) -> None:
    """`count` prepared 128x128 pairs in the layout prep_images.py writes (train/hr, train/lr)."""
    from srcnn.images import make_pair

    for kind in ("hr", "lr"):
        (folder / "train" / kind).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        low_res, high_res = make_pair(synthetic_photo(200, 160, index), SIZE, 2)
        high_res.save(folder / "train" / "hr" / f"{index:04d}.png")
        low_res.save(folder / "train" / "lr" / f"{index:04d}.png")


# --- The bound -----------------------------------------------------------------------------------


def matmul_gflops(dtype_name: str, size: int, repeats: int) -> float:
    """Best of `repeats` timings of a square matmul, in GFLOP/s (2 n^3 per product)."""
    import tensorflow as tf

    dtype = tf.as_dtype(dtype_name)
    left = tf.cast(tf.random.stateless_normal((size, size), seed=(1, 2)), dtype)
    right = tf.cast(tf.random.stateless_normal((size, size), seed=(3, 4)), dtype)
    product = tf.function(lambda: tf.matmul(left, right))
    product().numpy()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(3):
            result = product()
        result.numpy()
        best = max(best, 3 * 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


# --- Training ------------------------------------------------------------------------------------


def epoch_timer():
    """A Keras callback that appends each epoch's seconds to its `seconds` list."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.start = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    return EpochTimer()


def fit_epoch(data_dir: Path, images: int, precision: str, jit: bool = False):
    """One-epoch runner through train.py's pieces: its tf.data pipeline, model, compile settings and fit.

    Returns a function that trains one more epoch and returns its seconds, from the start of the
    epoch to its end as Keras callbacks see them (the end waits for the last step). That is the
    time per epoch of train.py's single long fit call; what a separate fit call adds on top
    (about 2 s here, once per call, as fit winds down) would not be training speed.
    """
    timer = epoch_timer()
    import keras

    from srcnn.dataset import list_pairs, make_dataset
    from srcnn.network import ModelConfig, build_model, initialize_near_identity
    from srcnn.training import compile_model

    keras.utils.set_random_seed(0)
    model = build_model(precision=precision)
    initialize_near_identity(model, ModelConfig())
    compile_model(model, 1e-3, precision, jit)
    dataset = make_dataset(list_pairs(data_dir, "train")[:images], BATCH_SIZE, shuffle=True, seed=0)

    def one_epoch() -> float:
        model.fit(dataset, epochs=1, verbose=0, callbacks=[timer])
        return timer.seconds[-1]

    return one_epoch


def pipeline_epoch(data_dir: Path, images: int):
    """One-epoch runner of the training tf.data pipeline alone (decoded and cached, as after epoch 1)."""
    from srcnn.dataset import list_pairs, make_dataset

    dataset = make_dataset(list_pairs(data_dir, "train")[:images], BATCH_SIZE, shuffle=True, seed=0)

    def one_epoch() -> float:
        start = time.perf_counter()
        for _ in dataset:
            pass
        return time.perf_counter() - start

    return one_epoch


def naive_epoch(images: int):
    """One-epoch runner of what a beginner writes: eager GradientTape steps on batches sliced from
    NumPy arrays, float32, no tf.function."""
    import keras
    import numpy as np
    import tensorflow as tf

    from srcnn.network import build_model

    keras.utils.set_random_seed(0)
    model = build_model()
    optimizer = keras.optimizers.Adam(1e-3)
    rng = np.random.default_rng(0)
    high_res = rng.uniform(-1, 1, (images, SIZE, SIZE, 3)).astype(np.float32)
    low_res = rng.uniform(-1, 1, (images, SIZE, SIZE, 3)).astype(np.float32)

    def one_epoch() -> float:
        start = time.perf_counter()
        for first in range(0, images, BATCH_SIZE):
            with tf.GradientTape() as tape:
                predicted = model(low_res[first : first + BATCH_SIZE], training=True)
                loss = tf.reduce_mean(tf.square(predicted - high_res[first : first + BATCH_SIZE]))
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        float(loss)
        return time.perf_counter() - start

    return one_epoch


def interleaved(runners: dict, images: int, repeats: int) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Images/s of each runner: a warm-up epoch each, then `repeats` rounds of one epoch each, in turn.

    Taking turns spreads any slow spell of a shared machine over all of them; the medians are
    reported, and the per-round rates are kept for ratios within a round.
    """
    for one_epoch in runners.values():
        one_epoch()
    rounds = [{name: images / one_epoch() for name, one_epoch in runners.items()} for _ in range(repeats)]
    return {name: statistics.median(row[name] for row in rounds) for name in runners}, rounds


def median_ratio(rounds: list[dict[str, float]], numerator: str, denominator: str) -> float:
    return statistics.median(row[numerator] / row[denominator] for row in rounds)


# --- Upscaling -----------------------------------------------------------------------------------


def infer_rate(repeats: int) -> float:
    """Output megapixels/s of upscale.py's path (bicubic, then the network in tiles) on a 1024x1024 photo."""
    from srcnn.training import PRETRAINED_WEIGHTS, load_for_inference
    from srcnn.upscaling import split_modes, upscale

    model, config = load_for_inference(PRETRAINED_WEIGHTS)
    photo = split_modes(synthetic_photo(1024, 1024, 7))
    upscale(model, config, photo)  # warm-up: traces the graph for each tile shape
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        upscale(model, config, photo)
        seconds.append(time.perf_counter() - start)
    return 2048 * 2048 / 1e6 / statistics.median(seconds)


def upscale_peak_rss_mb(folder: Path) -> float:
    """Peak resident memory (MiB) of `python upscale.py` turning a 2048x2048 photo into 4096x4096."""
    source = folder / "big.png"
    synthetic_photo(2048, 2048, 8).save(source)
    command = [sys.executable, str(ROOT / "upscale.py"), str(source), "-o", str(folder / "big_x2.png"), "--overwrite"]
    # A fresh parent whose only child is upscale.py, so the children's peak is upscale.py's own.
    probe = (
        "import resource, subprocess, sys; completed = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        " print(completed.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
        " sys.stderr.write(completed.stderr)"
    )
    completed = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, cwd=folder)
    returncode, peak = (int(item) for item in completed.stdout.split())
    if returncode != 0:
        raise RuntimeError(f"upscale.py failed: {completed.stderr.strip().splitlines()[-1:]}")
    return peak / 1024  # Linux reports KiB


# --- Preparation ---------------------------------------------------------------------------------


def prep_rates(folder: Path, count: int) -> tuple[float, float, int]:
    """prep_images.py's work (prepare_folder) on `count` JPEGs of mixed sizes: 1 worker and all cores.

    Each run is a fresh Python process, as prep_images.py is: forking this process, which holds
    TensorFlow and its threads, would measure something no user runs.
    """
    import numpy as np

    photos = folder / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        height, width = (int(side) for side in rng.integers(120, 900, 2))
        synthetic_photo(height, width, index).save(photos / f"{index:04d}.jpg", quality=90)
    cores = os.cpu_count() or 1
    probe = (
        "import sys, time; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        " from srcnn.preparation import PrepConfig, prepare_folder; start = time.perf_counter();"
        " summary = prepare_folder(Path(sys.argv[2]), Path(sys.argv[3]), PrepConfig(), workers=int(sys.argv[4]),"
        " progress=False, log=lambda line: None); print(summary.written / (time.perf_counter() - start))"
    )
    rates = []
    for workers in (1, cores):
        output = folder / f"prepared-{workers}"
        arguments = [str(ROOT), str(photos), str(output), str(workers)]
        completed = subprocess.run(
            [sys.executable, "-c", probe, *arguments], capture_output=True, text=True, check=True
        )
        rates.append(float(completed.stdout.split()[-1]))
    return rates[0], rates[1], cores


# --- Report --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parts = set(args.only or ("bound", "train", "infer", "prep"))
    repeats = 5 if args.quick else 7
    train_images = 96 if args.quick else 192
    results: dict[str, float | int | str] = {}

    import tensorflow as tf

    from srcnn.network import ModelConfig, forward_flops_per_pixel, training_flops_per_pixel
    from srcnn.precision import resolve_precision

    config = ModelConfig()
    gpus = tf.config.list_physical_devices("GPU")
    auto_precision, why = resolve_precision("auto")
    results["device"] = f"GPU x{len(gpus)}" if gpus else f"CPU x{os.cpu_count()}"
    results["auto_precision"] = auto_precision
    results["batch_size"] = BATCH_SIZE
    results["forward_gflop_per_image"] = forward_flops_per_pixel(config) * SIZE * SIZE / 1e9
    results["train_gflop_per_image"] = train_flops = training_flops_per_pixel(config) * SIZE * SIZE / 1e9
    print(f"device: {results['device']}; auto precision: {auto_precision} ({why})")
    print(
        f"model: {results['forward_gflop_per_image']:.3f} GFLOP forward, {train_flops:.3f} GFLOP per training"
        f" image ({SIZE}x{SIZE}); batch {BATCH_SIZE}"
    )

    if "bound" in parts:
        size = 2048 if args.quick else 4096
        for dtype_name, key in (("float32", "fp32"), ("bfloat16", "bf16")):
            gflops = matmul_gflops(dtype_name, size, repeats)
            results[f"matmul_{key}_gflops"] = gflops
            results[f"bound_{key}_images_per_s"] = gflops / train_flops
            print(f"matmul {dtype_name}: {gflops:.0f} GFLOP/s -> bound {gflops / train_flops:.1f} images/s")
        if gpus:
            gflops = matmul_gflops("float16", size, repeats)
            results["matmul_fp16_gflops"] = gflops
            results["bound_fp16_images_per_s"] = gflops / train_flops

    with tempfile.TemporaryDirectory(prefix="srcnn-bench-") as temporary:
        folder = Path(temporary)
        if "train" in parts:
            write_pairs(folder / "data", train_images)
            # float32, what `auto` picks here, and bfloat16 on any GPU too.
            precisions = ["float32"]
            if auto_precision == "mixed_float16":
                precisions.append("mixed_float16")
            if gpus or auto_precision == "mixed_bfloat16":
                precisions.append("mixed_bfloat16")
            runners = {precision: fit_epoch(folder / "data", train_images, precision) for precision in precisions}
            if not args.quick:
                for precision in precisions:
                    runners[f"{precision}_xla"] = fit_epoch(folder / "data", train_images, precision, jit=True)
            runners["naive"] = naive_epoch(train_images)
            runners["pipeline"] = pipeline_epoch(folder / "data", train_images)
            rates, rounds = interleaved(runners, train_images, repeats)
            for name, rate in rates.items():
                print(f"{name}: {rate:.1f} images/s")
                if name not in ("naive", "pipeline"):
                    results[f"train_{name}_images_per_s"] = rate
            fastest = max(precisions, key=rates.get)
            results["train_fastest_precision"] = fastest
            results["train_images_per_s"] = rates[fastest]
            results["train_fp32_images_per_s"] = rates["float32"]
            results["naive_images_per_s"] = rates["naive"]
            results["input_pipeline_images_per_s"] = rates["pipeline"]
            results["fastest_over_naive"] = median_ratio(rounds, fastest, "naive")
            results["fp32_over_naive"] = median_ratio(rounds, "float32", "naive")
            results["input_pipeline_share"] = median_ratio(rounds, fastest, "pipeline")
        if "infer" in parts:
            results["infer_megapixels_per_s"] = infer_rate(2 if args.quick else repeats)
            print(f"upscale 1024x1024 -> 2048x2048: {results['infer_megapixels_per_s']:.2f} output MP/s")
            results["infer_peak_rss_mb_4096"] = upscale_peak_rss_mb(folder)
            print(f"upscale.py 2048x2048 -> 4096x4096: peak RSS {results['infer_peak_rss_mb_4096']:.0f} MiB")
        if "prep" in parts:
            one, everyone, cores = prep_rates(folder, 120 if args.quick else 300)
            results["prep_images_per_s_1"], results["prep_images_per_s_all"] = one, everyone
            results["prep_workers_all"] = cores
            print(f"prep: {one:.1f} images/s with 1 worker, {everyone:.1f} with {cores}")

    print()
    print(format_ratios(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def format_ratios(results: dict) -> str:
    """The numbers that mean something on a shared machine: ratios measured in the same run."""
    lines = ["| measure | value |", "|---|---|"]

    def row(label: str, value: str) -> None:
        lines.append(f"| {label} | {value} |")

    if "train_images_per_s" in results:
        fastest = results["train_fastest_precision"]
        row(f"training, fastest ({fastest}), images/s", f"{results['train_images_per_s']:.1f}")
        row("training, float32, images/s", f"{results['train_fp32_images_per_s']:.1f}")
        row("naive eager loop, float32, images/s", f"{results['naive_images_per_s']:.1f}")
        row("fastest / naive (median of per-round ratios)", f"{results['fastest_over_naive']:.2f}x")
        row("float32 fit / naive", f"{results['fp32_over_naive']:.2f}x")
        row("input pipeline time / training step time", f"{100 * results['input_pipeline_share']:.1f}%")
        if "bound_fp32_images_per_s" in results:
            fp32_share = results["train_fp32_images_per_s"] / results["bound_fp32_images_per_s"]
            row("float32 fit / float32 bound", f"{100 * fp32_share:.0f}%")
            bf16 = results.get("train_mixed_bfloat16_images_per_s")
            if bf16:
                row("bfloat16 fit / bfloat16 bound", f"{100 * bf16 / results['bound_bf16_images_per_s']:.0f}%")
    if "infer_megapixels_per_s" in results:
        row("upscale 1024² -> 2048², output MP/s", f"{results['infer_megapixels_per_s']:.2f}")
        row("upscale.py 2048² -> 4096², peak RSS MiB", f"{results['infer_peak_rss_mb_4096']:.0f}")
    if "prep_images_per_s_1" in results:
        speedup = results["prep_images_per_s_all"] / results["prep_images_per_s_1"]
        row(f"prep, {results['prep_workers_all']} workers / 1 worker", f"{speedup:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
