"""benchmarks/keras_backend.py, the speed probe for a GPU without TensorFlow (TensorFlow's backend here)."""

from __future__ import annotations

import json

import pytest

from benchmarks import keras_backend


@pytest.mark.slow  # XLA-compiles the blog-sized network twice: too long for the default suite
def test_the_probe_reports_both_forms_and_inference(tmp_path):
    keras_backend.main(["--quick", "--json", str(tmp_path / "report.json")])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["backend"] == "tensorflow"
    training = [row for row in report["speed"] if "crops_per_s" in row]
    # --quick: float32 at batch 4; a GPU run measures every precision at batch 32 and 256.
    assert {(row["precision"], row["reparam"], row["batch_size"]) for row in training} == {
        ("float32", False, 4),
        ("float32", True, 4),
    }
    assert all(row["crops_per_s"] > 0 for row in training)
    inference = [row["inference_megapixels_per_s"] for row in report["speed"] if "inference_megapixels_per_s" in row]
    assert len(inference) == 1 and inference[0] > 0


def test_it_trains_nothing_to_keep():
    """One trainer: the probe has no recipe runner, no held-out split, no saving (train.py does those)."""
    for gone in ("recipe_run", "held_out_split", "epoch_crops", "benchmark_scores"):
        assert not hasattr(keras_backend, gone)
    with pytest.raises(SystemExit):
        keras_backend.main(["--train", "somewhere"])
