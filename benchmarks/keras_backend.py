"""The blog's network on any Keras backend and device, TensorFlow not needed: a GPU check.

    KERAS_BACKEND=jax python -m benchmarks.keras_backend [--train DIR ... --set5 DIR] [--json FILE]
    KERAS_BACKEND=jax python -m benchmarks.keras_backend --no-speed --config configs/clean-291.json \
        --train ../shared/data/T91 --train ../shared/data/BSD200 --set5 ../shared/data/Set5 --runs 1500:reparam \
        --save checkpoints/gpu-291

For a GPU machine where TensorFlow's own GPU build cannot be installed (its wheel alone is 573 MB
and wants CUDA 12 libraries): Keras 3 runs the same layers on JAX or PyTorch. Two parts:

- speed: training crops/s of the plain and the re-parameterized network in float32,
  mixed_float16 and mixed_bfloat16 (XLA-compiled steps), and inference megapixels/s.
- recipe: a training config's recipe (default configs/t91.json: random crops with flips and
  quarter turns, per-epoch cosine schedule, near-identity start or --start-from, Adam, its loss)
  rebuilt on NumPy instead of tf.data, trained for the epochs asked, then Set5 scored with test.py
  --benchmark's protocol. A config that names `val_images` keeps them out of the --train folders
  and picks the epoch with the best held-out Y-PSNR (same protocol); without, the *last* epoch is
  scored. Nothing is picked on Set5. No new run starts past --budget seconds. With --save, the
  picked network is written as train.py writes one (best.weights.h5 of the plain blog network,
  config.json, and history.json here): test.py --checkpoint and train.py --start-from read it.

It reuses the package's Keras-only modules (network, reparam, config, images, metrics); train.py
itself needs TensorFlow (tf.data, tf.distribute).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

from srcnn.checkpoints import BEST_WEIGHTS_NAME, weights_of, write_run_record
from srcnn.config import ModelConfig, TrainConfig, read_settings_file
from srcnn.files import write_atomic, write_text_atomic
from srcnn.images import IMAGE_SUFFIXES, load_rgb, make_whole_pair
from srcnn.metrics import benchmark_metrics
from srcnn.network import build_model, compile_model, from_model_range, initialize_near_identity, to_model_range
from srcnn.reparam import build_training_model, collapse, compiled_training_model, initialize_training_model

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


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


def image_paths(folders: list[Path]) -> list[Path]:
    """The images of the folders, in name order within each."""
    return [path for folder in folders for path in sorted(folder.iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES]


def load_pairs(paths: list[Path], scale: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    """(low_res, high_res) uint8 arrays of each image, made as prep_images.py --whole does."""
    return [tuple(np.asarray(image) for image in make_whole_pair(load_rgb(path), scale)) for path in paths]


def epoch_crops(
    pairs: list, repeat: int, patch_size: int, rng: np.random.Generator, augment: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """`repeat` random crops per pair, the same window in both images, each in one of the eight
    flips and quarter turns with `augment` (dataset.make_dataset's augmentation), shuffled."""
    low, high = [], []
    for _ in range(repeat):
        for low_res, high_res in pairs:
            top = rng.integers(0, low_res.shape[0] - patch_size + 1)
            left = rng.integers(0, low_res.shape[1] - patch_size + 1)
            rows, columns = slice(top, top + patch_size), slice(left, left + patch_size)
            low.append(low_res[rows, columns])  # the crop only: copying whole images made this 7x slower
            high.append(high_res[rows, columns])
    low, high = np.stack(low), np.stack(high)
    if augment:
        flips, turns = rng.integers(2, size=len(low)), rng.integers(4, size=len(low))
        low, high = orient(low, flips, turns), orient(high, flips, turns)
    order = rng.permutation(len(low))
    return to_model_range(low[order]), to_model_range(high[order])


def orient(crops: np.ndarray, flips: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """Each (n, side, side, c) crop flipped left-right where flips is 1, then turned a quarter
    `turns` times: eight groups at once rather than n crops one by one."""
    oriented = crops.copy()
    for flip in (0, 1):
        for turn in range(4):
            chosen = (flips == flip) & (turns == turn)
            part = crops[chosen][:, :, ::-1] if flip else crops[chosen]
            oriented[chosen] = np.rot90(part, k=turn, axes=(1, 2))
    return oriented


def benchmark_scores(model: keras.Model, pairs: list) -> dict[str, float]:
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


def check_recipe(config: TrainConfig) -> None:
    """Refuse the settings this runner does not implement, rather than train without them."""
    config.validate()
    if config.patch_size == 0:
        raise ValueError("the GPU runner trains on random crops: the config needs a patch_size")
    if config.invert_chance:
        raise ValueError("the GPU runner draws no negatives: set invert_chance to 0 in the config")
    if not config.start_from and config.init != "near-identity":
        raise ValueError(f"the GPU runner starts from near-identity or start_from weights, not init {config.init!r}")


def recipe_run(
    train_pairs: list,
    set5_pairs: list,
    config: TrainConfig,
    precision: str,
    val_pairs: list | None = None,
    save_dir: Path | None = None,
    val_every: int = 5,
) -> dict:
    """config's recipe, trained on NumPy crops for config.epochs, from config.start_from when it
    names weights; Set5 of the network picked on val_pairs' Y-PSNR (the start, when it is trained
    weights, every val_every epochs, and the last), or of the last epoch without val_pairs."""
    check_recipe(config)
    model_config = ModelConfig()
    # As train.py's new runs (training.new_run): the start, then the seed, the compiled network, the start in it.
    start, model_config = (
        weights_of(config.start_from, None) if config.start_from else (initialize_near_identity, model_config)
    )
    keras.utils.set_random_seed(config.seed)
    model = compiled_training_model(model_config, config, precision, jit=True)
    if config.reparam:
        initialize_training_model(model, model_config, start)
    else:
        start(model, model_config)
    plain = build_model(model_config)  # one float32 network to score: a new one would compile again
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        data = {"backend": keras.backend.backend(), "train_images": len(train_pairs), "val_images": config.val_images}
        write_run_record(save_dir, model_config, config, data, save_dir)
    history, best = [], {"epoch": None, "val_psnr_y": -np.inf, "weights": None}

    def score(epoch: int, loss: float | None) -> None:
        to_plain(model, model_config, config.reparam, plain)
        value = benchmark_scores(plain, val_pairs)["psnr_y"]
        history.append({"epoch": epoch, "loss": loss, "val_psnr_y": value})
        print(f"  epoch {epoch}: loss {loss}, held-out Y-PSNR {value:.3f}", flush=True)
        if value > best["val_psnr_y"]:  # NaN never is
            best.update(epoch=epoch, val_psnr_y=value, weights=plain.get_weights())
            if save_dir is not None:  # at once: a run cut off by a time limit keeps its best so far
                write_atomic(save_dir / BEST_WEIGHTS_NAME, plain.save_weights)
        if save_dir is not None:
            write_text_atomic(save_dir / "history.json", json.dumps({"history": history}, indent=1))

    if val_pairs and config.start_from:  # as train.py: a fine-tune never ends worse than its start
        score(0, None)
    rng = np.random.default_rng(config.seed)
    schedule = keras.callbacks.LearningRateScheduler(config.learning_rate_at)
    started = time.perf_counter()
    # The next epoch's crops are cut on a second thread while this one trains (NumPy and the
    # backend both release the GIL); one thread draws from rng in turn, so a seed repeats a run.
    with ThreadPoolExecutor(max_workers=1) as cutter:

        def cut():
            return cutter.submit(epoch_crops, train_pairs, config.repeat, config.patch_size, rng, config.augment)

        upcoming = cut()
        for epoch in range(1, config.epochs + 1):
            low, high = upcoming.result()
            if epoch < config.epochs:
                upcoming = cut()
            fitted = model.fit(
                low,
                high,
                batch_size=config.batch_size,
                initial_epoch=epoch - 1,
                epochs=epoch,
                verbose=0,
                callbacks=[schedule],
            )
            if val_pairs and (epoch % val_every == 0 or epoch == config.epochs):
                score(epoch, float(fitted.history["loss"][-1]))
    seconds = time.perf_counter() - started
    if best["weights"] is None:  # no held-out images (or only NaN scores): the last epoch
        to_plain(model, model_config, config.reparam, plain)
        best.update(epoch=config.epochs, weights=plain.get_weights())
        if save_dir is not None:
            write_atomic(save_dir / BEST_WEIGHTS_NAME, plain.save_weights)
    plain.set_weights(best["weights"])
    result = {"epochs": config.epochs, "reparam": config.reparam, "seconds": seconds, "picked_epoch": best["epoch"]}
    if np.isfinite(best["val_psnr_y"]):
        result["val_psnr_y"] = best["val_psnr_y"]
    result |= benchmark_scores(plain, set5_pairs)
    if save_dir is not None:
        write_text_atomic(save_dir / "history.json", json.dumps({"result": result, "history": history}, indent=1))
    return result


def to_plain(model: keras.Model, model_config: ModelConfig, reparam: bool, plain: keras.Model) -> None:
    """Put into `plain` (the float32 blog network) what the training model computes now."""
    if reparam:
        collapse(model, model_config, into=plain)
    else:
        plain.set_weights([np.asarray(weight, np.float32) for weight in model.get_weights()])


def held_out_split(paths: list[Path], names: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    """(training images, held-out images) of paths, by file name; every name must be found once."""
    held_out = [path for path in paths if path.name in set(names)]
    found = sorted(path.name for path in held_out)
    if found != sorted(names):
        missing = sorted(set(names) - set(found)) or sorted({name for name in found if found.count(name) > 1})
        raise ValueError(f"the config's val_images must each be in the --train folders once: {missing[:5]}")
    return [path for path in paths if path.name not in set(names)], held_out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--train",
        type=Path,
        action="append",
        help="folder of whole training images, made into pairs as prep_images.py --whole does (repeat for more)",
    )
    parser.add_argument("--set5", type=Path, help="Set5 folder (with --train)")
    parser.add_argument(
        "--config",
        type=Path,
        default=CONFIGS / "t91.json",
        help="the recipe's training settings (default: configs/t91.json)",
    )
    parser.add_argument("--start-from", type=Path, help="plain-network weights to start from (else the config's)")
    parser.add_argument("--val-every", type=positive, default=5, help="epochs between held-out scores (default: 5)")
    parser.add_argument(
        "--save", type=Path, help="write the picked network into this folder (one subfolder per run with several)"
    )
    parser.add_argument("--no-speed", action="store_true", help="skip the speed table (recipe runs only)")
    parser.add_argument(
        "--runs",
        default="140:plain,140:reparam",
        help="EPOCHS:plain|reparam, comma-separated: each run's epochs and form, in place of the config's"
        " (default: %(default)s)",
    )
    parser.add_argument(
        "--precision", default="mixed_float16", choices=PRECISIONS, help="for the recipe runs (default: %(default)s)"
    )
    parser.add_argument(
        "--budget", type=float, default=300, help="seconds after which no new recipe run starts (default: %(default)s)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke test on a CPU)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    if bool(args.train) != bool(args.set5):
        parser.error("--train and --set5 go together (a recipe run trains, then scores Set5)")

    report = {"backend": keras.backend.backend(), "machine": platform.machine(), "devices": devices()}
    print(json.dumps(report), flush=True)
    steps = 4 if args.quick else 60
    speed = []
    for precision in () if args.no_speed else PRECISIONS:
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

    if args.train and args.set5:
        recipe = TrainConfig.from_dict(read_settings_file(args.config))
        if args.start_from is not None:
            recipe = replace(recipe, start_from=str(args.start_from))
        check_recipe(recipe)
        train_paths, val_paths = held_out_split(image_paths(args.train), recipe.val_images)
        train_pairs, val_pairs = load_pairs(train_paths), load_pairs(val_paths)
        set5_pairs = load_pairs(image_paths([args.set5]))
        print(f"{len(train_pairs)} training images, {len(val_pairs)} held out", flush=True)
        report["recipe"], started = [], time.perf_counter()
        runs = args.runs.split(",")
        for run in runs:
            if time.perf_counter() - started > args.budget:
                print(f"skipped {run}: past --budget", flush=True)
                continue
            epochs, kind = run.split(":")
            config = replace(recipe, epochs=int(epochs), reparam=kind == "reparam")
            save_dir = args.save
            if save_dir is not None and len(runs) > 1:
                save_dir = save_dir / run.replace(":", "-")
            result = recipe_run(
                train_pairs,
                set5_pairs,
                config,
                args.precision,
                val_pairs=val_pairs,
                save_dir=save_dir,
                val_every=args.val_every,
            )
            report["recipe"].append({**result, "precision": args.precision, "run": run, "config": args.config.name})
            print(f"recipe {run}: {json.dumps(report['recipe'][-1])}", flush=True)
            if args.json:  # after each run: a cut-off call keeps what finished
                args.json.write_text(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


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
