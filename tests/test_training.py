"""Training: the loss goes down, checkpoints round-trip, runs resume, mistakes are refused."""

from __future__ import annotations

import csv
import json
import os

import keras
import numpy as np
import pytest
from conftest import tiny_model_config
from PIL import Image

from srcnn.checkpoints import (
    BEST_WEIGHTS_NAME,
    CheckpointError,
    adam_of,
    load_for_inference,
    load_training_state,
    transfer_training_state,
)
from srcnn.config import ModelConfig, PrepConfig, TrainConfig
from srcnn.dataset import DataError, list_pairs, make_dataset
from srcnn.network import build_model, compile_model, initialize_near_identity
from srcnn.preparation import prepare_folder
from srcnn.training import train

TINY = ModelConfig(filters=6)


@pytest.fixture
def data_dir(photo_folder, tmp_path):
    """Prepared 24x24 pairs with a fixed split: 4 train, 1 val, 1 test."""
    data = tmp_path / "data"
    for index, path in enumerate(sorted(photo_folder.rglob("*.*"))):
        split = "test" if index == 0 else "val" if index == 1 else "train"
        (photo_folder / split).mkdir(exist_ok=True)
        path.rename(photo_folder / split / path.name)
    prepare_folder(photo_folder, data, PrepConfig(size=24), progress=False)
    return data


def run(data_dir, tmp_path, epochs, precision="float32", **kwargs):
    """A tiny run; float32 unless asked, so that results do not depend on the machine's CPU."""
    kwargs.setdefault("model_config", TINY)
    kwargs.setdefault("log", lambda message: None)
    return train(
        data_dir,
        tmp_path / "checkpoints",
        tmp_path / "results",
        TrainConfig(epochs=epochs, batch_size=2, learning_rate=1e-3, precision=precision),
        verbose=0,
        **kwargs,
    )


def test_dataset_batches_in_model_range(data_dir):
    pairs = list_pairs(data_dir, "train")
    assert len(pairs) == 4
    low_res, high_res = next(iter(make_dataset(pairs, batch_size=3, shuffle=True, seed=1)))
    assert low_res.shape == high_res.shape == (3, 24, 24, 3)
    assert -1 <= float(np.min(high_res)) and float(np.max(high_res)) <= 1


def test_a_few_steps_lower_the_loss(data_dir):
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(filters=8))
    compile_model(model, learning_rate=1e-3)
    dataset = make_dataset(list_pairs(data_dir, "train")[:2], batch_size=2, shuffle=False)
    before = model.evaluate(dataset, verbose=0)
    model.fit(dataset.repeat(30), verbose=0)
    after = model.evaluate(dataset, verbose=0)
    assert after < 0.5 * before


def test_save_and_load_give_identical_predictions(data_dir, tmp_path):
    result = run(data_dir, tmp_path, epochs=1)
    assert result.status == "finished"
    model, config = load_for_inference(tmp_path / "checkpoints" / BEST_WEIGHTS_NAME)
    assert config == TINY
    latest = load_training_state(tmp_path / "checkpoints")
    inputs = np.random.default_rng(0).uniform(-1, 1, (1, 20, 28, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict_on_batch(inputs), latest.predict_on_batch(inputs))


def test_resume_continues_at_the_next_epoch(data_dir, tmp_path):
    run(data_dir, tmp_path, epochs=1)
    first = load_training_state(tmp_path / "checkpoints")
    iterations_after_one = int(first.optimizer.iterations.numpy())
    assert iterations_after_one == 2  # 4 pairs in batches of 2

    messages = []
    result = train(
        data_dir,
        tmp_path / "checkpoints",
        tmp_path / "results",
        TrainConfig(epochs=3, batch_size=2),
        resume=True,
        verbose=0,
        log=messages.append,
    )
    assert result.status == "finished" and result.epochs_completed == 3
    assert any("resuming from epoch 1" in message for message in messages)
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 3
    resumed = load_training_state(tmp_path / "checkpoints")
    assert int(resumed.optimizer.iterations.numpy()) == 3 * iterations_after_one
    with open(tmp_path / "results" / "history.csv") as file:
        epochs = [int(row["epoch"]) for row in csv.DictReader(file)]
    assert epochs == [1, 2, 3]
    assert (tmp_path / "results" / "curves.png").stat().st_size > 0


def test_an_existing_run_is_not_overwritten_or_resumed_by_accident_and_bad_weights_are_clear(data_dir, tmp_path):
    """One trained run (each costs seconds) for the refusals that guard it."""
    run(data_dir, tmp_path, epochs=1)
    with pytest.raises(CheckpointError, match="--resume"):
        run(data_dir, tmp_path, epochs=1)
    with pytest.raises(CheckpointError, match="kernel_size=5"):
        run(data_dir, tmp_path, epochs=2, resume=True, model_config=ModelConfig(filters=6, kernel_size=5))
    assert run(data_dir, tmp_path, epochs=1, overwrite=True).status == "finished"
    weights = tmp_path / "checkpoints" / BEST_WEIGHTS_NAME
    weights.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot load"):
        load_for_inference(weights)


def test_missing_data_and_missing_checkpoint_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="prep_images.py"):
        run(tmp_path / "nothing", tmp_path, epochs=1)
    with pytest.raises(CheckpointError, match="train.py"):
        load_for_inference(tmp_path / "nowhere" / BEST_WEIGHTS_NAME)


