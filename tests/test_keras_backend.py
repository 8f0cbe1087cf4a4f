"""benchmarks/keras_backend.py's recipe runner, small (TensorFlow's backend here; JAX on a GPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import gradient_image

from benchmarks import keras_backend
from srcnn.checkpoints import load_for_inference


@pytest.mark.slow  # XLA-compiles the blog-sized network: too long for the default suite
def test_a_recipe_run_keeps_the_held_out_images_out_and_saves_the_epoch_they_pick(tmp_path, capsys):
    train, set5 = tmp_path / "train", tmp_path / "set5"
    for folder, count in ((train, 4), (set5, 1)):
        folder.mkdir()
        for index in range(count):
            gradient_image(24, 20, seed=index + 10 * (folder == set5)).save(folder / f"p{index}.png")
    config = {"epochs": 2, "batch_size": 4, "learning_rate": 1e-3, "patch_size": 16, "repeat": 2}
    config |= {"augment": True, "precision": "float32", "val_images": ["p3.png"]}
    (tmp_path / "recipe.json").write_text(json.dumps(config))
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
    assert keras_backend.set5_scores(model, held_out)["psnr_y"] == max(scores)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["recipe"][0]["psnr_y"] == record["result"]["psnr_y"]
