"""benchmarks/keras_backend.py's recipe runner, small (TensorFlow's backend here; JAX on a GPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import gradient_image

from benchmarks import keras_backend
from srcnn.checkpoints import load_for_inference
from srcnn.config import TrainConfig


def test_crops_are_oriented_as_one_flip_then_quarter_turns_each():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (40, 5, 5, 3), dtype=np.uint8)
    flips, turns = rng.integers(2, size=40), rng.integers(4, size=40)
    oriented = zip(crops, flips, turns, strict=True)
    expected = [np.rot90(crop[:, ::-1] if flip else crop, k=turn) for crop, flip, turn in oriented]
    np.testing.assert_array_equal(keras_backend.orient(crops, flips, turns), np.stack(expected))
    assert len(set(zip(flips, turns, strict=True))) == 8  # every orientation was tried


def test_the_two_crops_of_a_pair_are_the_same_window_the_same_way_up():
    image = np.asarray(gradient_image(30, 24, seed=1))
    low, high = keras_backend.epoch_crops([(image, image)], 20, 8, np.random.default_rng(0))
    assert low.shape == (20, 8, 8, 3)
    np.testing.assert_array_equal(low, high)
    assert len({crop.tobytes() for crop in low}) > 10  # different windows and orientations


def test_the_held_out_images_must_all_be_there_once(tmp_path):
    paths = [tmp_path / "a" / "x.png", tmp_path / "a" / "y.png", tmp_path / "b" / "z.png"]
    train, held_out = keras_backend.held_out_split(paths, ("z.png",))
    assert (train, held_out) == (paths[:2], paths[2:])
    for names in (("missing.png",), ("x.png", "missing.png")):
        with pytest.raises(ValueError, match="missing.png"):
            keras_backend.held_out_split(paths, names)
    with pytest.raises(ValueError, match="x.png"):
        keras_backend.held_out_split([*paths, tmp_path / "c" / "x.png"], ("x.png",))


def test_settings_the_runner_does_not_implement_are_refused():
    refused = ({"patch_size": 0}, {"patch_size": 16, "invert_chance": 0.25}, {"patch_size": 16, "invert_chance": 0})
    for settings in refused:  # the last: the default init, the shipped model, which the runner does not load
        with pytest.raises(ValueError, match="GPU runner"):
            keras_backend.check_recipe(TrainConfig(**settings))


def tiny_folders(tmp_path):
    train, set5 = tmp_path / "train", tmp_path / "set5"
    for folder, count in ((train, 4), (set5, 1)):
        folder.mkdir()
        for index in range(count):
            gradient_image(24, 20, seed=index + 10 * (folder == set5)).save(folder / f"p{index}.png")
    return train, set5


TINY_RECIPE = {
    "init": "near-identity",
    "batch_size": 4,
    "learning_rate": 1e-3,
    "patch_size": 16,
    "repeat": 2,
    "augment": True,
}


@pytest.mark.slow  # XLA-compiles the blog-sized network: too long for the default suite
def test_a_recipe_run_keeps_the_held_out_images_out_and_saves_what_they_pick(tmp_path, capsys):
    train, set5 = tiny_folders(tmp_path)
    recipe = {**TINY_RECIPE, "epochs": 1, "invert_chance": 0.0, "val_images": ["p3.png"]}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    argv = ["--no-speed", "--config", str(tmp_path / "recipe.json"), "--train", str(train), "--set5", str(set5)]
    argv += ["--runs", "2:reparam", "--precision", "float32", "--val-every", "1", "--save", str(tmp_path / "run")]
    keras_backend.main(argv + ["--json", str(tmp_path / "report.json")])

    assert "3 training images, 1 held out" in capsys.readouterr().out
    record = json.loads((tmp_path / "run" / "history.json").read_text())
    scores = [row["val_psnr_y"] for row in record["history"]]
    assert [row["epoch"] for row in record["history"]] == [1, 2]
    assert record["result"]["picked_epoch"] == 1 + int(np.argmax(scores))
    # The saved network is the plain blog network (test.py loads it) and scores what picked it.
    model, _ = load_for_inference(tmp_path / "run" / "best.weights.h5")
    held_out = keras_backend.load_pairs([train / "p3.png"])
    assert keras_backend.benchmark_scores(model, held_out)["psnr_y"] == pytest.approx(max(scores), abs=1e-6)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["epochs"] == 2
    set5_model = keras_backend.benchmark_scores(model, keras_backend.load_pairs([set5 / "p0.png"]))["psnr_y"]
    assert json.loads((tmp_path / "report.json").read_text())["recipe"][0]["psnr_y"] == pytest.approx(set5_model)


@pytest.mark.slow
def test_the_best_held_out_score_is_kept_not_the_last(tmp_path, monkeypatch):
    train, set5 = tiny_folders(tmp_path)
    pairs = keras_backend.load_pairs(sorted(train.iterdir()))
    train_pairs, val_pairs, set5_pairs = pairs[:3], pairs[3:], keras_backend.load_pairs([set5 / "p0.png"])
    real_scores, scripted, seen = keras_backend.benchmark_scores, iter([30.0, 32.0, 31.0]), []

    def scores(model, pairs):
        if pairs is not val_pairs:
            return real_scores(model, pairs)
        seen.append(model.get_weights())
        return {"psnr_y": next(scripted)}

    monkeypatch.setattr(keras_backend, "benchmark_scores", scores)
    config = TrainConfig(**TINY_RECIPE, epochs=3, invert_chance=0.0, reparam=False)
    result = keras_backend.recipe_run(
        train_pairs, set5_pairs, config, "float32", val_pairs=val_pairs, save_dir=tmp_path / "run", val_every=1
    )
    assert (result["picked_epoch"], result["val_psnr_y"]) == (2, 32.0)
    saved, _ = load_for_inference(tmp_path / "run" / "best.weights.h5")
    for kept, epoch_two in zip(saved.get_weights(), seen[1], strict=True):
        np.testing.assert_array_equal(kept, epoch_two)
    assert not np.array_equal(seen[1][0], seen[2][0])  # the last epoch differed, and was not kept
    monkeypatch.undo()
    assert result["psnr_y"] == pytest.approx(real_scores(saved, set5_pairs)["psnr_y"])


def test_training_folders_without_set5_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        keras_backend.main(["--no-speed", "--train", str(tmp_path)])
    assert "--train and --set5 go together" in capsys.readouterr().err