def test_patches_are_aligned_crops_in_all_orientations(tmp_path):
    from conftest import gradient_image

    # Pairs whose low-res image is the high-res one: any misaligned crop or turn would differ.
    for kind in ("hr", "lr"):
        (tmp_path / "train" / kind).mkdir(parents=True)
        for index in range(3):
            gradient_image(30 + index, 26, seed=index).save(tmp_path / "train" / kind / f"{index}.png")
    pairs = list_pairs(tmp_path, "train")
    dataset = make_dataset(pairs, batch_size=4, shuffle=True, seed=0, patch_size=16, repeat=8, augment=True)
    batches = list(dataset)
    assert sum(int(low.shape[0]) for low, _ in batches) == 24
    for low_res, high_res in batches:
        assert low_res.shape[1:] == (16, 16, 3)
        np.testing.assert_array_equal(low_res.numpy(), high_res.numpy())
    # Red grows left to right in the source; turned and flipped crops must show other directions.
    directions = set()
    for _, high_res in batches:
        for patch in high_res.numpy():
            red = patch[..., 0]
            directions.add((np.sign(red[:, -1].mean() - red[:, 0].mean()), np.sign(red[-1].mean() - red[0].mean())))
    assert len(directions) >= 3
    assert Image.open(pairs[0][1]).size == (30, 26)


def test_diagonal_turns_keep_the_diagonals(tmp_path):
    pixels = np.random.default_rng(3).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    for kind in ("hr", "lr"):
        (tmp_path / "train" / kind).mkdir(parents=True)
        Image.fromarray(pixels).save(tmp_path / "train" / kind / "0.png")
    pairs = list_pairs(tmp_path, "train")

    def orientations(turns: str) -> set[str]:
        names = {}
        for turn in range(4):
            names[np.rot90(pixels, turn).tobytes()] = f"turn {turn}"
            names[np.rot90(pixels[:, ::-1], turn).tobytes()] = f"flip, turn {turn}"
        dataset = make_dataset(pairs, 1, shuffle=True, patch_size=12, repeat=64, augment=True, turns=turns)
        return {names[np.round((high[0].numpy() + 1) * 127.5).astype(np.uint8).tobytes()] for _, high in dataset}

    # As is, a half turn, and the mirrors across the main diagonal (flip then turn 1) and the other (turn 3).
    assert orientations("diagonal") == {"turn 0", "turn 2", "flip, turn 1", "flip, turn 3"}
    assert len(orientations("all")) == 8
    with pytest.raises(ValueError, match="turns"):
        TrainConfig(turns="some", augment=True, patch_size=8).validate()
    with pytest.raises(ValueError, match="needs augment"):
        TrainConfig(turns="diagonal").validate()
    with pytest.raises(ValueError, match="turns"):
        make_dataset(pairs, 1, shuffle=False, patch_size=12, augment=True, turns="some")
    # train.py's datasets take the setting from the config.
    import types

    from srcnn import training

    drawn = []
    real = training.make_dataset
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "make_dataset", lambda *args, **kwargs: drawn.append(kwargs) or real(*args, **kwargs))
        config = TrainConfig(turns="diagonal", augment=True, patch_size=12, batch_size=1)
        data = types.SimpleNamespace(train_pairs=pairs, val_pairs=pairs, val_sizes={(12, 12)})
        training.make_datasets(data, config, replicas=1, initial_epoch=0)
    assert drawn[0]["turns"] == "diagonal"


def test_crops_differ_each_epoch_and_repeat_with_the_seed(data_dir):
    pairs = list_pairs(data_dir, "train")[:1]  # one pair: shuffling cannot hide a repeated draw

    def epochs(dataset, count=2):
        return [np.concatenate([low.numpy() for low, _ in dataset]) for _ in range(count)]

    settings = dict(batch_size=4, shuffle=True, patch_size=8, repeat=4, augment=True, invert_chance=0.5)
    first, second = epochs(make_dataset(pairs, seed=5, **settings))
    assert not np.array_equal(first, second)
    again = epochs(make_dataset(pairs, seed=5, **settings), count=1)[0]
    np.testing.assert_array_equal(first, again)


