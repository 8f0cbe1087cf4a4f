"""benchmarks/keras_backend.py, the speed probe for a GPU without TensorFlow (TensorFlow's backend here)."""

from __future__ import annotations

import json

import pytest

from benchmarks import keras_backend


@pytest.mark.slow  # XLA-compiles the blog-sized network in three precisions: too long for the default suite
def test_the_probe_reports_every_precision_and_form(tmp_path):
    keras_backend.main(["--quick", "--json", str(tmp_path / "report.json")])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["backend"] == "tensorflow"
    training = [row for row in report["speed"] if "crops_per_s" in row]
    assert {(row["precision"], row["reparam"], row["batch_size"]) for row in training} == {
        (precision, reparam, batch)
        for precision in keras_backend.PRECISIONS
        for reparam in (False, True)
        for batch in (32, 256)
    }
    assert all(row["crops_per_s"] > 0 for row in training)
    inference = [row["inference_megapixels_per_s"] for row in report["speed"] if "inference_megapixels_per_s" in row]
    assert len(inference) == 3 and min(inference) > 0


def test_it_trains_nothing_to_keep():
    """One trainer: the probe has no recipe runner, no held-out split, no saving (train.py does those)."""
    for gone in ("recipe_run", "held_out_split", "epoch_crops", "benchmark_scores"):
        assert not hasattr(keras_backend, gone)
    with pytest.raises(SystemExit):
        keras_backend.main(["--train", "somewhere"])
