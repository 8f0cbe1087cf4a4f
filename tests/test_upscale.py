"""upscale.py: exact 2x of any mode, seamless tiles, safe outputs, and the exported models."""

from __future__ import annotations

import hashlib
import os
import threading

import numpy as np
import pytest
from conftest import gradient_image, run_script, save_tiny_checkpoint, tiny_router
from PIL import Image, ImageCms

from srcnn.checkpoints import load_for_inference
from srcnn.config import ModelConfig
from srcnn.images import ORIENTATIONS, orient
from srcnn.network import build_model, to_model_range
from srcnn.upscaling import export_model, made_by_of, run_tiled, split_modes, upscale, upscale_in_passes


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    weights = save_tiny_checkpoint(tmp_path_factory.mktemp("checkpoint"))
    model, config = load_for_inference(weights)
    return model, config, weights


def test_tiles_give_exactly_the_one_pass_result(tiny):
    model, config, _ = tiny
    image = np.asarray(gradient_image(37, 23, seed=3))  # odd, non-square
    halo = config.receptive_field // 2
    one_pass = run_tiled(model.predict_on_batch, image, halo, tile=10_000)
    for tile in (16, 10):
        np.testing.assert_array_equal(run_tiled(model.predict_on_batch, image, halo, tile=tile), one_pass)
        np.testing.assert_array_equal(run_tiled(model.predict_on_batch, image, halo, tile=tile, batch_size=3), one_pass)
    # One pass of the model over the image with its edges repeated `halo` times (not zero-padded).
    extended = np.pad(image, ((halo, halo), (halo, halo), (0, 0)), mode="edge")
    direct = np.asarray(model(to_model_range(extended)[np.newaxis], training=False))[0, halo:-halo, halo:-halo]
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
    result = upscale(model.predict_on_batch, config, split_modes(make()), tile=16)
    assert result.size == (42, 26)
    assert result.mode == mode


def test_sixteen_bit_says_it_became_eight_bit():
    photo = split_modes(Image.fromarray(np.full((4, 4), 60000, np.uint16)))
    assert photo.notes == ["16-bit (I;16) reduced to 8-bit"]
    assert np.asarray(photo.colour)[0, 0, 0] == round(60000 / 257)


def test_transparent_corner_stays_transparent(tiny):
    model, config, _ = tiny
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = np.asarray(gradient_image(30, 20))
    rgba[..., 3] = 255
    rgba[:8, :8, 3] = 0
    result = upscale(model.predict_on_batch, config, split_modes(Image.fromarray(rgba, "RGBA")), tile=16)
    alpha = np.asarray(result.getchannel("A"))
    assert (alpha[:12, :12] == 0).all() and (alpha[24:, 24:] == 255).all()