def test_the_negative_of_a_pair_is_both_images_inverted(data_dir):
    pairs = list_pairs(data_dir, "train")
    plain = list(make_dataset(pairs, batch_size=1, shuffle=False))
    negative = list(make_dataset(pairs, batch_size=1, shuffle=False, invert_chance=1.0))
    for (low_res, high_res), (negative_low, negative_high) in zip(plain, negative, strict=True):
        np.testing.assert_allclose(negative_low.numpy(), -low_res.numpy(), atol=1e-6)  # 255 - x is -x in [-1, 1]
        np.testing.assert_allclose(negative_high.numpy(), -high_res.numpy(), atol=1e-6)
    half = make_dataset(pairs * 8, batch_size=1, shuffle=False, invert_chance=0.5)
    flipped = [
        bool(np.allclose(low.numpy(), -plain[index % len(plain)][0].numpy(), atol=1e-6))
        for index, (low, _) in enumerate(half)
    ]
    assert 0 < sum(flipped) < len(flipped)
    with pytest.raises(ValueError, match="invert chance"):
        TrainConfig(invert_chance=-0.1).validate()


def test_cosine_schedule_runs_from_the_rate_to_the_floor():
    config = TrainConfig(epochs=11, learning_rate=1e-3, min_learning_rate=1e-5, schedule="cosine")
    rates = [config.learning_rate_at(epoch) for epoch in range(11)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-5)
    assert rates[5] == pytest.approx((1e-3 + 1e-5) / 2)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert TrainConfig(learning_rate=2e-4).learning_rate_at(7) == 2e-4


def test_settings_merge_defaults_resumed_run_file_and_flags(data_dir, tmp_path):
    import train as train_script

    run(data_dir, tmp_path, epochs=1)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"batch_size": 3, "schedule": "cosine"}))
    args = train_script.build_parser().parse_args(["--resume", "--config", str(settings), "--epochs", "4"])
    config = train_script.train_config_from(args, tmp_path / "checkpoints")
    assert config.epochs == 4  # flag
    assert config.batch_size == 3 and config.schedule == "cosine"  # file
    assert config.learning_rate == 1e-3 and config.init == "near-identity"  # the resumed run's
    assert config.pure_margin == TrainConfig().pure_margin == 5.0  # recorded with the run
    record_path = tmp_path / "checkpoints" / "config.json"
    record = json.loads(record_path.read_text())
    assert config.invert_chance == TrainConfig().invert_chance == 0.25
    for key in ("pure_margin", "invert_chance"):  # a run recorded before these existed trained without them
        del record["train"][key]
    record_path.write_text(json.dumps(record))
    resumed = train_script.train_config_from(args, tmp_path / "checkpoints")
    assert resumed.pure_margin == resumed.invert_chance == 0.0
    (tmp_path / "luma.json").write_text(json.dumps({"select_on": "y"}))
    luma = train_script.build_parser().parse_args(["--resume", "--config", str(tmp_path / "luma.json")])
    with pytest.raises(ValueError, match="select_on cannot change"):  # state.json's best is an RGB PSNR
        train_script.train_config_from(luma, tmp_path / "checkpoints")
    given = train_script.build_parser().parse_args(
        ["--set", "pure_margin=0", "--set", "select_on=y", "--set", "model.filters=6"]
    )
    assert (
        train_script.train_config_from(given, tmp_path).pure_margin,
        train_script.model_config_from(given).filters,
    ) == (0, 6)
    for bad in ("loss_border=two", "val_images=x.txt", "no_equals_sign", "bogus=1"):
        with pytest.raises(ValueError):  # one line from main, never a traceback
            train_script.train_config_from(train_script.build_parser().parse_args(["--set", bad]), tmp_path)
    for research in ("--select-on", "--filters", "--reparam", "--pure-margin"):  # --config keys, not flags
        with pytest.raises(SystemExit):
            train_script.build_parser().parse_args([research, "1"])
    settings.write_text(json.dumps({"batch_sise": 3}))
    with pytest.raises(ValueError, match="batch_sise"):
        train_script.train_config_from(train_script.build_parser().parse_args(["--config", str(settings)]), tmp_path)


