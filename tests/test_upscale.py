"""upscale.py: exact 2x of any mode, seamless tiles, safe outputs, and the exported models."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import gradient_image, run_script, save_tiny_checkpoint
from PIL import Image, ImageCms

from srcnn.checkpoints import load_for_inference
from srcnn.config import ModelConfig
from srcnn.network import build_model, to_model_range
from srcnn.upscaling import export_model, run_tiled, split_modes, upscale


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    weights = save_tiny_checkpoint(tmp_path_factory.mktemp("checkpoint"))
    model, config = load_for_inference(weights)
    return model, config, weights


def test_tiles_give_exactly_the_one_pass_result(tiny):
    model, config, _ = tiny
    image = np.asarray(gradient_image(37, 23, seed=3))  # odd, non-square
    halo = config.receptive_field // 2
    one_pass = run_tiled(model, image, halo, tile=10_000)
    for tile in (16, 10):
        np.testing.assert_array_equal(run_tiled(model, image, halo, tile=tile), one_pass)
        np.testing.assert_array_equal(run_tiled(model, image, halo, tile=tile, batch_size=3), one_pass)
    direct = np.asarray(model(to_model_range(image)[np.newaxis], training=False))[0]
    assert np.abs((direct + 1) * 127.5 - one_pass).max() <= 0.5 + 1e-3  # rounded, not truncated


@pytest.mark.parametrize(
    "mode, make",
    [
        ("RGB", lambda: gradient_image(21, 13)),
        ("L", lambda: gradient_image(21, 13).convert("L")),
        ("RGBA", lambda: gradient_image(21, 13).convert("RGBA")),
        ("LA", lambda: gradient_image(21, 13).convert("LA")),
        ("RGB", lambda: gradient_image(21, 13).convert("P")),  # palette -> RGB
        ("RGB", lambda: gradient_image(21, 13).convert("CMYK")),
        ("L", lambda: Image.fromarray((np.arange(21 * 13).reshape(13, 21) * 200).astype(np.uint16))),
    ],
)
def test_output_is_exactly_twice_the_size_in_the_expected_mode(tiny, mode, make):
    model, config, _ = tiny
    result = upscale(model, config, split_modes(make()), tile=16)
    assert result.size == (42, 26)
    assert result.mode == mode


def test_sixteen_bit_says_it_became_eight_bit():
    photo = split_modes(Image.fromarray(np.full((4, 4), 60000, np.uint16)))
    assert photo.notes == ["I;16 reduced to 8-bit"]
    assert np.asarray(photo.colour)[0, 0, 0] == round(60000 / 257)


def test_transparent_corner_stays_transparent(tiny):
    model, config, _ = tiny
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = np.asarray(gradient_image(30, 20))
    rgba[..., 3] = 255
    rgba[:8, :8, 3] = 0
    result = upscale(model, config, split_modes(Image.fromarray(rgba, "RGBA")), tile=16)
    alpha = np.asarray(result.getchannel("A"))
    assert (alpha[:12, :12] == 0).all() and (alpha[24:, 24:] == 255).all()


@pytest.mark.slow
def test_command_errors_and_safety(tiny, tmp_path):
    _, _, weights = tiny
    photos = tmp_path / "photos"
    photos.mkdir()
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    gradient_image(19, 11).save(photos / "good one.png", icc_profile=profile)
    (photos / "broken.jpg").write_text("not a picture")
    before = {path.name: path.read_bytes() for path in photos.iterdir()}

    result = run_script(
        "upscale.py", str(photos), "--out-dir", "out", "--checkpoint", str(weights), "--tile", "16", cwd=tmp_path
    )
    assert result.returncode == 1  # one input failed...
    assert "broken.jpg" in result.stderr and "Traceback" not in result.stderr
    with Image.open(tmp_path / "out" / "good one_x2.png") as enlarged:  # ...and the other still ran
        assert enlarged.size == (38, 22)
        assert enlarged.info.get("icc_profile") == profile
    assert {path.name: path.read_bytes() for path in photos.iterdir()} == before

    again = run_script(
        "upscale.py", str(photos / "good one.png"), "--out-dir", "out", "--checkpoint", str(weights), cwd=tmp_path
    )
    assert again.returncode == 1 and "--overwrite" in again.stderr
    forced = run_script(
        "upscale.py", str(photos / "good one.png"), "--out-dir", "out", "--checkpoint", str(weights), "--overwrite",
        cwd=tmp_path,
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    onto_input = run_script(
        "upscale.py", str(photos / "good one.png"), "-o", str(photos / "good one.png"), "--checkpoint", str(weights),
        "--overwrite", cwd=tmp_path,
    )  # fmt: skip
    assert onto_input.returncode == 1 and "replace the input" in onto_input.stderr
    assert (photos / "good one.png").read_bytes() == before["good one.png"]
    assert not [path for path in (tmp_path / "out").iterdir() if path.name.startswith(".tmp")]


def test_export_matches_keras(tiny, tmp_path):
    import tensorflow as tf

    model, _, _ = tiny
    saved_model, tflite_path = export_model(model, tmp_path / "export")
    inputs = np.random.default_rng(0).uniform(-1, 1, (1, 19, 26, 3)).astype(np.float32)
    expected = model.predict_on_batch(inputs)

    loaded = tf.saved_model.load(str(saved_model))  # Keep a reference: it owns the variables.
    served = loaded.serve(tf.constant(inputs))
    assert np.abs(np.asarray(served) - expected).max() <= 1e-4

    interpreter = tf.lite.Interpreter(model_path=str(tflite_path))
    input_details = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(input_details["index"], inputs.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(input_details["index"], inputs)
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert np.abs(lite - expected).max() <= 1e-4


def test_a_model_of_another_size_still_tiles_exactly():
    config = ModelConfig(filters=6, kernel_size=5)
    model = build_model(config)
    image = np.asarray(gradient_image(29, 18))
    halo = config.receptive_field // 2
    np.testing.assert_array_equal(run_tiled(model, image, halo, 12), run_tiled(model, image, halo, 1000))
