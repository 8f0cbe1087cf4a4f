"""The SRCNN paper's benchmark protocol: Y channel, shaved borders, against bicubic."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, gradient_image, run_script, save_tiny_checkpoint
from PIL import Image

from srcnn.config import ModelConfig
from srcnn.evaluation import benchmark_image, benchmark_mean
from srcnn.images import ORIENTATIONS, bicubic_degrade, orient, self_ensemble
from srcnn.metrics import benchmark_metrics, psnr, rgb_to_y
from srcnn.network import build_model, initialize_near_identity, super_resolve
from srcnn.passes import enlarge, load_passes

SET5 = ROOT.parent / "shared" / "data" / "Set5"


def test_bicubic_scores_follow_the_protocol():
    image = gradient_image(41, 30)  # odd width: cropped to 40
    scores = benchmark_image(build_model(ModelConfig(filters=6)), image, scale=2)
    high_res = np.asarray(image)[:30, :40]
    low_res = np.asarray(bicubic_degrade(Image.fromarray(high_res), 2))
    expected = psnr(rgb_to_y(high_res)[2:-2, 2:-2], rgb_to_y(low_res)[2:-2, 2:-2])
    assert scores["bicubic_psnr_y"] == pytest.approx(expected)
    assert scores["bicubic_psnr_rgb"] == pytest.approx(psnr(high_res[2:-2, 2:-2], low_res[2:-2, 2:-2]))
    flat = {"white_pixels", "white_kept", "bicubic_white_kept", "black_pixels", "black_kept", "bicubic_black_kept"}
    assert (
        set(scores) == {"psnr_y", "ssim_y", "psnr_rgb", "bicubic_psnr_y", "bicubic_ssim_y", "bicubic_psnr_rgb"} | flat
    )


def test_an_identity_model_scores_close_to_bicubic():
    config = ModelConfig(filters=6)
    model = build_model(config)
    initialize_near_identity(model, config, noise_scale=0.0)
    # tanh(x) is close to x only near 0: use a low-contrast image around mid-grey.
    pixels = 128 + 10 * (np.asarray(gradient_image(32, 32), dtype=float) - 128) / 128
    scores = benchmark_image(model, Image.fromarray(pixels.astype(np.uint8)), scale=2)
    assert scores["psnr_y"] == pytest.approx(scores["bicubic_psnr_y"], abs=1.5)


@pytest.mark.skipif(not SET5.is_dir(), reason="needs ../shared/data/Set5")
def test_set5_bicubic_matches_the_paper():
    from srcnn.images import load_rgb

    model = build_model(ModelConfig(filters=6))
    rows = [benchmark_image(model, load_rgb(path)) for path in sorted(SET5.glob("*.png"))]
    assert len(rows) == 5
    assert benchmark_mean(rows)["bicubic_psnr_y"] == pytest.approx(33.66, abs=0.1)


@pytest.mark.slow
def test_benchmark_command_writes_json(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    save_tiny_checkpoint(checkpoints)
    images = tmp_path / "bench"
    images.mkdir()
    gradient_image(33, 24).save(images / "a.png")
    gradient_image(24, 40, seed=2).save(images / "b.jpg")
    result = run_script(
        "test.py", "--benchmark", str(images), "--json", "scores.json", "--compare-dir", "c",
        "--checkpoint-dir", str(checkpoints), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "scores.json").read_text())
    with Image.open(tmp_path / "c" / "b.png") as comparison:
        assert comparison.width == 3 * 24 + 8 and comparison.height > 40
    assert [row["name"] for row in report["images"]] == ["a", "b"]
    assert set(report["mean"]) == {
        "psnr_y",
        "ssim_y",
        "psnr_rgb",
        "bicubic_psnr_y",
        "bicubic_ssim_y",
        "bicubic_psnr_rgb",
    }


def test_the_shipped_model_beats_bicubic_on_a_built_in_photo():
    """The pretrained model (checkpoints/pretrained/) on a crop of scikit-image's astronaut, never trained on."""
    import skimage.data

    from srcnn.checkpoints import SHIPPED_WEIGHTS, load_for_inference

    model, config = load_for_inference(SHIPPED_WEIGHTS["clean"])
    assert config == ModelConfig() and model.count_params() == 48_003
    face = Image.fromarray(skimage.data.astronaut()[40:200, 160:320])
    scores = benchmark_image(model, face, scale=2)
    assert scores["psnr_y"] > scores["bicubic_psnr_y"] + 1.0
    assert scores["ssim_y"] > scores["bicubic_ssim_y"]