@pytest.mark.slow
def test_command_errors_and_safety(tiny, tmp_path, run_main, capsys):
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

    # The rest in this process (faster; the first call above ran the script as a user does).
    again = run_main(
        "upscale.py", str(photos / "good one.png"), "--out-dir", "out", "--checkpoint", str(weights), cwd=tmp_path
    )
    assert again.returncode == 0 and "up to date, kept" in again.stdout  # newer than the photo: not redone
    os.utime(photos / "good one.png")  # the photo changed since: its old result is the user's to replace
    older = run_main(
        "upscale.py", str(photos / "good one.png"), "--out-dir", "out", "--checkpoint", str(weights), cwd=tmp_path
    )
    assert older.returncode == 1 and "older than the photo; pass --overwrite" in older.stderr
    forced = run_main(
        "upscale.py", str(photos / "good one.png"), "--out-dir", "out", "--checkpoint", str(weights), "--overwrite",
        cwd=tmp_path,
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    onto_input = run_main(
        "upscale.py", str(photos / "good one.png"), "-o", str(photos / "good one.png"), "--checkpoint", str(weights),
        "--overwrite", cwd=tmp_path,
    )  # fmt: skip
    assert onto_input.returncode == 1 and "replace the input" in onto_input.stderr
    assert (photos / "good one.png").read_bytes() == before["good one.png"]
    # Refused by name before any model loads: -o a folder, -o a file type no writer takes, an empty folder.
    refused = {photos: "is a folder; for a folder of results use --out-dir", "out.xyz": "ends in .xyz, which no"}
    for output, reason in refused.items():
        with pytest.raises(SystemExit):
            run_main("upscale.py", str(photos / "good one.png"), "-o", str(output), cwd=tmp_path)
        assert f"-o {output} {reason}" in capsys.readouterr().err
    (tmp_path / "blocked" / "good one_x2.png").mkdir(parents=True)  # a folder where a result would go
    blocked = run_main(
        "upscale.py", str(photos / "good one.png"), "--out-dir", "blocked", "--checkpoint", str(weights), cwd=tmp_path
    )
    assert blocked.returncode == 1
    assert f"its output {os.path.join('blocked', 'good one_x2.png')} is a folder" in blocked.stderr, blocked.stderr
    (tmp_path / "empty").mkdir()
    empty = run_main("upscale.py", "empty", "--out-dir", "out", cwd=tmp_path)
    assert empty.returncode == 1 and empty.stderr.strip() == "upscale.py: error: no images found in empty"
    assert "model:" not in empty.stdout
    assert not [path for path in (tmp_path / "out").iterdir() if path.name.startswith(".tmp")]


@pytest.mark.slow  # four runtimes to load: the slow suite keeps the default one under 90 s
def test_every_export_matches_keras_in_its_own_runtime(tiny, tmp_path):
    """SavedModel, TFLite (LiteRT and tf.lite, resized to an odd size) and ONNX (onnxruntime)."""
    import onnxruntime
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    model, config, _ = tiny
    written = dict((path.name, path) for path, _ in export_model(model, config, tmp_path / "export"))
    assert set(written) == {"saved_model", "srcnn.tflite", "srcnn-int8.tflite", "srcnn.onnx"}
    inputs = np.random.default_rng(0).uniform(-1, 1, (2, 19, 26, 3)).astype(np.float32)
    expected = model.predict_on_batch(inputs)

    loaded = tf.saved_model.load(str(written["saved_model"]))  # Keep a reference: it owns the variables.
    assert np.abs(np.asarray(loaded.serve(tf.constant(inputs))) - expected).max() <= 1e-4

    session = onnxruntime.InferenceSession(str(written["srcnn.onnx"]), providers=["CPUExecutionProvider"])
    onnx_output = session.run(None, {session.get_inputs()[0].name: inputs})[0]
    assert np.abs(onnx_output - expected).max() <= 1e-4

    for name, bound in (("srcnn.tflite", 1e-4), ("srcnn-int8.tflite", 0.05)):  # int8 weights: coarser
        for interpreter in (Interpreter(model_path=str(written[name])), tf.lite.Interpreter(str(written[name]))):
            index = interpreter.get_input_details()[0]["index"]
            interpreter.resize_tensor_input(index, inputs.shape)
            interpreter.allocate_tensors()
            interpreter.set_tensor(index, inputs)
            interpreter.invoke()
            lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
            assert np.abs(lite - expected).max() <= bound, (name, type(interpreter))


# The most each runtime may differ from Keras float32, in 8-bit levels, on the shipped model: float32
# runtimes only in rounding; bfloat16 keeps 8 bits of mantissa through seven layers; int8 weights more.
RUNTIME_BOUNDS = {"onnxruntime": (1, 0.01), "litert": (1, 0.01), "keras-bfloat16": (4, 0.5), "litert-int8": (12, 1.5)}


@pytest.mark.parametrize("name", sorted(RUNTIME_BOUNDS))
def test_each_runtime_matches_keras_float32_within_its_precision(name):
    import skimage.data

    from srcnn.checkpoints import SHIPPED_WEIGHTS
    from srcnn.runtimes import available, make_runtime

    if not available(name):
        pytest.skip(f"{name} cannot run on this machine")
    model, config = load_for_inference(SHIPPED_WEIGHTS["clean"])
    photo = np.asarray(Image.fromarray(skimage.data.astronaut()[:96, :80]).resize((160, 192), Image.BICUBIC))
    halo = config.receptive_field // 2
    expected = run_tiled(model.predict_on_batch, photo, halo, tile=64).astype(int)
    output = run_tiled(make_runtime(name, model, config).predict, photo, halo, tile=64).astype(int)
    most, mean = RUNTIME_BOUNDS[name]
    assert np.abs(output - expected).max() <= most and np.abs(output - expected).mean() <= mean


def test_auto_picks_the_fastest_runtime_each_machine_can_run(monkeypatch):
    from srcnn import runtimes

    name, why = runtimes.resolve_runtime("auto")  # this machine
    assert name in runtimes.AUTO_ORDER and runtimes.available(name) and why.startswith("auto")
    for flags, installed, expected in (
        ({"avx512_bf16"}, {"onnxruntime"}, "keras-bfloat16"),  # a CPU that computes in bfloat16
        (set(), {"onnxruntime"}, "onnxruntime"),  # one that does not
        (set(), set(), "keras"),  # nothing extra installed
    ):
        monkeypatch.setattr(runtimes, "cpu_flags", lambda flags=flags: flags)
        modules = {"onnxruntime", "tf2onnx", "onnx"} if installed else set()
        monkeypatch.setattr(
            runtimes.importlib.util, "find_spec", lambda module, modules=modules: module in modules or None
        )
        assert runtimes.resolve_runtime("auto")[0] == expected
    with pytest.raises(ValueError, match="onnxruntime cannot run here: missing packages: pip install onnxruntime"):
        runtimes.resolve_runtime("onnxruntime")
    monkeypatch.setattr(runtimes.tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"])
    assert runtimes.resolve_runtime("auto") == ("keras", "auto: a GPU, which Keras uses")


def test_a_folder_overlaps_reading_and_writing_and_writes_each_output_once(tiny, tmp_path, monkeypatch, capsys):
    from srcnn import upscaling

    model, config, _ = tiny
    folder = tmp_path / "photos"
    folder.mkdir()
    jobs = []
    for index in range(4):
        gradient_image(30 + index, 20, seed=index).save(folder / f"{index}.jpg")
        jobs.append((folder / f"{index}.jpg", tmp_path / "out" / f"{index}_x2.png"))
    (folder / "broken.png").write_bytes(b"not a picture")
    jobs.insert(2, (folder / "broken.png", tmp_path / "out" / "broken_x2.png"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "3_x2.png").write_bytes(b"the user's own file")
    written, threads = [], set()
    real_save, real_open = upscaling.save_image, upscaling.open_photo

    def save_image(image, path, icc, made_by):
        written.append(path)
        threads.add(("save", threading.current_thread().name.split("_")[0]))
        real_save(image, path, icc, made_by)

    def open_photo(path):
        threads.add(("read", threading.current_thread().name.split("_")[0]))
        return real_open(path)

    monkeypatch.setattr(upscaling, "save_image", save_image)
    monkeypatch.setattr(upscaling, "open_photo", open_photo)

    notes = {folder / "0.jpg": "reads as smooth", folder / "3.jpg": "reads as sharpened"}
    stages = [(model.predict_on_batch, config, 2)]
    tally = upscaling.enlarge_all(jobs, stages, tile=16, batch_size=1, overwrite=False, notes=notes)
    # The broken file is skipped; the output that exists, newer than its photo, is up to date and kept.
    assert (tally.written, tally.up_to_date, tally.skipped) == (3, 1, 1)
    lines = capsys.readouterr().out.splitlines()
    assert f"{folder / '0.jpg'} -> {tmp_path / 'out' / '0_x2.png'} (reads as smooth)" in lines
    # A kept output's line says nothing of this run's choice: an earlier run, maybe another model, made it.
    assert f"{folder / '3.jpg'} -> {tmp_path / 'out' / '3_x2.png'} (up to date, kept)" in lines, lines
    assert sorted(path.name for path in written) == ["0_x2.png", "1_x2.png", "2_x2.png"]
    assert (tmp_path / "out" / "3_x2.png").read_bytes() == b"the user's own file"
    for index in range(3):
        with Image.open(tmp_path / "out" / f"{index}_x2.png") as result:
            assert result.size == (2 * (30 + index), 40)
    assert not list((tmp_path / "out").glob(".tmp-*"))
    assert threads == {("read", "read"), ("save", "write")}  # beside the model, not in its way


def test_a_model_of_another_size_still_tiles_exactly():
    config = ModelConfig(filters=6, kernel_size=5)
    model = build_model(config)
    image = np.asarray(gradient_image(29, 18))
    halo = config.receptive_field // 2
    np.testing.assert_array_equal(
        run_tiled(model.predict_on_batch, image, halo, 12), run_tiled(model.predict_on_batch, image, halo, 1000)
    )


def test_two_inputs_with_one_output_name_never_overwrite_each_other(tiny, tmp_path, run_main):
    _, _, weights = tiny
    photos = tmp_path / "photos"
    photos.mkdir()
    gradient_image(20, 12, seed=1).save(photos / "a.png")
    gradient_image(16, 16, seed=2).save(photos / "a.jpg")
    result = run_main("upscale.py", str(photos), "--out-dir", "out", "--checkpoint", str(weights), cwd=tmp_path)
    assert result.returncode == 1 and "is already the output of" in result.stderr
    with Image.open(tmp_path / "out" / "a_x2.png") as made:
        assert made.size == (32, 32)  # a.jpg, first in name order; a.png was refused, not written over it


def test_a_file_that_is_no_image_is_refused_before_a_model_is_named(tmp_path, run_main):
    (tmp_path / "notes.png").write_text("not a picture")
    result = run_main("upscale.py", str(tmp_path / "notes.png"), "-o", "out.png", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"upscale.py: skipped {tmp_path / 'notes.png'}: not an image Pillow can read"
    assert "model:" not in result.stdout and not (tmp_path / "out.png").exists()


def test_model_auto_gives_jpeg_files_to_the_jpeg_model_for_their_quality_and_says_so(tmp_path, run_main, monkeypatch):
    from srcnn import checkpoints
    from srcnn.upscaling import split_modes

    names = ("clean", "jpeg-low", "jpeg-high", "unfiltered", "sharpened")
    shipped = {name: save_tiny_checkpoint(tmp_path / name, seed=seed) for seed, name in enumerate(names)}
    for name, weights in shipped.items():
        monkeypatch.setitem(checkpoints.SHIPPED_WEIGHTS, name, weights)
    # A router that reads every lossless image as smooth: this test is about the JPEG models.
    tiny_router(tmp_path / "router", bias=(50.0, 0.0, 0.0))
    monkeypatch.setattr(checkpoints, "ROUTER_DIR", tmp_path / "router")
    photos = tmp_path / "photos"
    photos.mkdir()
    # By content, not by name: (JPEG quality or None for a PNG, the model that must take it).
    holds = {"a.png": (None, "clean"), "b.jpg": (90, "jpeg-high"), "c.png": (70, "jpeg-low"), "d.jpg": (None, "clean")}
    holds.update({"e.jpg": (82, "jpeg-low"), "f.jpg": (96, "clean")})  # 96: nearly lossless
    for index, (name, (quality, _)) in enumerate(holds.items()):
        photo = gradient_image(20, 12, seed=index)
        if quality is None:
            photo.save(photos / name, format="PNG")
        else:
            photo.save(photos / name, format="JPEG", quality=quality)

    result = run_main("upscale.py", str(photos), "--out-dir", "out", "--runtime", "keras", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name, why, count in (
        ("jpeg-low", "the JPEG model for qualities up to 82, for such JPEGs (--model auto)", 2),
        ("jpeg-high", "the JPEG model for qualities 83-95, for such JPEGs (--model auto)", 1),
        (
            "clean",
            "the clean model, for smooth lossless images (as PIL's bicubic makes them) and JPEGs above quality"
            " 95 (--model auto)",
            3,
        ),
    ):
        assert f"model: {shipped[name]} ({why}), {count} photo(s)" in result.stdout
    # Each model's photos are listed under it: which file went to which model.
    lines = result.stdout.splitlines()
    for name, (_, model_name) in holds.items():
        written = next(index for index, line in enumerate(lines) if line.startswith(str(photos / name)))
        heading = max(index for index, line in enumerate(lines[:written]) if line.startswith("with "))
        assert lines[heading] == f"with {shipped[model_name]}:", name
    # ... and each photo's line says what picked its model: its JPEG quality, or the router's reading (too small here).
    photo_line = {name: next(line for line in lines if line.startswith(str(photos / name))) for name in holds}
    assert photo_line["b.jpg"].endswith(" (a JPEG of quality 90)"), photo_line["b.jpg"]
    assert photo_line["a.png"].endswith(" (too flat or too small to read how it was made)"), photo_line["a.png"]
    models = {name: load_for_inference(weights) for name, weights in shipped.items()}
    for name, (_, model_name) in holds.items():
        model, config = models[model_name]
        with Image.open(photos / name) as photo:
            expected = upscale(model.predict_on_batch, config, split_modes(photo.convert("RGB")))
        with Image.open(tmp_path / "out" / f"{name[0]}_x2.png") as made:
            np.testing.assert_array_equal(np.asarray(made), np.asarray(expected))

    result = run_main("upscale.py", str(photos), "--out-dir", "out2", "--model", "clean", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"model: {shipped['clean']} (the clean model, --model clean)" in result.stdout
    result = run_main("upscale.py", str(photos / "a.png"), "-o", "a.png", "--model", "jpeg", cwd=tmp_path / "out")
    assert result.returncode == 0, result.stderr  # a PNG through the JPEG models: the one for high qualities
    assert (
        f"model: {shipped['jpeg-high']} (the JPEG model for qualities above 82, for such JPEGs and all other files"
        in result.stdout
    )
    with pytest.raises(SystemExit) as refused:  # argparse's own error: usage and one line, exit 2
        run_main(
            "upscale.py", str(photos / "a.png"), "-o", "x.png", "--model", "jpeg", "--checkpoint", "w", cwd=tmp_path
        )
    assert refused.value.code == 2


@pytest.mark.parametrize("model", ["clean", "unfiltered", "sharpened", "general", "jpeg-low", "jpeg-high"])
def test_pure_white_and_black_come_out_exact_from_the_shipped_models(model, tmp_path, run_main):
    """A catalogue photo's white background must stay 255 (and black 0) through upscale.py, with the
    default runtime, away from the edges of the flat regions (bicubic and the network's 15-pixel
    window reach about 11 output pixels into them)."""
    photo = np.asarray(gradient_image(24, 32, seed=4)).copy()
    photo = np.concatenate([np.full((32, 24, 3), 255, np.uint8), photo, np.zeros((32, 24, 3), np.uint8)], axis=1)
    Image.fromarray(photo).save(tmp_path / "on_white_and_black.png")
    result = run_main("upscale.py", "on_white_and_black.png", "-o", "x2.png", "--model", model, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "x2.png") as made:
        enlarged = np.asarray(made)
    assert enlarged.shape == (64, 144, 3)
    margin = 12
    assert (enlarged[:, : 48 - margin] == 255).all()
    assert (enlarged[:, 96 + margin :] == 0).all()


def test_the_help_of_both_scripts_gives_the_switch_points_in_use():
    from conftest import load_script

    from srcnn.checkpoints import JPEG_HIGH_UP_TO, JPEG_LOW_UP_TO

    def help_text(script: str) -> str:  # as one line: argparse wraps it
        return " ".join(load_script(script).build_parser().format_help().split())

    upscale_help = help_text("upscale.py")
    assert f"jpeg-low up to {JPEG_LOW_UP_TO}" in upscale_help and f"above {JPEG_HIGH_UP_TO} as lossless" in upscale_help
    assert f"jpeg-low up to {JPEG_LOW_UP_TO}" in help_text("test.py")


def test_model_auto_sends_a_real_small_photo_to_the_model_for_how_it_was_made(tmp_path, run_main, monkeypatch):
    """The shipped router on a piece of a real photo made small two ways: PIL's bicubic (the
    protocol) and OpenCV's cubic (unfiltered). One photo per run: the line names the model and the
    router's reading."""
    import skimage.data

    from srcnn import checkpoints, degradations

    names = ("clean", "unfiltered", "sharpened")
    shipped = {name: save_tiny_checkpoint(tmp_path / name, seed=seed) for seed, name in enumerate(names)}
    for name, weights in shipped.items():
        monkeypatch.setitem(checkpoints.SHIPPED_WEIGHTS, name, weights)
    photo = Image.fromarray(skimage.data.astronaut()[:256, :256])
    for way, model in (("bicubic", "clean"), ("cv2-cubic", "unfiltered")):
        degradations.downscale(photo, 2, degradations.SUITE[way]).save(tmp_path / f"{way}.png")
        result = run_main("upscale.py", f"{way}.png", "-o", f"{way}_x2.png", "--runtime", "keras", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        kind = {"clean": "smooth"}.get(model, model)
        assert f"model: {shipped[model]} (the {model} model: reads as {kind} (" in result.stdout, result.stdout


def test_the_comparison_page_names_shipped_models_as_the_command_line_does(tmp_path):
    from conftest import load_script

    from srcnn.checkpoints import SHIPPED_BY_SCALE, SHIPPED_WEIGHTS

    label = load_script("upscale.py").model_label
    assert label(SHIPPED_WEIGHTS["clean"]) == "clean" and label(SHIPPED_WEIGHTS["jpeg-low"]) == "jpeg-low"
    assert label(SHIPPED_BY_SCALE[3].parent / "first-pass" / SHIPPED_BY_SCALE[3].name) == "pretrained-x3/first-pass"
    assert label(tmp_path / "my-run" / "best.weights.h5") == "my-run"


def test_ensemble_is_the_mean_of_the_eight_orientations_each_tiled(tiny, tmp_path, run_main):
    model, config, weights = tiny
    photo = gradient_image(21, 13, seed=5).convert("RGBA")  # non-square: quarter turns tile it the other way
    ensemble = upscale_in_passes([(model.predict_on_batch, config, 2)], split_modes(photo), tile=16, ensemble=True)
    colour = np.asarray(photo.convert("RGB"))
    results = []
    for index in range(ORIENTATIONS):
        turned = split_modes(Image.fromarray(np.ascontiguousarray(orient(colour, index))))
        enlarged = np.asarray(upscale(model.predict_on_batch, config, turned, tile=10_000))
        results.append(orient(enlarged, index, undo=True).astype(np.float32))
    assert ensemble.mode == "RGBA" and ensemble.size == (42, 26)
    np.testing.assert_array_equal(np.asarray(ensemble)[..., :3], np.rint(np.mean(results, axis=0)))
    assert not np.array_equal(results[0], results[1])  # the tiny network is not symmetric: a real mean

    photo.convert("RGB").save(tmp_path / "photo.png")
    made = run_main(
        "upscale.py",
        "photo.png",
        "-o",
        "x2.png",
        "--checkpoint",
        str(weights),
        "--ensemble",
        "--runtime",
        "keras",
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    assert "ensemble: each photo enlarged in its 8 flips and quarter turns" in made.stdout
    with Image.open(tmp_path / "x2.png") as written:
        np.testing.assert_array_equal(np.asarray(written), np.asarray(ensemble)[..., :3])


def test_each_output_records_what_made_it_and_a_kept_one_made_otherwise_says_so(tiny, tmp_path, run_main, capsys):
    _, _, weights = tiny
    photos = tmp_path / "photos"
    photos.mkdir()
    gradient_image(19, 11).save(photos / "a.png")
    gradient_image(19, 11, seed=1).save(photos / "b.png")
    run = ("upscale.py", str(photos), "--out-dir", "out", "--checkpoint", str(weights))
    assert run_main(*run, cwd=tmp_path).returncode == 0
    made = f"upscale.py x2, {weights.parent.name} ({hashlib.sha256(weights.read_bytes()).hexdigest()[:8]})"
    assert made_by_of(tmp_path / "out" / "a_x2.png") == made
    # The same run again: kept, nothing to say; another setting: kept, and the line names what made it.
    assert "a_x2.png (up to date, kept)\n" in run_main(*run, cwd=tmp_path).stdout
    again = run_main(*run, "--ensemble", cwd=tmp_path).stdout
    assert f"a_x2.png (up to date, kept: made by {made}; --overwrite redoes it)" in again
    assert run_main(*run, "--ensemble", "--overwrite", cwd=tmp_path).returncode == 0
    assert made_by_of(tmp_path / "out" / "b_x2.png") == made + ", --ensemble"

    single = run_main("upscale.py", str(photos / "a.png"), "-o", "a.jpg", "--checkpoint", str(weights), cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    with pytest.raises(SystemExit):  # -o names one file: an existing one is refused before a model loads
        run_main("upscale.py", str(photos / "a.png"), "-o", "a.jpg", "--checkpoint", str(weights), cwd=tmp_path)
    assert "-o a.jpg exists; pass --overwrite to replace it" in capsys.readouterr().err
    assert made_by_of(tmp_path / "a.jpg") == made  # JPEG, WebP and TIFF keep it as PNG does
    for name in ("a.webp", "a.tif"):
        assert (
            run_main(
                "upscale.py", str(photos / "a.png"), "-o", name, "--checkpoint", str(weights), cwd=tmp_path
            ).returncode
            == 0
        )
        assert made_by_of(tmp_path / name) == made
    itself = run_main("upscale.py", "photos/a.png", "-o", "photos/a.png", "--checkpoint", str(weights), cwd=tmp_path)
    assert itself.returncode == 1 and "would replace the input" in itself.stderr  # not "exists": what it is
    (tmp_path / "mine.png").write_bytes((tmp_path / "out" / "a_x2.png").read_bytes()[:100])  # a broken file
    assert made_by_of(tmp_path / "mine.png") == ""
    # The same folder, other weights (a retrained model): its digest tells them apart.
    assert "a_x2.png (up to date, kept)\n" in run_main(*run, "--ensemble", cwd=tmp_path).stdout
    save_tiny_checkpoint(weights.parent, seed=9)
    assert "kept: made by " + made + ", --ensemble;" in run_main(*run, "--ensemble", cwd=tmp_path).stdout


def test_a_model_folder_named_in_any_script_is_recorded_so_a_rerun_finds_it_the_same(tmp_path, run_main):
    weights = save_tiny_checkpoint(tmp_path / "modèle")  # EXIF text is ASCII
    gradient_image(19, 11).save(tmp_path / "a.png")
    run = ("upscale.py", "a.png", "--out-dir", "out", "--checkpoint", str(weights))
    assert run_main(*run, cwd=tmp_path).returncode == 0
    assert made_by_of(tmp_path / "out" / "a_x2.png").startswith("upscale.py x2, mod\\xe8le (")
    assert "a_x2.png (up to date, kept)\n" in run_main(*run, cwd=tmp_path).stdout
