"""The 8-bit runtime (srcnn/int8.py): its fake-quantized twin computes what ONNX Runtime's 8-bit
graph computes, tuned weights are found beside a model's own, pure white and black are restored."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import gradient_image, save_tiny_checkpoint

from srcnn.checkpoints import load_for_inference
from srcnn.network import to_model_range

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    weights = save_tiny_checkpoint(tmp_path_factory.mktemp("checkpoint"), filters=8, seed=3)
    model, config = load_for_inference(weights)
    return model, config, weights


def small_calibration() -> np.ndarray:
    """Like calibration_batch(): photo-like crops, then pure white and black."""
    crops = [to_model_range(np.asarray(gradient_image(24, 24, seed=seed))) for seed in range(4)]
    return np.stack(crops + [np.full((24, 24, 3), value, np.float32) for value in (1.0, -1.0)])


def test_the_fake_quantized_twin_computes_what_the_8_bit_graph_computes(tiny):
    from srcnn.int8 import FakeQuantized, quantized_onnx
    from srcnn.runtimes import conv2d_form, onnx_bytes, onnxruntime_predict

    model, config, _ = tiny
    calibration = small_calibration()
    twin = FakeQuantized(model, config, calibration)
    twin.calibrate()
    image = to_model_range(np.asarray(gradient_image(30, 26, seed=9)))[np.newaxis]
    graph = onnxruntime_predict(quantized_onnx(onnx_bytes(conv2d_form(model, config)), calibration))
    simulated, integer = twin.model.predict_on_batch(image), graph(image)
    exact = model.predict_on_batch(image)
    # The same roundings: most values agree to float error, and on average the two differ from each
    # other far less than from the float network. (The integer graph also rounds its biases,
    # rescales in fixed point and, on AVX2 without VNNI, sums pairs of products in 16 bits, which
    # saturate now and then; a value moved across a rounding boundary spreads to its neighbours.)
    rounding, apart = np.abs(simulated - exact), np.abs(simulated - integer)
    assert np.median(apart) < 1e-6 and apart.mean() < rounding.mean() / 3
    # and float_weights() gives the float network back
    model_again = load_for_inference(tiny[2])[0]
    model_again.set_weights(twin.float_weights())
    np.testing.assert_allclose(model_again.predict_on_batch(image), exact, atol=1e-6)


def test_the_8_bit_runtime_runs_the_tuned_weights_beside_the_model(tiny, tmp_path):
    from srcnn.int8 import INT8_WEIGHTS
    from srcnn.runtimes import make_runtime

    model, config, weights = tiny
    folder = tmp_path / "model"
    shutil.copytree(weights.parent, folder)
    untuned = folder / weights.name
    with pytest.raises(ValueError, match=f"has no {INT8_WEIGHTS} beside it"):
        make_runtime("onnxruntime-int8", model, config, untuned)
    other = save_tiny_checkpoint(tmp_path / "other", filters=8, seed=5)  # stands in for tuned weights
    shutil.copy(other, folder / INT8_WEIGHTS)
    photo = to_model_range(np.asarray(gradient_image(40, 36, seed=4)))[np.newaxis]
    output = make_runtime("onnxruntime-int8", model, config, untuned).predict(photo)[0]
    tuned = load_for_inference(other)[0].predict_on_batch(photo)[0]
    own = model.predict_on_batch(photo)[0]
    # it runs the tuned weights, not the model's own, and rounds them (8 bits)
    assert np.abs(output - tuned).mean() < np.abs(output - own).mean() / 3
    assert 0 < np.abs(output - tuned).max() < 0.1


def test_calibration_crops_are_real_photos_and_pure_ends():
    from srcnn.int8 import CALIBRATION_CROP, CALIBRATION_PHOTOS, CROPS_PER_PHOTO, calibration_batch

    batch = calibration_batch()
    assert batch.shape == (len(CALIBRATION_PHOTOS) * CROPS_PER_PHOTO + 2, CALIBRATION_CROP, CALIBRATION_CROP, 3)
    assert batch.dtype == np.float32 and batch.min() == -1.0 and batch.max() == 1.0
    assert np.all(batch[-2] == 1.0) and np.all(batch[-1] == -1.0)
    assert all(crop.std() > 0.02 for crop in batch[:-2])  # textured photo crops, not flat ones
    np.testing.assert_array_equal(batch, calibration_batch())  # the same crops every time


@pytest.mark.slow
def test_tuning_writes_int8_weights_beside_the_model_and_leaves_its_own(tmp_path):
    import importlib.util
    from pathlib import Path

    from srcnn.int8 import INT8_WEIGHTS

    spec = importlib.util.spec_from_file_location("tune_int8", Path(__file__).parent.parent / "docs" / "tune_int8.py")
    tune_int8 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tune_int8)
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(4):
        gradient_image(80, 72, seed=seed).save(photos / f"p{seed}.png")
    (tmp_path / "val.txt").write_text("p3.png\n")
    weights = save_tiny_checkpoint(tmp_path / "model", filters=4, seed=1)
    before = weights.read_bytes()
    args = [str(photos), "--checkpoint", str(weights), "--val-names", str(tmp_path / "val.txt"), "--epochs", "1"]
    args += ["--learning-rate", "1e-2"]  # a random network gains at once
    assert tune_int8.main(args) == 0
    assert weights.read_bytes() == before  # the float model is untouched
    tuned = weights.parent / INT8_WEIGHTS
    assert tuned.is_file()
    model, config = load_for_inference(weights)
    model.load_weights(str(tuned))  # the same network, other weights


def test_pure_white_and_black_are_restored_where_the_input_is_pure_around_a_pixel():
    from srcnn.int8 import restore_pure

    batch = np.zeros((1, 8, 10, 3), np.float32)
    batch[0, :, :5] = 1.0  # white on the left
    batch[0, :, 7:] = -1.0  # black on the right
    batch[0, 2, 1, 0] = 0.9  # one nearly white pixel
    output = np.full_like(batch, 0.5)
    restored = restore_pure(batch, output.copy())[0]
    white = np.all(restored == 1.0, axis=-1)
    black = np.all(restored == -1.0, axis=-1)
    assert white[:, :4].sum() == 8 * 4 - 9  # columns 0-3, less the 3x3 around (2, 1)
    assert not white[:, 4:].any()  # column 4 borders column 5, which is not white
    assert black[:, 8:].all() and not black[:, :8].any()
    assert np.all(restored[~(white | black)] == 0.5)  # everything else as the network gave it