def test_validation_psnr_is_the_per_image_psnr_of_the_evaluation_metric(data_dir, tmp_path):
    """Validation images of two sizes; val_psnr (RGB) and val_psnr_y (luma, as the benchmarks) equal
    metrics.psnr on the float outputs, averaged; a run picked on luma (--select-on y) reports luma."""
    from conftest import gradient_image

    from srcnn.metrics import psnr, rgb_to_y

    for kind in ("hr", "lr"):
        gradient_image(30, 20, seed=kind == "lr").save(data_dir / "val" / kind / "odd_size.png")
    config = TrainConfig(epochs=1, batch_size=2, learning_rate=1e-3, precision="float32", select_on="y")
    result = train(data_dir, tmp_path / "run", tmp_path / "run", config, TINY, verbose=0, log=lambda line: None)
    model, _ = load_for_inference(tmp_path / "run" / BEST_WEIGHTS_NAME)
    rgb_values, luma_values = [], []
    for low_res, high_res in make_dataset(list_pairs(data_dir, "val"), batch_size=1, shuffle=False):
        predicted = model.predict_on_batch(low_res.numpy())
        rgb_values.append(psnr(high_res.numpy(), predicted, peak=2.0))  # [-1, 1]: the same as [0, 1] with peak 1
        as_pixels = [(np.asarray(image)[0] + 1.0) * 127.5 for image in (high_res, predicted)]  # unrounded
        luma_values.append(psnr(*(rgb_to_y(image) for image in as_pixels)))
    assert len(rgb_values) == 2
    assert result.best_val_psnr == pytest.approx(np.mean(luma_values), abs=1e-3)
    assert result.score_label == "Y-PSNR"  # train.py prints it beside the score
    history = list(csv.DictReader(open(tmp_path / "run" / "history.csv")))
    assert result.best_epoch == 1  # the epoch, not the start: its row in history.csv holds the kept weights' scores
    assert float(history[0]["val_psnr"]) == pytest.approx(np.mean(rgb_values), abs=1e-3)
    assert float(history[0]["val_psnr_y"]) == pytest.approx(np.mean(luma_values), abs=1e-3)


@pytest.mark.slow  # two runs: the slow suite keeps the default one under 90 s
def test_the_same_seed_gives_the_same_weights(data_dir, tmp_path):
    weights = []
    for folder in ("a", "b"):
        config = TrainConfig(epochs=2, batch_size=2, seed=3, precision="float32")
        train(data_dir, tmp_path / folder, tmp_path / folder, config, TINY, verbose=0, log=lambda line: None)
        weights.append(load_training_state(tmp_path / folder).get_weights())
    for first, second in zip(weights[0], weights[1], strict=True):
        np.testing.assert_array_equal(first, second)
    keras.utils.set_random_seed(3)  # and they trained: they are not the start any more
    start = build_model(TINY)
    initialize_near_identity(start, TINY)
    assert not np.allclose(start.get_weights()[0], weights[0][0])


def test_the_cosine_schedule_is_what_the_optimizer_used(data_dir, tmp_path):
    config = TrainConfig(epochs=4, batch_size=2, schedule="cosine", learning_rate=1e-3, min_learning_rate=1e-4)
    train(data_dir, tmp_path / "checkpoints", tmp_path / "results", config, TINY, verbose=0, log=lambda line: None)
    with open(tmp_path / "results" / "history.csv") as file:
        used = [float(row["learning_rate"]) for row in csv.DictReader(file)]
    assert used == pytest.approx([config.learning_rate_at(epoch) for epoch in range(4)], rel=1e-6)
    assert used[0] == pytest.approx(1e-3) and used[-1] == pytest.approx(1e-4)
    saved = load_training_state(tmp_path / "checkpoints")
    assert float(saved.optimizer.learning_rate.numpy()) == pytest.approx(1e-4, rel=1e-6)


def test_config_json_records_what_the_run_trained_and_validated_on(data_dir, photo_folder, tmp_path):
    run(data_dir, tmp_path, epochs=1)
    record = json.loads((tmp_path / "checkpoints" / "config.json").read_text())
    assert record["data"]["dir"] == str(data_dir.resolve())
    recipe = [{"background": "white", "mode": "blog", "scale": 2, "size": 24, "pairs": 4}]
    assert record["data"]["train"] == {"pairs": 4, "from": [str(photo_folder.resolve() / "train")], "prep": recipe}
    assert record["data"]["val"]["pairs"] == 1 and record["data"]["val"]["from"] == [str(photo_folder / "val")]
    assert record["data"]["val"]["names"] == [path.name for path in (data_dir / "val" / "hr").glob("*.png")]
    assert record["results_dir"] == str((tmp_path / "results").resolve())
    assert record["train"]["epochs"] == 1 and record["model"]["filters"] == 6


