"""Throughput of training, upscaling and preparation on this machine, as ratios measured in one run.

Usage, from the project's root folder:
    python -m benchmarks.run [--quick] [--json FILE] [--only bound train infer prep] [--set5 DIR]

Everything runs on synthetic data made here (nothing is downloaded), except the optional Set5
quality check of the upscaling runtimes. Training goes through train.py's own pieces: prepared PNG
pairs on disk, its tf.data pipeline, its model, its compile settings and Keras fit; the time of
each epoch after a warm-up epoch is taken, and the median of the repeats is reported. The bound is
this machine's measured matmul speed divided by the model's training FLOPs per image: no real
training step can beat it. Upscaling runs every runtime this machine can (srcnn.runtimes) on the
same photo, taking turns, with its Set5 Y-PSNR against Keras float32; a folder of JPEGs goes
through enlarge_all (upscale.py's path) and, for comparison, one photo after another with Keras
float32.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Before TensorFlow loads, which the imports below do: keep its start-up chatter out of the report.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from srcnn.checkpoints import SHIPPED_WEIGHTS, load_for_inference  # noqa: E402
from srcnn.config import ModelConfig  # noqa: E402
from srcnn.dataset import list_pairs, make_dataset  # noqa: E402
from srcnn.files import one_line  # noqa: E402
from srcnn.images import IMAGE_SUFFIXES, load_rgb, make_pair, make_whole_pair  # noqa: E402
from srcnn.metrics import benchmark_metrics, flat_region_kept  # noqa: E402
from srcnn.network import (  # noqa: E402
    build_model,
    compile_model,
    forward_flops_per_pixel,
    initialize_near_identity,
    training_flops_per_pixel,
)
from srcnn.precision import resolve_precision  # noqa: E402
from srcnn.reparam import build_training_model, initialize_training_model  # noqa: E402
from srcnn.runtimes import RUNTIMES, Runtime, available, make_runtime, resolve_runtime  # noqa: E402
from srcnn.upscaling import (  # noqa: E402
    DEFAULT_TILE,
    Predict,
    enlarge_all,
    open_photo,
    run_tiled,
    save_image,
    split_modes,
    upscale,
    upscale_in_passes,
)

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("bound", "train", "infer", "prep")
SIZE = 128  # the blog's training images: 128x128
BATCH_SIZE = 16  # train.py's default
FOLDER_PHOTOS = 20  # 800x600 JPEGs of the folder measurement


@dataclass(frozen=True)
class Plan:
    """How much of each part runs."""

    repeats: int  # rounds of training epochs; timings of the matmul
    train_images: int  # images per training epoch
    matmul_size: int  # side of the square matrices of the bound
    infer_repeats: int  # rounds of timed upscales, one per runtime each
    folder_repeats: int  # rounds of the folder, one pass each way
    prep_photos: int  # JPEGs prepared per worker count
    xla: bool  # also train each precision with XLA


FULL = Plan(repeats=7, train_images=192, matmul_size=4096, infer_repeats=7, folder_repeats=3, prep_photos=300, xla=True)
QUICK = Plan(
    repeats=5, train_images=96, matmul_size=2048, infer_repeats=2, folder_repeats=1, prep_photos=120, xla=False
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer and shorter repeats (about 3 minutes on 2 cores)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=None, help="run only these parts")
    parser.add_argument(
        "--set5",
        type=Path,
        default=ROOT.parent / "shared" / "data" / "Set5",
        help="Set5 images: each runtime's Y-PSNR against Keras float32 (skipped if missing; default: %(default)s)",
    )
    return parser.parse_args(argv)


# --- Synthetic data ------------------------------------------------------------------------------


def synthetic_photo(height: int, width: int, seed: int) -> Image.Image:
    """A smooth random picture with edges (JPEG and bicubic behave as on photos, not as on noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    noise = Image.fromarray(noise).filter(ImageFilter.GaussianBlur(1))
    return Image.blend(image, noise, 0.25)


def write_pairs(folder: Path, count: int) -> None:
    """`count` prepared 128x128 pairs in the layout prep_images.py writes (train/hr, train/lr)."""
    for kind in ("hr", "lr"):
        (folder / "train" / kind).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        low_res, high_res = make_pair(synthetic_photo(200, 160, index), SIZE, 2)
        high_res.save(folder / "train" / "hr" / f"{index:04d}.png")
        low_res.save(folder / "train" / "lr" / f"{index:04d}.png")


def write_photos(folder: Path, count: int) -> Path:
    """`count` JPEGs from 120 to 900 pixels a side, in `folder`, which must not exist yet."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        height, width = (int(side) for side in rng.integers(120, 900, 2))
        synthetic_photo(height, width, index).save(folder / f"{index:04d}.jpg", quality=90)
    return folder


def run_probe(*arguments: str) -> dict:
    """`python -m benchmarks.probes ARGUMENTS` in a fresh interpreter, free of this one's TensorFlow: its JSON line."""
    command = [sys.executable, "-m", "benchmarks.probes", *arguments]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if completed.returncode != 0:
        last_lines = completed.stderr.strip().splitlines()[-5:]
        raise RuntimeError(f"probe {arguments[0]} exited with {completed.returncode}: " + "\n".join(last_lines))
    return json.loads(completed.stdout.splitlines()[-1])


# --- The bound -----------------------------------------------------------------------------------


def matmul_gflops(dtype_name: str, size: int, repeats: int) -> float:
    """Best of `repeats` timings of a square matmul, in GFLOP/s (2 n^3 per product)."""
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


class EpochTimer(keras.callbacks.Callback):
    """Appends each epoch's seconds to its `seconds` list."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self.start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def fit_epoch(data_dir: Path, images: int, precision: str, jit: bool = False, reparam: bool = False):
    """One-epoch runner through train.py's pieces: its tf.data pipeline, model, compile settings and fit.

    Returns a function that trains one more epoch and returns its seconds, from the start of the
    epoch to its end as Keras callbacks see them (the end waits for the last step). That is the
    time per epoch of train.py's single long fit call; what a separate fit call adds on top
    (about 2 s here, once per call, as fit winds down) would not be training speed.
    """
    timer = EpochTimer()
    keras.utils.set_random_seed(0)
    if reparam:  # train.py with reparam=true: the branches' training form
        model = build_training_model(ModelConfig(), precision)
        initialize_training_model(model, ModelConfig())
    else:
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


def training_precisions(auto_precision: str, gpus: int) -> list[str]:
    """float32, what `auto` picks here, and bfloat16 on any GPU too."""
    precisions = ["float32"]
    if auto_precision == "mixed_float16":
        precisions.append("mixed_float16")
    if gpus or auto_precision == "mixed_bfloat16":
        precisions.append("mixed_bfloat16")
    return precisions


def training_runners(data_dir: Path, plan: Plan, precisions: list[str]) -> dict:
    """The one-epoch runners that take turns: each precision (and with XLA), the naive loop, the pipeline."""
    runners = {precision: fit_epoch(data_dir, plan.train_images, precision) for precision in precisions}
    if plan.xla:
        for precision in precisions:
            runners[f"{precision}_xla"] = fit_epoch(data_dir, plan.train_images, precision, jit=True)
    runners["reparam"] = fit_epoch(data_dir, plan.train_images, precisions[-1], reparam=True)  # at auto's precision
    runners["naive"] = naive_epoch(plan.train_images)
    runners["pipeline"] = pipeline_epoch(data_dir, plan.train_images)
    return runners


def interleaved(
    runners: dict, images: float, repeats: int, warm_up: bool = True
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Images/s of each runner: a warm-up epoch each, then `repeats` rounds of one epoch each, in turn.

    Taking turns spreads any slow spell of a shared machine over all of them; the medians are
    reported, and the per-round rates are kept for ratios within a round. Without `warm_up`, the
    caller has warmed them up some cheaper way.
    """
    if warm_up:
        for one_epoch in runners.values():
            one_epoch()
    rounds = [{name: images / one_epoch() for name, one_epoch in runners.items()} for _ in range(repeats)]
    return {name: statistics.median(row[name] for row in rounds) for name in runners}, rounds


def median_ratio(rounds: list[dict[str, float]], numerator: str, denominator: str) -> float:
    return statistics.median(row[numerator] / row[denominator] for row in rounds)


def training_results(rates: dict[str, float], rounds: list[dict[str, float]], precisions: list[str]) -> dict:
    """The JSON entries of the training rounds: rates of every fit runner, the naive loop and the pipeline, ratios."""
    results = {
        f"train_{name}_images_per_s": rate
        for name, rate in rates.items()
        if name not in ("naive", "pipeline", "reparam")
    }
    results["train_reparam_images_per_s"] = rates["reparam"]
    results["reparam_over_plain"] = median_ratio(rounds, "reparam", precisions[-1])
    fastest = max(precisions, key=rates.get)
    results["train_fastest_precision"] = fastest
    results["train_images_per_s"] = rates[fastest]
    results["train_fp32_images_per_s"] = rates["float32"]
    results["naive_images_per_s"] = rates["naive"]
    results["input_pipeline_images_per_s"] = rates["pipeline"]
    results["fastest_over_naive"] = median_ratio(rounds, fastest, "naive")
    results["fp32_over_naive"] = median_ratio(rounds, "float32", "naive")
    results["input_pipeline_share"] = median_ratio(rounds, fastest, "pipeline")
    return results


# --- Upscaling -----------------------------------------------------------------------------------


def runtime_key(name: str) -> str:
    """A runtime's name as it appears in the JSON keys: keras-bfloat16 -> keras_bfloat16."""
    return name.replace("-", "_")


def build_runtimes(model: keras.Model, config: ModelConfig, weights: Path) -> tuple[dict[str, Runtime], dict[str, str]]:
    """Every runtime but auto that this machine can run, each checked on a small image; and why any failed."""
    runtimes, failed = {}, {}
    for name in RUNTIMES:
        if name == "auto" or not available(name):
            continue
        try:
            runtime = make_runtime(name, model, config, weights)
            runtime.predict(np.zeros((1, 32, 32, 3), np.float32))
        except Exception as error:  # one broken runtime must not end the benchmark: it is reported instead
            failed[name] = one_line(error)
            print(f"runtime {name} failed: {failed[name]}")
            continue
        runtimes[name] = runtime
    return runtimes, failed


def upscale_runner(predict, config: ModelConfig, photo):
    """One timed call of upscale.py's path (bicubic, then the network in tiles) through `predict`: its seconds."""

    def one_upscale() -> float:
        start = time.perf_counter()
        upscale(predict, config, photo)
        return time.perf_counter() - start

    return one_upscale


def runtime_results(rates: dict[str, float], rounds: list[dict[str, float]], default: str) -> dict:
    """The JSON entries of the upscaling rounds: every runtime's MP/s, the default's, and its ratio to Keras float32."""
    results = {f"infer_{runtime_key(name)}_megapixels_per_s": rate for name, rate in rates.items()}
    results["infer_keras_fp32_megapixels_per_s"] = rates["keras"]
    results["infer_default_runtime"] = default
    results["infer_megapixels_per_s"] = rates[default]
    results["infer_default_over_keras_fp32"] = median_ratio(rounds, default, "keras")
    return results


def runtime_speeds(runtimes: dict[str, Runtime], default: str, config: ModelConfig, repeats: int) -> dict:
    """Output MP/s of each runtime on the same 1024x1024 photo: a warm-up each, then rounds in turn."""
    photo = split_modes(synthetic_photo(1024, 1024, 7))
    runners = {name: upscale_runner(runtime.predict, config, photo) for name, runtime in runtimes.items()}
    rates, rounds = interleaved(runners, 2048 * 2048 / 1e6, repeats)
    for name, rate in rates.items():
        print(f"upscale 1024x1024 -> 2048x2048, {name}: {rate:.2f} output MP/s")
    return runtime_results(rates, rounds, default)


def ensemble_cost(predict: Predict, config: ModelConfig, repeats: int) -> dict:
    """--ensemble's time over one pass (the same runtime, the same 512x512 photo, taking turns)."""
    photo = split_modes(synthetic_photo(512, 512, 8))

    def runner(ensemble: bool):
        def one_upscale() -> float:
            start = time.perf_counter()
            upscale_in_passes([(predict, config, 2)], photo, ensemble=ensemble)
            return time.perf_counter() - start

        return one_upscale

    _, rounds = interleaved({"one pass": runner(False), "ensemble": runner(True)}, 1024 * 1024 / 1e6, repeats)
    ratio = median_ratio(rounds, "one pass", "ensemble")  # rates, one pass over ensemble: the time's ratio
    print(f"upscale 512x512 -> 1024x1024, --ensemble: {ratio:.2f}x the time of one pass")
    return {"infer_ensemble_time_over_one_pass": ratio}


# Output sizes for the 8-bit runtime against the default: 1 MP and 6 MP (a phone photo)
SIZES = {"1mp": (512, 512), "6mp": (1000, 1500)}


def int8_speedups(runtimes: dict[str, Runtime], default: str, config: ModelConfig, repeats: int) -> dict:
    """The 8-bit runtime's output MP/s over the default's, taking turns, at each of SIZES (if it runs)."""
    if "onnxruntime-int8" not in runtimes or default == "onnxruntime-int8":
        return {}
    results, int8 = {}, "onnxruntime-int8"
    for size, (height, width) in SIZES.items():
        photo = split_modes(synthetic_photo(height, width, 11))
        runners = {name: upscale_runner(runtimes[name].predict, config, photo) for name in (default, int8)}
        rates, rounds = interleaved(runners, 4 * height * width / 1e6, repeats)
        ratio = median_ratio(rounds, int8, default)
        results[f"infer_int8_over_default_{size}"] = ratio
        print(f"upscale {width}x{height} -> {2 * width}x{2 * height}: {int8} {rates[int8]:.2f},"
              f" {default} {rates[default]:.2f} output MP/s ({ratio:.2f}x)")  # fmt: skip
    return results


def set5_psnr_y(predict, config: ModelConfig, images: list[Image.Image]) -> float:
    """Mean Y-PSNR (dB) through `predict` on the SRCNN protocol's x2 pairs of `images` (2-pixel border shaved)."""
    scores = []
    for image in images:
        low_res, high_res = make_whole_pair(image, 2)
        output = run_tiled(predict, np.asarray(low_res), halo=config.receptive_field // 2, tile=512)
        scores.append(benchmark_metrics(np.asarray(high_res), output, 2)["psnr_y"])
    return statistics.mean(scores)


def pure_kept(predict, config: ModelConfig) -> dict[str, float]:
    """The share (%) of pure white and of pure black that `predict` keeps exactly (flat_region_kept),
    on a synthetic photo pasted on a white and on a black square, enlarged 2x as upscale.py does."""
    kept = {}
    for name, level in (("white", 255), ("black", 0)):
        canvas = Image.new("RGB", (320, 320), (level,) * 3)
        canvas.paste(synthetic_photo(180, 240, 5), (40, 70))
        low_res, high_res = make_whole_pair(canvas, 2)
        output = run_tiled(predict, np.asarray(low_res), halo=config.receptive_field // 2, tile=512)
        pixels, kept_pixels = flat_region_kept(np.asarray(high_res), level, output)
        kept[name] = 100 * kept_pixels / pixels
    return kept


def runtime_quality(runtimes: dict[str, Runtime], config: ModelConfig, set5: Path) -> dict:
    """Each runtime's share of pure white and black kept exactly; its mean Set5 Y-PSNR and the
    difference from Keras float32's, if Set5 is in `set5`."""
    results = {}
    for name, runtime in runtimes.items():
        kept = pure_kept(runtime.predict, config)
        for level, share in kept.items():
            results[f"infer_{runtime_key(name)}_{level}_kept_percent"] = share
        print(f"pure white / black kept exactly, {name}: {kept['white']:.3f}% / {kept['black']:.3f}%")
    paths = sorted(path for path in set5.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES) if set5.is_dir() else []
    if not paths:
        print(f"Set5 quality check skipped: no images in {set5} (--set5 DIR)")
        return results
    images = [load_rgb(path) for path in paths]
    psnr = {name: set5_psnr_y(runtime.predict, config, images) for name, runtime in runtimes.items()}
    for name, value in psnr.items():
        delta = value - psnr["keras"]
        results[f"infer_{runtime_key(name)}_set5_psnr_y"] = value
        results[f"infer_{runtime_key(name)}_set5_delta_db"] = delta
        print(f"Set5 ({len(images)} images) Y-PSNR, {name}: {value:.3f} dB ({delta:+.3f} against keras float32)")
    return results


def write_folder(folder: Path, count: int) -> list[Path]:
    """`count` 800x600 JPEGs in `folder`, which must not exist yet."""
    folder.mkdir()
    for index in range(count):
        synthetic_photo(600, 800, index).save(folder / f"{index:04d}.jpg", quality=90)
    return sorted(folder.glob("*.jpg"))


def fresh_jobs(photos: list[Path], parent: Path) -> list[tuple[Path, Path]]:
    """(photo, a PNG of the same name in a new folder under `parent`) for each photo."""
    output = Path(tempfile.mkdtemp(prefix="enlarged-", dir=parent))
    return [(photo, output / f"{photo.stem}.png") for photo in photos]


def one_by_one(jobs: list[tuple[Path, Path]], predict, config: ModelConfig) -> None:
    """The path before enlarge_all: each photo read, upscaled and written in turn."""
    for source, target in jobs:
        photo = open_photo(source)
        save_image(upscale(predict, config, photo), target, photo.icc_profile)


def enlarge_quietly(jobs: list[tuple[Path, Path]], predict, config: ModelConfig, batch_size: int) -> None:
    """enlarge_all, its line per photo and progress bar kept out of the report (shown if a photo fails)."""
    with contextlib.redirect_stdout(io.StringIO()) as said, contextlib.redirect_stderr(said):
        failed = enlarge_all(jobs, [(predict, config, 2)], DEFAULT_TILE, batch_size, overwrite=True).skipped
    if failed:
        raise RuntimeError(f"enlarge_all failed on {failed} photos:\n{said.getvalue()[-2000:]}")


def folder_runner(work, photos: list[Path], parent: Path):
    """One timed pass of `work` over all photos into a fresh folder (removed after): its seconds."""

    def one_pass() -> float:
        jobs = fresh_jobs(photos, parent)
        start = time.perf_counter()
        work(jobs)
        seconds = time.perf_counter() - start
        shutil.rmtree(jobs[0][1].parent)
        return seconds

    return one_pass


def folder_speeds(folder: Path, keras_fp32: Runtime, default: Runtime, config: ModelConfig, repeats: int) -> dict:
    """Photos/s on a folder of 800x600 JPEGs: one by one with Keras float32, and enlarge_all with the default
    runtime (a reader and a writer thread beside the model); a warm-up photo each, then rounds in turn."""
    photos = write_folder(folder / "folder", FOLDER_PHOTOS)
    batch_size = 4 if tf.config.list_physical_devices("GPU") else 1  # upscale.py's default --batch
    works = {
        "sequential": lambda jobs: one_by_one(jobs, keras_fp32.predict, config),
        "enlarge_all": lambda jobs: enlarge_quietly(jobs, default.predict, config, batch_size),
    }
    for work in works.values():
        folder_runner(work, photos[:1], folder)()
    runners = {name: folder_runner(work, photos, folder) for name, work in works.items()}
    rates, rounds = interleaved(runners, len(photos), repeats, warm_up=False)
    results = {
        "folder_photos_per_s": rates["enlarge_all"],
        "folder_sequential_keras_fp32_photos_per_s": rates["sequential"],
        "folder_speedup": median_ratio(rounds, "enlarge_all", "sequential"),
    }
    print(
        f"folder of {len(photos)} 800x600 JPEGs: {rates['sequential']:.2f} photos/s one by one (keras),"
        f" {rates['enlarge_all']:.2f} with enlarge_all ({default.name}): {results['folder_speedup']:.2f}x"
    )
    return results


def upscale_peak_rss_mb(folder: Path) -> float:
    """Peak resident memory (MiB) of `python upscale.py` turning a 2048x2048 photo into 4096x4096.

    Measured by a fresh probe process whose only child is upscale.py, so the children's peak is upscale.py's own.
    """
    source = folder / "big.png"
    synthetic_photo(2048, 2048, 8).save(source)
    command = [sys.executable, str(ROOT / "upscale.py"), str(source), "-o", str(folder / "big_x2.png"), "--overwrite"]
    answer = run_probe("peak-rss", "--", *command)
    return answer["peak_rss_kib"] / 1024


# --- Preparation ---------------------------------------------------------------------------------


def prep_rates(folder: Path, count: int) -> tuple[float, float, int]:
    """prep_images.py's work (prepare_folder) on `count` JPEGs of mixed sizes: 1 worker and all cores.

    Each run is a fresh Python process, as prep_images.py is: forking this process, which holds
    TensorFlow and its threads, would measure something no user runs.
    """
    photos = write_photos(folder / "photos", count)
    cores = os.cpu_count() or 1
    rates = []
    for workers in (1, cores):
        answer = run_probe("prep", str(photos), str(folder / f"prepared-{workers}"), str(workers))
        rates.append(answer["images_per_s"])
    return rates[0], rates[1], cores


# --- The steps of a run --------------------------------------------------------------------------


def describe_setup(gpus: int) -> dict:
    """The machine, the precision `--precision auto` picks on it, and the model's FLOPs per 128x128 image."""
    config = ModelConfig()
    auto_precision, why = resolve_precision("auto")
    results = {
        "device": f"GPU x{gpus}" if gpus else f"CPU x{os.cpu_count()}",
        "auto_precision": auto_precision,
        "batch_size": BATCH_SIZE,
        "forward_gflop_per_image": forward_flops_per_pixel(config) * SIZE * SIZE / 1e9,
        "train_gflop_per_image": training_flops_per_pixel(config) * SIZE * SIZE / 1e9,
    }
    print(f"device: {results['device']}; auto precision: {auto_precision} ({why})")
    print(
        f"model: {results['forward_gflop_per_image']:.3f} GFLOP forward, {results['train_gflop_per_image']:.3f}"
        f" GFLOP per training image ({SIZE}x{SIZE}); batch {BATCH_SIZE}"
    )
    return results


def measure_bound(train_gflop_per_image: float, plan: Plan, gpus: int) -> dict:
    """Peak matmul speed in float32 and bfloat16 (and float16 on a GPU), and the training bound it sets."""
    results = {}
    dtypes = [("float32", "fp32"), ("bfloat16", "bf16")] + ([("float16", "fp16")] if gpus else [])
    for dtype_name, key in dtypes:
        gflops = matmul_gflops(dtype_name, plan.matmul_size, plan.repeats)
        bound = gflops / train_gflop_per_image
        results[f"matmul_{key}_gflops"], results[f"bound_{key}_images_per_s"] = gflops, bound
        print(f"matmul {dtype_name}: {gflops:.0f} GFLOP/s -> bound {bound:.1f} images/s")
    return results


def measure_training(data_dir: Path, plan: Plan, auto_precision: str, gpus: int) -> dict:
    """Training images/s in each precision, the naive loop and the input pipeline, taking turns epoch by epoch."""
    write_pairs(data_dir, plan.train_images)
    precisions = training_precisions(auto_precision, gpus)
    rates, rounds = interleaved(training_runners(data_dir, plan, precisions), plan.train_images, plan.repeats)
    for name, rate in rates.items():
        print(f"{name}: {rate:.1f} images/s")
    return training_results(rates, rounds, precisions)


def measure_upscaling(folder: Path, plan: Plan, set5: Path) -> dict:
    """Every runtime's upscaling speed and Set5 quality, a folder's photos/s, and upscale.py's peak memory."""
    model, config = load_for_inference(SHIPPED_WEIGHTS["clean"])
    runtimes, failed = build_runtimes(model, config, SHIPPED_WEIGHTS["clean"])
    default = resolve_runtime("auto")[0]
    if "keras" not in runtimes or default not in runtimes:
        raise RuntimeError(f"keras and the default runtime ({default}) must run to compare: {failed}")
    results = {"infer_failed_runtimes": failed} if failed else {}
    results |= runtime_speeds(runtimes, default, config, plan.infer_repeats)
    results |= ensemble_cost(runtimes[default].predict, config, plan.infer_repeats)
    results |= int8_speedups(runtimes, default, config, plan.infer_repeats)
    results |= runtime_quality(runtimes, config, set5)
    results |= folder_speeds(folder, runtimes["keras"], runtimes[default], config, plan.folder_repeats)
    results["infer_peak_rss_mb_4096"] = upscale_peak_rss_mb(folder)
    print(f"upscale.py 2048x2048 -> 4096x4096: peak RSS {results['infer_peak_rss_mb_4096']:.0f} MiB")
    return results


def measure_prep(folder: Path, plan: Plan) -> dict:
    """prep_images.py's images/s with 1 worker and with all cores."""
    one, everyone, cores = prep_rates(folder, plan.prep_photos)
    print(f"prep: {one:.1f} images/s with 1 worker, {everyone:.1f} with {cores}")
    return {"prep_images_per_s_1": one, "prep_images_per_s_all": everyone, "prep_workers_all": cores}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parts = set(args.only or PARTS)
    plan = QUICK if args.quick else FULL
    gpus = len(tf.config.list_physical_devices("GPU"))
    results = describe_setup(gpus)
    if "bound" in parts:
        results |= measure_bound(results["train_gflop_per_image"], plan, gpus)
    with tempfile.TemporaryDirectory(prefix="srcnn-bench-") as temporary:
        folder = Path(temporary)
        if "train" in parts:
            results |= measure_training(folder / "data", plan, results["auto_precision"], gpus)
        if "infer" in parts:
            results |= measure_upscaling(folder, plan, args.set5)
        if "prep" in parts:
            results |= measure_prep(folder, plan)
    print()
    print(format_ratios(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


# --- Report --------------------------------------------------------------------------------------


def format_ratios(results: dict) -> str:
    """The numbers that mean something on a shared machine: ratios measured in the same run."""
    rows = training_rows(results) + upscaling_rows(results) + prep_rows(results)
    return "\n".join(["| measure | value |", "|---|---|"] + [f"| {label} | {value} |" for label, value in rows])


def training_rows(results: dict) -> list[tuple[str, str]]:
    if "train_images_per_s" not in results:
        return []
    fastest = results["train_fastest_precision"]
    rows = [
        (f"training, fastest ({fastest}), images/s", f"{results['train_images_per_s']:.1f}"),
        ("training, float32, images/s", f"{results['train_fp32_images_per_s']:.1f}"),
        ("naive eager loop, float32, images/s", f"{results['naive_images_per_s']:.1f}"),
        ("fastest / naive (median of per-round ratios)", f"{results['fastest_over_naive']:.2f}x"),
        ("float32 fit / naive", f"{results['fp32_over_naive']:.2f}x"),
        ("input pipeline time / training step time", f"{100 * results['input_pipeline_share']:.1f}%"),
    ]
    if "reparam_over_plain" in results:
        rows.append(("reparam / plain, same precision (speed)", f"{results['reparam_over_plain']:.2f}x"))
    if "bound_fp32_images_per_s" in results:
        fp32_share = results["train_fp32_images_per_s"] / results["bound_fp32_images_per_s"]
        rows.append(("float32 fit / float32 bound", f"{100 * fp32_share:.0f}%"))
        bf16 = results.get("train_mixed_bfloat16_images_per_s")
        if bf16:
            rows.append(("bfloat16 fit / bfloat16 bound", f"{100 * bf16 / results['bound_bf16_images_per_s']:.0f}%"))
    return rows


def upscaling_rows(results: dict) -> list[tuple[str, str]]:
    """upscale()'s MP/s (the default runtime's, then each runtime's), the default / Keras float32, Set5 Y-PSNR
    (Keras float32's, then each other runtime's difference), the folder, upscale.py's peak memory."""
    if "infer_megapixels_per_s" not in results:
        return []
    rows = [("upscale 1024² -> 2048², output MP/s", f"{results['infer_megapixels_per_s']:.2f}")]
    names = [name for name in RUNTIMES if name != "auto"]
    for name in names:
        rate = results.get(f"infer_{runtime_key(name)}_megapixels_per_s")
        if rate is not None:
            rows.append((f"upscale 1024² -> 2048², {name}, output MP/s", f"{rate:.2f}"))
    if "infer_default_runtime" in results:
        ratio = results["infer_default_over_keras_fp32"]
        rows.append((f"upscale, default ({results['infer_default_runtime']}) / keras float32", f"{ratio:.2f}x"))
    for size in SIZES:
        ratio = results.get(f"infer_int8_over_default_{size}")
        if ratio is not None:
            rows.append((f"upscale {size[:-2]} MP output, onnxruntime-int8 / default", f"{ratio:.2f}x"))
    if "infer_keras_set5_psnr_y" in results:
        rows.append(("Set5 Y-PSNR, keras float32", f"{results['infer_keras_set5_psnr_y']:.3f} dB"))
    for name in (name for name in names if name != "keras"):
        delta = results.get(f"infer_{runtime_key(name)}_set5_delta_db")
        if delta is not None:
            rows.append((f"Set5 Y-PSNR, {name} - keras float32", f"{delta:+.3f} dB"))
    for name in names:
        white = results.get(f"infer_{runtime_key(name)}_white_kept_percent")
        if white is not None:
            black = results[f"infer_{runtime_key(name)}_black_kept_percent"]
            rows.append((f"pure white / black kept exactly, {name}", f"{white:.2f}% / {black:.2f}%"))
    if results.get("infer_failed_runtimes"):
        rows.append(("runtimes that failed here", ", ".join(sorted(results["infer_failed_runtimes"]))))
    rows += folder_rows(results)
    rows.append(("upscale.py 2048² -> 4096², peak RSS MiB", f"{results['infer_peak_rss_mb_4096']:.0f}"))
    return rows


def folder_rows(results: dict) -> list[tuple[str, str]]:
    if "folder_speedup" not in results:
        return []
    default = results.get("infer_default_runtime", "default")
    return [
        (f"folder, {FOLDER_PHOTOS} 800x600 JPEGs, one by one, keras float32, photos/s",
         f"{results['folder_sequential_keras_fp32_photos_per_s']:.2f}"),
        (f"folder, enlarge_all ({default}), photos/s", f"{results['folder_photos_per_s']:.2f}"),
        (f"folder, enlarge_all ({default}) / one by one keras float32", f"{results['folder_speedup']:.2f}x"),
    ]  # fmt: skip


def prep_rows(results: dict) -> list[tuple[str, str]]:
    if "prep_images_per_s_1" not in results:
        return []
    speedup = results["prep_images_per_s_all"] / results["prep_images_per_s_1"]
    return [(f"prep, {results['prep_workers_all']} workers / 1 worker", f"{speedup:.2f}x")]


if __name__ == "__main__":
    sys.exit(main())