def test_the_jpeg_protocol_enlarges_the_decoded_jpeg_of_the_half_size_image():
    import io

    from srcnn.images import make_whole_pair

    image = gradient_image(48, 32, seed=4)
    low_res, high_res = make_whole_pair(image, 2, jpeg_quality=75)
    buffer = io.BytesIO()
    image.resize((24, 16), Image.Resampling.BICUBIC).save(buffer, format="JPEG", quality=75)
    expected = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB").resize((48, 32), Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(np.asarray(low_res), np.asarray(expected))
    assert not np.array_equal(np.asarray(low_res), np.asarray(make_whole_pair(image, 2)[0]))  # JPEG changed it
    model = build_model(ModelConfig(filters=6))
    scores = benchmark_image(model, image, 2, jpeg_quality=75)
    y_high, y_low = rgb_to_y(np.asarray(high_res))[2:-2, 2:-2], rgb_to_y(np.asarray(low_res))[2:-2, 2:-2]
    assert scores["bicubic_psnr_y"] == pytest.approx(psnr(y_high, y_low))  # bicubic scored on the same JPEG


def test_comparisons_show_an_enlarged_detail_where_model_and_bicubic_differ_most():
    from srcnn.evaluation import comparison_image, most_different_square

    low_res = np.full((64, 80, 3), 120, np.uint8)
    super_res = low_res.copy()
    super_res[40:48, 50:58] = 200  # the one place the model changed
    top, left = most_different_square(low_res, super_res, 16)
    assert 32 <= top <= 40 and 42 <= left <= 50  # the 16-px square holds the whole 8-px change
    image = comparison_image(low_res, super_res, low_res, ("a", "b", "c"))
    assert image.width == 3 * 80 + 8 and image.height > 64 + 64  # the detail row: a 16-px square, 5x
    pixels = np.asarray(image)
    assert ((pixels == [255, 0, 0]).all(axis=2)).sum() > 0  # the red outline of the square


def test_model_jpeg_scores_with_the_jpeg_model_for_the_quality_asked(tmp_path, run_main, monkeypatch):
    from srcnn import checkpoints

    shipped = {name: save_tiny_checkpoint(tmp_path / name, seed=seed) for seed, name in enumerate(("low", "high"))}
    monkeypatch.setitem(checkpoints.SHIPPED_WEIGHTS, "jpeg-low", shipped["low"])
    monkeypatch.setitem(checkpoints.SHIPPED_WEIGHTS, "jpeg-high", shipped["high"])
    folder = tmp_path / "set"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / "a.png")
    for quality, used in ((82, "low"), (83, "high"), (None, "high")):
        jpeg = ["--jpeg", str(quality)] if quality else []
        result = run_main("test.py", "--benchmark", str(folder), "--model", "jpeg", *jpeg, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"model: {shipped[used]} (" in result.stdout


def test_ensemble_scores_the_mean_of_the_eight_orientations_of_the_small_image(tmp_path, run_main, capsys):
    model = build_model(ModelConfig(filters=6))
    photo = gradient_image(34, 30, seed=2)  # 13x11 after the 2-pixel shave: SSIM's least
    small = np.asarray(photo.resize((17, 15), Image.Resampling.BICUBIC))
    results = []
    for index in range(ORIENTATIONS):
        turned = Image.fromarray(np.ascontiguousarray(orient(small, index)))
        low_res = np.asarray(turned.resize((turned.width * 2, turned.height * 2), Image.Resampling.BICUBIC))
        results.append(orient(super_resolve(model, low_res), index, undo=True).astype(np.float32))
    expected = np.rint(np.mean(results, axis=0)).astype(np.uint8)
    scores = benchmark_image(model, photo, 2, ensemble=True)
    assert scores["psnr_y"] == pytest.approx(benchmark_metrics(np.asarray(photo), expected, 2)["psnr_y"])
    assert scores["psnr_y"] != benchmark_image(model, photo, 2)["psnr_y"]

    # test.py gives benchmark_image the passes of a checkpoint (one at 2x), not a network.
    passes = load_passes(save_tiny_checkpoint(tmp_path / "tiny"))
    scores = benchmark_image(passes, photo, 2, ensemble=True)
    expected = self_ensemble(lambda image: enlarge(passes, Image.fromarray(image)), small)
    assert scores["psnr_y"] == pytest.approx(benchmark_metrics(np.asarray(photo), expected, 2)["psnr_y"])

    with pytest.raises(SystemExit):
        run_main("test.py", "--ensemble", cwd=tmp_path)
    assert "--ensemble goes with --benchmark" in capsys.readouterr().err


def test_a_missing_benchmark_folder_is_refused_before_a_model_loads(tmp_path, run_main, capsys, monkeypatch):
    import srcnn.checkpoints

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(srcnn.checkpoints, "load_for_inference", no_loading)
    with pytest.raises(SystemExit):
        run_main("test.py", "--benchmark", "nope", "--scale", "3", cwd=tmp_path)
    printed = capsys.readouterr()
    assert printed.err.splitlines()[-1].endswith("error: nope: no such folder") and "model" not in printed.out