@pytest.mark.slow  # several training runs
def test_resume_alone_continues_in_the_runs_own_folders(data_dir, tmp_path, monkeypatch, capsys):
    import train as train_script

    elsewhere = tmp_path / "elsewhere"  # a working folder without data/ or results/
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run_dir, results = tmp_path / "run", tmp_path / "my results"
    common = ["--checkpoint-dir", str(run_dir), "--batch-size", "2", "--config", tiny_model_config(tmp_path), "--quiet"]
    assert train_script.main([*common, "--data", str(data_dir), "--results-dir", str(results), "--epochs", "1"]) == 0
    capsys.readouterr()
    assert train_script.main(["--resume", *common[:2], "--epochs", "2"]) == 0
    with open(results / "history.csv") as file:
        assert [int(row["epoch"]) for row in csv.DictReader(file)] == [1, 2]
    assert not (elsewhere / "results").exists()
    assert "4 training pairs" in capsys.readouterr().out  # the resumed run's own data
    # Given the recorded folder itself (relative to here), the run goes on; a gone one must be named.
    assert train_script.main(["--resume", *common[:2], "--epochs", "3", "--data", os.path.relpath(data_dir)]) == 0
    moved = tmp_path / "moved"
    data_dir.rename(moved)
    capsys.readouterr()
    assert train_script.main(["--resume", *common[:2], "--epochs", "4"]) == 2
    assert "is gone" in capsys.readouterr().err
    assert train_script.main(["--resume", *common[:2], "--epochs", "4", "--data", str(moved)]) == 0
    capsys.readouterr()
    other = tmp_path / "other data"
    other.mkdir()
    assert train_script.main(["--resume", *common[:2], "--epochs", "3", "--data", str(other)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "leave out --data" in error and str(moved.resolve()) in error


@pytest.mark.slow  # several training runs
def test_out_of_memory_is_one_line_and_keeps_the_checkpoint(data_dir, tmp_path, monkeypatch, capsys):
    import tensorflow as tf

    import train as train_script

    common = ["--data", str(data_dir), "--checkpoint-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path)]
    tiny = tiny_model_config(tmp_path)
    assert train_script.main([*common, "--epochs", "1", "--batch-size", "2", "--config", tiny, "--quiet"]) == 0
    saved = (tmp_path / "run" / BEST_WEIGHTS_NAME).read_bytes()

    def out_of_memory(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[100000,24,24,6]")

    monkeypatch.setattr(keras.Model, "fit", out_of_memory)
    capsys.readouterr()
    assert train_script.main(["--resume", *common[2:4], "--epochs", "3", "--batch-size", "100000"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "out of memory with --batch-size 100000" in error
    assert "epoch 1" in error and "--resume" in error and "--batch-size 25000" in error
    assert (tmp_path / "run" / BEST_WEIGHTS_NAME).read_bytes() == saved
    assert json.loads((tmp_path / "run" / "state.json").read_text())["epoch"] == 1
    # Out of memory before fit (scoring bicubic on the validation images) is the same one line.
    import srcnn.training

    monkeypatch.setattr(srcnn.training, "Validation", out_of_memory)
    assert train_script.main(["--resume", *common[2:4], "--epochs", "3"]) == 2
    assert "out of memory" in capsys.readouterr().err


def test_a_corrupt_training_state_says_so_and_what_is_left(data_dir, tmp_path):
    run(data_dir, tmp_path, epochs=1)
    (tmp_path / "checkpoints" / "latest.keras").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="corrupt") as caught:
        run(data_dir, tmp_path, epochs=2, resume=True)
    assert "best.weights.h5 (epoch 1" in str(caught.value) and "intact" in str(caught.value)


# --- Mixed precision ---


def test_bfloat16_run_trains_and_resumes_in_float32(data_dir, tmp_path):
    result = run(data_dir, tmp_path, epochs=2, precision="mixed_bfloat16")
    assert result.status == "finished" and np.isfinite(result.best_val_psnr)
    saved = load_training_state(tmp_path / "checkpoints")
    assert saved.get_layer("deconv1").compute_dtype == "bfloat16"
    # The best weights load into the plain float32 model that inference uses.
    model, _ = load_for_inference(tmp_path / "checkpoints" / BEST_WEIGHTS_NAME)
    assert type(model.get_layer("deconv1")) is keras.layers.Conv2DTranspose

    messages = []
    result = train(
        data_dir,
        tmp_path / "checkpoints",
        tmp_path / "results",
        TrainConfig(epochs=3, batch_size=2, precision="float32"),
        resume=True,
        verbose=0,
        log=messages.append,
    )
    assert result.status == "finished" and result.epochs_completed == 3
    assert any("precision: float32" in message for message in messages)
    resumed = load_training_state(tmp_path / "checkpoints")
    assert resumed.get_layer("deconv1").compute_dtype == "float32"
    assert int(resumed.optimizer.iterations.numpy()) == 3 * int(saved.optimizer.iterations.numpy()) // 2


def test_resume_carries_adams_state_across_precisions(data_dir, tmp_path):
    run(data_dir, tmp_path, epochs=1, precision="mixed_bfloat16")
    saved = load_training_state(tmp_path / "checkpoints")
    for precision in ("float32", "mixed_float16"):
        model = build_model(ModelConfig(filters=6), precision)
        compile_model(model, 1e-3, precision)
        transfer_training_state(saved, model)
        for before, after in zip(adam_of(saved).variables, adam_of(model).variables, strict=True):
            np.testing.assert_array_equal(np.asarray(before), np.asarray(after))
        for before, after in zip(saved.get_weights(), model.get_weights(), strict=True):
            np.testing.assert_array_equal(before, after)


@pytest.mark.slow  # the GPU's precision, run on the CPU: the slow suite keeps the default one under 90 s
def test_float16_uses_loss_scaling_and_trains(data_dir, tmp_path):
    result = run(data_dir, tmp_path, epochs=1, precision="mixed_float16")
    assert result.status == "finished" and np.isfinite(result.best_val_psnr)
    saved = load_training_state(tmp_path / "checkpoints")
    assert isinstance(saved.optimizer, keras.optimizers.LossScaleOptimizer)


@pytest.mark.slow  # as above; the multi-worker tests are there too
def test_mirrored_strategy_trains_with_fit(data_dir, tmp_path):
    messages = []
    run(data_dir, tmp_path, epochs=4, strategy="mirrored", log=messages.append)
    assert any("MirroredStrategy" in message and "replicas: 1" in message for message in messages)
    with open(tmp_path / "results" / "history.csv") as file:
        losses = [float(row["loss"]) for row in csv.DictReader(file)]
    assert len(losses) == 4 and losses[-1] < 0.8 * losses[0]


def test_a_backup_killed_mid_write_falls_back_to_the_epoch_before(tmp_path):
    from srcnn.training import backup_epoch

    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "training_metadata.json.bkp").write_text('{"epoch": 4, "batch": 0}')
    (backup / "training_metadata.json").write_text('{"epoch": 5, "batch": 0}')
    build_model(TINY).save_weights(backup / "latest.weights.h5")
    assert backup_epoch(backup) == 5
    (backup / "latest.weights.h5").write_bytes((backup / "latest.weights.h5").read_bytes()[:900])  # cut short
    assert backup_epoch(backup) == 4
    assert backup_epoch(None) is None and backup_epoch(tmp_path / "none") is None


@pytest.mark.slow  # test.py writes a comparison for each test pair: the fast suite keeps its 90 s
def test_test_py_on_a_named_run_uses_its_own_data_and_results(data_dir, tmp_path, run_main):
    run(data_dir, tmp_path, epochs=1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_main("test.py", "--checkpoint-dir", str(tmp_path / "checkpoints"), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") >= 4 and "RGB PSNR" in result.stdout
    assert (tmp_path / "results" / "metrics.csv").is_file() and not (elsewhere / "results").exists()


def test_a_validation_image_that_is_also_trained_on_is_refused(data_dir, tmp_path):
    import shutil

    train_pair = list_pairs(data_dir, "train")[0]
    for kind, path in zip(("lr", "hr"), train_pair, strict=True):
        shutil.copy(path, data_dir / "val" / kind / "copy.png")
    with pytest.raises(DataError, match="must not be trained on"):
        run(data_dir, tmp_path, epochs=1)


def test_the_config_names_its_validation_images(photo_folder, tmp_path, run_main):
    names = tmp_path / "val.txt"
    names.write_text("# held out\nphoto 1.png\nphoto 4.png\n")
    prep = ("--input", str(photo_folder), "--output", "data", "--size", "24", "--val-names", str(names))
    result = run_main("prep_images.py", *prep, "--val-fraction", "0", "--test-fraction", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    held_out = sorted(path.name for path in (tmp_path / "data" / "val" / "hr").iterdir())
    assert held_out == ["photo 4_png.png", "trip__photo 1_png.png"]  # photo 1 is in trip/, photo 4 is not
    settings = {"epochs": 1, "batch_size": 2, "precision": "float32"}
    named = TrainConfig(**settings, val_images=("photo 1.png", "photo 4.png"))
    result = train(tmp_path / "data", tmp_path / "a", tmp_path / "a", named, TINY, verbose=0, log=lambda line: None)
    assert result.status == "finished"
    other = TrainConfig(**settings, val_images=("photo 1.png", "photo 2.png"))
    with pytest.raises(DataError, match="not the validation images the config names"):
        train(tmp_path / "data", tmp_path / "b", tmp_path / "b", other, TINY, verbose=0, log=lambda line: None)


@pytest.mark.parametrize("reparam", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_a_run_can_start_from_trained_weights(data_dir, tmp_path, reparam):
    from conftest import save_tiny_checkpoint

    source = save_tiny_checkpoint(tmp_path / "source", filters=6, seed=5)
    config = TrainConfig(epochs=1, batch_size=2, learning_rate=1e-9, start_from=str(source), reparam=reparam)
    train(data_dir, tmp_path / "run", tmp_path / "run", config, verbose=0, log=lambda line: None)
    started, loaded_config = load_for_inference(tmp_path / "run" / BEST_WEIGHTS_NAME)
    original, _ = load_for_inference(source)
    assert loaded_config == TINY  # taken from the source checkpoint
    for mine, theirs in zip(started.get_weights(), original.get_weights(), strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-5)  # a step of 1e-9: the start, kept
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["train"]["start_from"] == str(source)
    assert load_training_state(tmp_path / "run").optimizer.iterations.numpy() == 2  # a fresh optimizer


def test_by_default_a_run_fine_tunes_the_shipped_model_at_a_gentler_rate(data_dir, tmp_path, monkeypatch):
    from conftest import save_tiny_checkpoint

    from srcnn import checkpoints

    shipped = save_tiny_checkpoint(tmp_path / "shipped", filters=6, seed=5)
    monkeypatch.setitem(checkpoints.SHIPPED_WEIGHTS, "clean", shipped)
    defaults = TrainConfig(epochs=1, batch_size=2, precision="float32")  # init pretrained, learning rate by the start
    lines = []
    train(data_dir, tmp_path / "a", tmp_path / "a", defaults, verbose=0, log=lines.append)
    record = json.loads((tmp_path / "a" / "config.json").read_text())
    assert (record["train"]["init"], record["train"]["learning_rate"]) == ("pretrained", 1e-4)
    assert record["model"] == TINY.to_dict()  # the shipped model's own network
    assert any(line.startswith(f"init: pretrained, {shipped}") for line in lines)

    lines = []  # another network cannot take the shipped weights: it starts from scratch, and says so
    other = ModelConfig(filters=8)
    train(data_dir, tmp_path / "b", tmp_path / "b", defaults, other, verbose=0, log=lines.append)
    record = json.loads((tmp_path / "b" / "config.json").read_text())
    assert (record["train"]["init"], record["train"]["learning_rate"]) == ("near-identity", 1e-3)
    assert any(line.startswith("init: near-identity, since the shipped model is another network") for line in lines)

    # Resumed with the defaults again, run b goes on as it started: from scratch, at 1e-3.
    resumed = TrainConfig(epochs=2, batch_size=2, precision="float32")
    train(data_dir, tmp_path / "b", tmp_path / "b", resumed, other, resume=True, verbose=0, log=lambda line: None)
    record = json.loads((tmp_path / "b" / "config.json").read_text())
    assert (record["train"]["init"], record["train"]["learning_rate"]) == ("near-identity", 1e-3)
    assert float(
        keras.ops.convert_to_numpy(load_training_state(tmp_path / "b").optimizer.learning_rate)
    ) == pytest.approx(1e-3)


def test_the_start_counts_as_epoch_zero_so_a_run_never_ends_worse_than_it_began(data_dir, tmp_path):
    from conftest import save_tiny_checkpoint

    source = save_tiny_checkpoint(tmp_path / "source", filters=6, seed=5)
    config = TrainConfig(epochs=2, batch_size=2, learning_rate=0.5, start_from=str(source), precision="float32")
    result = train(data_dir, tmp_path / "run", tmp_path / "run", config, verbose=0, log=lambda line: None)
    assert result.best_epoch == 0  # a step of 0.5 only made it worse
    kept, _ = load_for_inference(tmp_path / "run" / BEST_WEIGHTS_NAME)
    original, _ = load_for_inference(source)
    for mine, theirs in zip(kept.get_weights(), original.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_the_loss_settings_are_recorded_and_saved_with_the_training_state(data_dir, tmp_path):
    config = TrainConfig(
        epochs=1,
        batch_size=2,
        patch_size=8,
        learning_rate=1e-3,
        init="near-identity",
        loss="l1",
        loss_border=2,
        luma_weight=0.5,
    )
    train(data_dir, tmp_path / "run", tmp_path / "run", config, TINY, verbose=0, log=lambda line: None)
    loss = load_training_state(tmp_path / "run").loss  # what --resume reads back, with the default pure margin
    assert (loss.kind, loss.border, loss.pure_margin, loss.luma_weight) == ("l1", 2, 5.0, 0.5)
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert (recorded["loss"], recorded["loss_border"]) == ("l1", 2)


def test_loss_settings_are_checked():
    with pytest.raises(ValueError, match="loss border 4 leaves nothing"):
        TrainConfig(patch_size=8, loss_border=4).validate()
    for margin in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="pure margin"):
            TrainConfig(pure_margin=margin).validate()
    for weight in (-0.1, 1.5):
        with pytest.raises(ValueError, match="luma weight"):
            TrainConfig(luma_weight=weight).validate()


def test_every_shipped_config_is_valid_and_validates_on_the_held_out_images():
    """configs/*.json load as train.py --config reads them; those that name validation images name
    the 20 of configs/bsd200-val.txt, by naming that file (Set5 never picks a checkpoint)."""
    from conftest import ROOT

    from srcnn.config import read_settings_file
    from srcnn.files import read_names

    held_out = read_names(ROOT / "configs" / "bsd200-val.txt")
    configs = sorted((ROOT / "configs").glob("*.json"))
    assert len(configs) >= 2 and len(held_out) == 20
    for path in configs:
        config = TrainConfig.from_dict(read_settings_file(path))
        config.validate()
        if config.val_images:
            assert sorted(config.val_images) == sorted(held_out), path.name
            assert json.loads(path.read_text())["val_images"] == "bsd200-val.txt", path.name  # one list, one file


def test_a_config_names_its_validation_list_by_file(tmp_path):
    from srcnn.config import read_settings_file

    (tmp_path / "held-out.txt").write_text("# two photos\na.png\n\nb.png  # the second\n")
    (tmp_path / "run.json").write_text(json.dumps({"epochs": 3, "val_images": "held-out.txt"}))
    assert read_settings_file(tmp_path / "run.json") == {"epochs": 3, "val_images": ("a.png", "b.png")}
    (tmp_path / "bad.json").write_text(json.dumps({"val_images": "missing.txt"}))
    with pytest.raises(ValueError, match="bad.json: cannot read"):
        read_settings_file(tmp_path / "bad.json")


def test_errors_say_what_to_run_next(tmp_path, run_main):
    """Raw photos given as --data, a --resume of a run stopped before its first epoch ended, and a
    test of a run folder not trained yet: each error names the command that fixes it."""
    from conftest import gradient_image

    photos = tmp_path / "my photos"
    photos.mkdir()
    gradient_image(30, 20).save(photos / "a.png")
    raw = run_main("train.py", "--data", str(photos), "--epochs", "1", cwd=tmp_path)
    assert raw.returncode == 2 and f"--input '{photos}' --output data" in raw.stderr

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"data": {"dir": str(photos)}, "results_dir": str(tmp_path)}))
    early = run_main("train.py", "--resume", "--checkpoint-dir", str(run_dir), cwd=tmp_path)
    assert early.returncode == 2 and "before its first epoch ended" in early.stderr
    assert f"--data '{photos}' --checkpoint-dir {run_dir} --overwrite" in early.stderr

    untrained = run_main("test.py", "--checkpoint-dir", "new-run", cwd=tmp_path)
    assert untrained.returncode == 2 and "python train.py --checkpoint-dir new-run" in untrained.stderr


def test_the_curves_start_at_epoch_zero_also_after_a_resume(data_dir, tmp_path, monkeypatch):
    """The start's validation scores (what every epoch is measured against, and the best when no
    epoch beats it) are plotted as epoch 0; a resumed run still plots them."""
    from srcnn import callbacks

    plotted = []
    monkeypatch.setattr(
        callbacks, "plot_history", lambda rows, path: plotted.append([int(row["epoch"]) for row in rows])
    )
    run(data_dir, tmp_path, epochs=1)
    start = json.loads((tmp_path / "results" / "start.json").read_text())
    assert {"val_psnr", "val_psnr_y", "val_bicubic_psnr"} <= set(start)
    assert plotted[-1] == [0, 1]
    run(data_dir, tmp_path, epochs=2, resume=True)
    assert plotted[-1] == [0, 1, 2]
    with open(tmp_path / "results" / "history.csv") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["1", "2"]  # the log itself: epochs trained
