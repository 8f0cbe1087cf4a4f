"""The blog's network on any Keras backend and device, TensorFlow not needed: a GPU check.

    KERAS_BACKEND=jax python -m benchmarks.keras_backend [--train DIR ... --set5 DIR] [--json FILE]
    KERAS_BACKEND=jax python -m benchmarks.keras_backend --no-speed --config configs/clean-291.json \
        --train ../shared/data/T91 --train ../shared/data/BSD200 --set5 ../shared/data/Set5 --runs 1000:reparam \
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

from srcnn.checkpoints import BEST_WEIGHTS_NAME, write_run_record
from srcnn.config import ModelConfig, TrainConfig
from srcnn.images import IMAGE_SUFFIXES, load_rgb, make_whole_pair
from srcnn.metrics import benchmark_metrics
from srcnn.network import build_model, compile_model, from_model_range, initialize_near_identity, to_model_range
from srcnn.reparam import build_training_model, collapse, initialize_training_model

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


def epoch_crops(pairs: list, repeat: int, patch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`repeat` random crops per pair, the same window in both images, each in one of the eight
    flips and quarter turns (dataset.make_dataset's augmentation), shuffled."""
    low, high = [], []
    for _ in range(repeat):
        for low_res, high_res in pairs:
            top = rng.integers(0, low_res.shape[0] - patch_size + 1)
            left = rng.integers(0, low_res.shape[1] - patch_size + 1)
            rows, columns = slice(top, top + patch_size), slice(left, left + patch_size)
            low.append(low_res[rows, columns])  # the crop only: copying whole images made this 7x slower
            high.append(high_res[rows, columns])
    low, high = np.stack(low), np.stack(high)
    flips, turns = rng.integers(2, size=len(low)), rng.integers(4, size=len(low))
    for flip in (0, 1):  # the eight orientations, each applied to its crops at once
        for turn in range(4):
            chosen = (flips == flip) & (turns == turn)
            for crops in (low, high):
                part = crops[chosen][:, :, ::-1] if flip else crops[chosen]
                crops[chosen] = np.rot90(part, k=turn, axes=(1, 2))
    order = rng.permutation(len(low))
    return to_model_range(low[order]), to_model_range(high[order])


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


def recipe_run(
    train_pairs: list,
    set5_pairs: list,
    config: TrainConfig,
    precision: str,
    val_pairs: list | None = None,
    start_from: Path | None = None,
    save_dir: Path | None = None,
    val_every: int = 5,
) -> dict:
    """config's recipe, trained on NumPy crops for config.epochs; Set5 of the epoch picked on
    val_pairs' Y-PSNR (every val_every epochs and the last), or of the last epoch without them."""
    model_config = ModelConfig()
    keras.utils.set_random_seed(config.seed)
    if start_from is None:
        start = initialize_near_identity
    else:

        def start(plain: keras.Model, _: ModelConfig) -> None:
            plain.load_weights(start_from)

    if config.reparam:
        model = build_training_model(model_config, precision)
        initialize_training_model(model, model_config, start)
    else:
        model = build_model(model_config, precision)
        start(model, model_config)
    compile_model(
        model,
        config.learning_rate,
        precision,
        jit=True,
        loss=config.loss,
        loss_border=config.loss_border,
        pure_margin=config.pure_margin,
        luma_weight=config.luma_weight,
    )
    rng = np.random.default_rng(config.seed)
    schedule = keras.callbacks.LearningRateScheduler(config.learning_rate_at)
    history, best, picked_epoch = [], -np.inf, None
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        data = {"backend": keras.backend.backend(), "train_images": len(train_pairs), "val_images": config.val_images}
        write_run_record(save_dir, model_config, config, data, save_dir)
    start_time = time.perf_counter()
    # The next epoch's crops are cut on a second thread while this one trains (NumPy and the
    # backend both release the GIL); one thread draws from rng in turn, so a seed repeats a run.
    with ThreadPoolExecutor(max_workers=1) as cutter:
        upcoming = cutter.submit(epoch_crops, train_pairs, config.repeat, config.patch_size, rng)
        for epoch in range(1, config.epochs + 1):
            low, high = upcoming.result()
            if epoch < config.epochs:
                upcoming = cutter.submit(epoch_crops, train_pairs, config.repeat, config.patch_size, rng)
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
                plain = plain_network(model, model_config, config.reparam)
                score = set5_scores(plain, val_pairs)["psnr_y"]
                history.append({"epoch": epoch, "loss": float(fitted.history["loss"][-1]), "val_psnr_y": score})
                print(f"  epoch {epoch}: loss {history[-1]['loss']:.5f}, held-out Y-PSNR {score:.3f}", flush=True)
                if score > best:
                    best, picked_epoch, picked = score, epoch, plain
                    if save_dir is not None:  # at once: a run cut off by a time limit keeps its best so far
                        picked.save_weights(save_dir / BEST_WEIGHTS_NAME)
                if save_dir is not None:
                    (save_dir / "history.json").write_text(json.dumps({"history": history}, indent=1))
    seconds = time.perf_counter() - start_time
    if picked_epoch is None:  # no held-out images: the last epoch
        picked_epoch, picked = config.epochs, plain_network(model, model_config, config.reparam)
        if save_dir is not None:
            picked.save_weights(save_dir / BEST_WEIGHTS_NAME)
    result = {
        "epochs": config.epochs,
        "reparam": config.reparam,
        "seconds": seconds,
        "picked_epoch": picked_epoch,
        **({"val_psnr_y": best} if history else {}),
        **set5_scores(picked, set5_pairs),
    }
    if save_dir is not None:
        (save_dir / "history.json").write_text(json.dumps({"result": result, "history": history}, indent=1))
    return result


def plain_network(model: keras.Model, model_config: ModelConfig, reparam: bool) -> keras.Model:
    """The float32 blog network computing what the training model does now."""
    if reparam:
        return collapse(model, model_config)
    plain = build_model(model_config)
    plain.set_weights([np.asarray(weight, np.float32) for weight in model.get_weights()])
    return plain


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--train", type=Path, action="append", help="training image folder (repeat for more): run the recipe"
    )
    parser.add_argument("--set5", type=Path, help="Set5 folder (with --train)")
    parser.add_argument("--config", type=Path, default=CONFIGS / "t91.json", help="the recipe's training settings")
    parser.add_argument("--start-from", type=Path, help="plain-network weights to start from (.weights.h5)")
    parser.add_argument("--val-every", type=int, default=5, help="epochs between held-out scores")
    parser.add_argument("--save", type=Path, help="write each run's picked network into this folder")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed table (recipe runs only)")
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
        recipe = TrainConfig.from_dict(json.loads(args.config.read_text(encoding="utf-8")))
        held_out = set(recipe.val_images)
        paths = image_paths(args.train)
        train_pairs = load_pairs([path for path in paths if path.name not in held_out])
        val_pairs = load_pairs([path for path in paths if path.name in held_out])
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
                train_pairs, set5_pairs, config, args.precision, val_pairs, args.start_from, save_dir, args.val_every
            )
            report["recipe"].append({**result, "precision": args.precision, "run": run, "config": args.config.name})
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
