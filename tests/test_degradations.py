"""The ways of making a small image (srcnn/degradations.py), their record in prep's manifest, the
degradation table's arithmetic, and the router that picks the model for the kind of small image."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import gradient_image, tiny_router
from PIL import Image

from srcnn import degradations
from srcnn.config import PrepConfig
from srcnn.evaluation import degradation_summary, format_degradation_table
from srcnn.images import bicubic_degrade
from srcnn.preparation import prepare_folder
from srcnn.routing import TILE, Router, build_classifier, luma_tiles


@pytest.mark.parametrize("name", list(degradations.SUITE))
@pytest.mark.parametrize("scale", [2, 3])
def test_each_degradation_makes_the_small_size_the_same_way_every_time(name, scale):
    photo = gradient_image(6 * scale, 4 * scale, seed=3)
    recipe = degradations.recipe_for(name, seed=5)
    small = degradations.downscale(photo, scale, recipe)
    assert small.size == (6, 4) and small.mode == "RGB"
    assert np.array_equal(np.asarray(small), np.asarray(degradations.downscale(photo, scale, recipe)))
    enlarged = degradations.degrade(photo, scale, recipe)
    assert enlarged.size == photo.size


def test_the_ways_differ_and_the_protocol_is_the_blogs_bicubic():
    photo = gradient_image(32, 24, seed=1)
    smalls = {name: np.asarray(degradations.downscale(photo, 2, recipe)) for name, recipe in degradations.SUITE.items()}
    # At exactly 2x, OpenCV's linear and area and PIL's box all take the mean of each 2x2 block.
    assert np.abs(smalls["cv2-area"].astype(int) - smalls["box"]).max() <= 1
    assert np.array_equal(smalls["cv2-linear"], smalls["cv2-area"])
    distinct = {name: small for name, small in smalls.items() if name not in ("cv2-linear", "cv2-area")}
    for first in distinct:
        for second in distinct:
            if first < second:
                assert not np.array_equal(distinct[first], distinct[second]), (first, second)
    pil_round_trip = photo.resize((16, 12), Image.Resampling.BICUBIC).resize((32, 24), Image.Resampling.BICUBIC)
    assert np.array_equal(
        np.asarray(degradations.degrade(photo, 2, degradations.SUITE["bicubic"])), np.asarray(pil_round_trip)
    )
    assert np.array_equal(np.asarray(bicubic_degrade(photo, 2)), np.asarray(pil_round_trip))
    assert np.array_equal(smalls["cv2-nearest"], np.asarray(photo)[::2, ::2])  # every other pixel, from the first


def test_noise_is_seeded_and_parameters_parse():
    photo = gradient_image(16, 16)
    first, second = ({"name": "noise", "sigma": 3.0, "seed": seed} for seed in (1, 2))
    assert not np.array_equal(
        np.asarray(degradations.downscale(photo, 2, first)), np.asarray(degradations.downscale(photo, 2, second))
    )
    assert degradations.parse("blur:1.2") == {"name": "blur", "sigma": 1.2}
    assert degradations.parse("jpeg:90") == {"name": "jpeg", "quality": 90}
    assert degradations.parse("sharpen:150")["percent"] == 150
    assert degradations.label(degradations.parse("blur:1.2")) == "blur:1.2"
    assert degradations.label(degradations.parse("blur")) == "blur"
    for bad, reason in (("bicubc", "unknown degradation"), ("box:2", "takes no parameter"), ("jpeg:0", "1-100")):
        with pytest.raises(ValueError, match=reason):
            degradations.parse(bad)


def test_the_mix_draws_every_way_by_its_weight_from_the_seed():
    drawn = [degradations.draw_mix_recipe(seed) for seed in range(2000)]
    assert drawn == [degradations.draw_mix_recipe(seed) for seed in range(2000)]
    counts = {name: sum(recipe["name"] == name for recipe in drawn) for name, _ in degradations.MIX_WEIGHTS}
    total = sum(weight for _, weight in degradations.MIX_WEIGHTS)
    for name, weight in degradations.MIX_WEIGHTS:
        assert abs(counts[name] / len(drawn) - weight / total) < 0.03, name
    for recipe in drawn:
        degradations.validate(recipe)


def test_a_mix_of_some_ways_draws_only_those_by_their_weights():
    drawn = [degradations.recipe_for("mix:sharpen,cv2-nearest", seed) for seed in range(600)]
    assert {recipe["name"] for recipe in drawn} == {"sharpen", "cv2-nearest"}
    assert abs(sum(recipe["name"] == "sharpen" for recipe in drawn) / 600 - 0.5) < 0.07  # weights 2 and 2
    assert len({recipe.get("percent") for recipe in drawn}) > 20  # the strengths are drawn too
    assert drawn == [degradations.recipe_for("mix:sharpen,cv2-nearest", seed) for seed in range(600)]
    for bad in ("mix:sharpn", "mix:", "mix:jpeg"):  # JPEG is not in the mix: the JPEG models cover it
        with pytest.raises(ValueError, match="a mix draws from"):
            PrepConfig(degradation=bad).validate()
    PrepConfig(degradation="mix:sharpen", copies=2).validate()


def test_the_router_classifier_has_the_size_the_docs_give():
    assert build_classifier(4).count_params() == 65_252  # docs/degradations.md, "The router"


def test_pil_and_opencv_nearest_keep_pixels_half_a_pixel_apart():
    pixels = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    photo = Image.fromarray(pixels)
    pil = np.asarray(degradations.downscale(photo, 2, degradations.SUITE["nearest"]))
    opencv = np.asarray(degradations.downscale(photo, 2, degradations.SUITE["cv2-nearest"]))
    assert np.array_equal(pil, pixels[1::2, 1::2]) and np.array_equal(opencv, pixels[::2, ::2])
    # A half turn takes one to the other (why training keeps it: TrainConfig.turns "diagonal")...
    turned = degradations.downscale(photo.rotate(180), 2, degradations.SUITE["cv2-nearest"])
    assert np.array_equal(np.asarray(turned.rotate(180)), pil)
    # ...and a mirror across the diagonal keeps each the way it is; a left-right flip does not.
    mirrored = degradations.downscale(photo.transpose(Image.Transpose.TRANSPOSE), 2, degradations.SUITE["cv2-nearest"])
    assert np.array_equal(np.asarray(mirrored.transpose(Image.Transpose.TRANSPOSE)), opencv)
    flipped = degradations.downscale(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 2, degradations.SUITE["nearest"])
    assert not np.array_equal(np.asarray(flipped.transpose(Image.Transpose.FLIP_LEFT_RIGHT)), pil)


def test_a_mix_way_may_carry_its_own_weight():
    assert degradations.mix_weights("mix:cv2-nearest=1,cv2-cubic=3") == (("cv2-cubic", 3.0), ("cv2-nearest", 1.0))
    assert degradations.mix_weights("mix:sharpen,box=0.5") == (("box", 0.5), ("sharpen", 2))
    assert degradations.mix_weights("mix") == degradations.MIX_WEIGHTS
    drawn = [degradations.recipe_for("mix:cv2-cubic=3,cv2-nearest=1", seed)["name"] for seed in range(800)]
    assert abs(drawn.count("cv2-cubic") / 800 - 0.75) < 0.05
    # Without weights, the same draws as before weights could be given (prepared pairs stay up to date):
    # these are what the code drew then.
    before = {
        "mix": ["noise", "bicubic", "sharpen", "bilinear", "bilinear", "cv2-nearest", "blur", "lanczos"],
        "mix:box,cv2-cubic,cv2-nearest": ["cv2-nearest", "box", "cv2-nearest", "cv2-cubic"]
        + ["cv2-cubic", "cv2-nearest", "cv2-nearest", "cv2-cubic"],
    }
    for spec, names in before.items():
        assert [degradations.recipe_for(spec, seed)["name"] for seed in range(8)] == names, spec
    sharpened = {"name": "sharpen", "radius": 1.144, "percent": 77, "base": "lanczos"}
    assert degradations.recipe_for("mix:sharpen", 3) == sharpened
    assert degradations.mix_weights("mix:nearest,cv2-cubic") == (("cv2-cubic", 2), ("nearest", 1.0))  # a suite way
    bad_specs = ("mix:cv2-cubic=0", "mix:cv2-cubic=-1", "mix:cv2-cubic=x", "mix:cv2-cubic=inf", "mix:cubic=2")
    bad_specs += ("mix:cv2-cubic=3,cv2-cubic=1", "mix:cv2-cubic=", "mix:box,,sharpen", "mix:box=1_0")
    for bad in bad_specs:
        with pytest.raises(ValueError, match="each once, with an optional positive weight"):
            PrepConfig(degradation=bad).validate()


def test_prep_records_each_pairs_own_recipe_and_remakes_the_same_pixels(photo_folder, tmp_path):
    config = PrepConfig(size=24, degradation="mix", copies=3)
    first = prepare_folder(photo_folder, tmp_path / "a", config, progress=False)
    prepare_folder(photo_folder, tmp_path / "b", config, progress=False)
    assert first.written == 18  # six photos, three draws each
    pairs = json.loads((tmp_path / "a" / "manifest.json").read_text())["pairs"]
    assert len({json.dumps(pair["prep"]["degradation"], sort_keys=True) for pair in pairs}) > 3
    for pair in pairs:
        low_res = tmp_path / "a" / pair["lr"]
        assert low_res.read_bytes() == (tmp_path / "b" / pair["lr"]).read_bytes()  # seeded, not random
        with Image.open(tmp_path / "a" / pair["hr"]) as high_res:  # the record remakes the file exactly
            remade = degradations.degrade(high_res.convert("RGB"), 2, pair["prep"]["degradation"])
        with Image.open(low_res) as made:
            assert np.array_equal(np.asarray(made), np.asarray(remade))
    named = prepare_folder(photo_folder, tmp_path / "c", PrepConfig(size=24, degradation="cv2-nearest"), progress=False)
    assert named.written == 6  # one pair per photo, under the photo's own name
    entries = json.loads((tmp_path / "c" / "manifest.json").read_text())["pairs"]
    assert {json.dumps(entry["prep"]["degradation"]) for entry in entries} == {'{"name": "cv2-nearest"}'}
    with pytest.raises(ValueError, match="unknown degradation"):
        PrepConfig(degradation="nearest-neighbour").validate()


def test_the_degradation_table_adds_up():
    rows = [
        {"psnr_y": 31.0, "bicubic_psnr_y": 30.0, "model": "sharpened"},
        {"psnr_y": 29.0, "bicubic_psnr_y": 30.0, "model": "clean"},
        {"psnr_y": 33.0, "bicubic_psnr_y": 30.0, "model": "sharpened"},
    ]
    summary = degradation_summary(rows)
    assert summary["gain"] == pytest.approx(1.0) and summary["below"] == 1
    assert summary["models"] == {"clean": 1, "sharpened": 2}
    assert summary["psnr_y"] == pytest.approx(31.0) and summary["images"] == 3
    other = degradation_summary([{"psnr_y": 30.0, "bicubic_psnr_y": 30.5}])
    table = format_degradation_table({"bicubic": summary, "cv2-cubic": other})
    lines = table.splitlines()
    assert "+1.00" in lines[2] and "1 of 3" in lines[2] and lines[2].endswith("clean 1, sharpened 2")
    assert "-0.50" in lines[3] and lines[3].endswith("1 of 1")  # below bicubic; no model named
    assert lines[-1].split() == ["mean", "+0.25"]  # the mean of the two ways' gains


def photo_crop(size: int = 96) -> Image.Image:
    """A textured piece of a real photo (scikit-image ships it): fine detail to alias or sharpen."""
    import skimage.data

    return Image.fromarray(skimage.data.astronaut()[64 : 64 + size, 256 - size // 2 : 256 + size // 2])


def test_the_shipped_router_reads_how_a_real_photo_was_made_small():
    from srcnn.checkpoints import ROUTER_DIR

    router = Router.load(ROUTER_DIR)
    photo = Image.fromarray(np.asarray(photo_crop(512))[:256, :256])
    # Sharpened pieces of these photos are mostly read as smooth (docs/degradations.md: the open gap).
    for way, model in (("bicubic", "clean"), ("cv2-cubic", "unfiltered")):
        small = np.asarray(degradations.downscale(photo, 2, degradations.SUITE[way]))
        assert router.choose(small)[0] == model, (way, router.reading(small))
    for unreadable in (np.full((64, 64, 3), 255, np.uint8), small[:2], small[:31, :200]):  # flat, 2 or 31 px
        assert router.choose(unreadable) == ("clean", "too flat or too small to read how it was made")


def test_tiles_are_textured_grid_pieces_whose_brightness_and_contrast_do_not_count():
    pixels = np.asarray(photo_crop(128)).astype(np.float64)
    tiles = luma_tiles(pixels.astype(np.uint8))
    assert tiles.shape[1:] == (TILE, TILE, 1) and 1 <= len(tiles) <= 16
    assert np.allclose(tiles.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    assert np.allclose(tiles.std(axis=(1, 2, 3)), 1, atol=1e-3)
    brighter = luma_tiles(np.rint(pixels * 0.8 + 30).astype(np.uint8))
    assert len(brighter) == len(tiles) and np.abs(brighter - tiles).mean() < 0.02  # rounding only
    flat = np.asarray(photo_crop(128)).copy()
    flat[:64] = 128  # the top half flat: its tiles are left out
    assert 1 <= len(luma_tiles(flat)) < len(tiles)
    assert len(luma_tiles(np.asarray(photo_crop(512)), max_tiles=10)) == 10  # evenly spread over a large photo
    textured = np.asarray(photo_crop(64))
    side_by_side, overlapping = luma_tiles(textured), luma_tiles(textured, stride=16)
    assert len(side_by_side) == 4 and len(overlapping) == 9  # docs/router_floor.py --stride 16
    np.testing.assert_array_equal(overlapping[[0, 2, 6, 8]], side_by_side)  # every other one is a side-by-side tile


def test_a_router_saved_and_loaded_reads_the_same_and_follows_its_bias(tmp_path):
    small = np.asarray(photo_crop(128))
    router = tiny_router(tmp_path / "a")
    again = Router.load(tmp_path / "a")
    assert np.allclose(router.reading(small), again.reading(small))
    for kind, model in enumerate(router.models):
        bias = tuple(50.0 * (index == kind) for index in range(3))
        assert tiny_router(tmp_path / model, bias).choose(small)[0] == model


def test_a_router_reads_a_small_image_for_3x_and_4x_with_the_biases_fitted_for_that_scale(tmp_path):
    router = tiny_router(tmp_path / "a", bias=(0.0, 0.0, 50.0))  # at 2x every image reads as sharpened
    router.scale_bias = {"4": (50.0, 0.0, 0.0)}  # at 4x as smooth
    router.save(tmp_path / "b")
    again = Router.load(tmp_path / "b")
    small = np.asarray(photo_crop(128))
    assert [again.choose(small, scale)[0] for scale in (2, 3, 4)] == ["sharpened", "sharpened", "clean"]
    assert np.allclose(again.reading(small, 4) - again.reading(small, 2), (50.0, 0.0, -50.0))
    record = json.loads((tmp_path / "b" / "router.json").read_text())
    record["scale_bias"] = {"3": [1.0, 2.0]}  # a bias short
    (tmp_path / "b" / "router.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="router.json: scale_bias must hold a bias per kind"):
        Router.load(tmp_path / "b")


def test_a_router_may_give_two_kinds_to_one_model_and_says_so(tmp_path):
    router = tiny_router(tmp_path, bias=(0.0, 0.0, 50.0))  # every image reads as sharpened
    router.models = ("clean", "unfiltered", "unfiltered")  # as the shipped router gives box-filtered
    name, why = router.choose(np.asarray(photo_crop(128)))
    assert name == "unfiltered" and why.endswith("; the unfiltered model takes unfiltered and sharpened images")


def test_a_router_with_gains_takes_the_model_of_the_largest_expected_gain_and_hedges_when_unsure(tmp_path):
    kinds = ("smooth", "unfiltered", "sharpened")
    # Rows: kinds; columns: models. The unfiltered model is nobody's best but nowhere far below bicubic.
    gain = ((2.0, 1.2, -1.0), (-2.0, 0.8, -0.5), (-2.5, 1.0, 3.0))
    router = Router(kinds, ("clean", "unfiltered", "sharpened"), (0.0, 0.0, 0.0), gain=gain)
    for shares, model in (((0.9, 0.05, 0.05), 0), ((0.05, 0.05, 0.9), 2), ((0.5, 0.0, 0.5), 1), ((0.45, 0.1, 0.45), 1)):
        reading = np.log(np.maximum(shares, 1e-9))
        expected = np.asarray(shares) @ np.asarray(gain)
        assert router.pick(reading) == model == int(np.argmax(expected)), shares
        assert np.allclose(router.expected_gain(reading), expected, atol=1e-6)
    assert Router(kinds, router.models, (0.0, 0.0, 0.0)).pick(np.log([0.5, 0.01, 0.49])) == 0  # no gains: the kind
    router.classifier = build_classifier(3)
    router.save(tmp_path / "g")
    again = Router.load(tmp_path / "g")
    assert again.gain == gain
    small = np.asarray(photo_crop(128))
    name, why = again.choose(small)
    assert name == again.models[again.pick(again.reading(small))] and "expected gain over bicubic" in why
    record = json.loads((tmp_path / "g" / "router.json").read_text())
    for gain in ([[1.0, 2.0]] * 3, [[1.0, 2.0, float("nan")]] * 3):  # a value short; not a number
        record["gain"] = gain
        (tmp_path / "g" / "router.json").write_text(json.dumps(record))
        with pytest.raises(ValueError, match="router.json: gain must hold a row per kind and a finite value"):
            Router.load(tmp_path / "g")


def test_test_py_scores_every_way_with_the_model_upscale_py_would_pick(tmp_path, run_main, monkeypatch):
    """test.py --degradation all --model auto on two tiny photos: a line per way, the routed count,
    and the JSON's per-way summary equal to its rows' arithmetic; a JPEG way goes to the JPEG model."""
    from conftest import save_tiny_checkpoint

    from srcnn import checkpoints

    names = ("clean", "unfiltered", "sharpened", "jpeg-low", "jpeg-high")
    for seed, name in enumerate(names):
        monkeypatch.setitem(checkpoints.SHIPPED_WEIGHTS, name, save_tiny_checkpoint(tmp_path / name, seed=seed))
    folder = tmp_path / "photos"
    folder.mkdir()
    photo_crop().save(folder / "piece.png")
    gradient_image(40, 36, seed=2).save(folder / "gradient.png")
    result = run_main(
        "test.py",
        "--benchmark",
        str(folder),
        "--degradation",
        "all",
        "--model",
        "auto",
        "--json",
        "s.json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    table = result.stdout.splitlines()
    for way in degradations.SUITE:
        assert any(line.split()[:1] == [way] for line in table), way
    report = json.loads((tmp_path / "s.json").read_text())["degradations"]
    assert list(report) == list(degradations.SUITE)
    for way, scored in report.items():
        expected = degradation_summary(scored["images"])
        assert scored["summary"].pop("models") == expected.pop("models"), way
        assert scored["summary"] == pytest.approx(expected), way
    assert {row["model"] for row in report["jpeg"]["images"]} == {"jpeg-low"}  # quality 75
    assert {row["model"] for row in report["cv2-nearest"]["images"]} <= {"clean", "unfiltered", "sharpened"}
    with pytest.raises(SystemExit) as refused:  # argparse's one line and exit status 2
        run_main("test.py", "--benchmark", str(folder), "--degradation", "nearest-neighbour", cwd=tmp_path)
    assert refused.value.code == 2


def test_a_broken_router_is_one_line_naming_the_file(tmp_path):
    tiny_router(tmp_path)
    path = tmp_path / "router.json"
    for text in ("[1, 2]", '{"kinds": ["a"], "models": ["clean"], "bias": [0]}', "not json"):
        path.write_text(text)
        with pytest.raises(ValueError, match=str(path)):
            Router.load(tmp_path)
    tiny_router(tmp_path)
    (tmp_path / "classifier.keras").write_bytes(b"not a keras file")
    with pytest.raises(ValueError, match="classifier.keras: not a classifier"):
        Router.load(tmp_path)


def test_prep_takes_copies_under_their_old_name_too():
    from conftest import load_script

    parser = load_script("prep_images.py").build_parser()
    assert parser.parse_args(["--input", "x", "--jpeg-copies", "3"]).copies == 3
    assert parser.parse_args(["--input", "x", "--degradation", "mix", "--copies", "2"]).copies == 2


def test_blend_weights_writes_the_weight_by_weight_blend_and_scores_a_grid(tmp_path, run_main):
    """docs/blend_weights.py (how the shipped unfiltered model was made): beta 0 and 1 are the two
    fine-tunes, 0.25 their weighted mean, written beside the start's config; scoring picks the
    beta whose worst way gains most."""
    from conftest import save_tiny_checkpoint

    from srcnn.checkpoints import load_for_inference

    start, end = save_tiny_checkpoint(tmp_path / "a", seed=1), save_tiny_checkpoint(tmp_path / "b", seed=2)
    result = run_main("docs/blend_weights.py", str(start), str(end), "--beta", "0.25", "--out", "blend", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    blended = load_for_inference(tmp_path / "blend" / "best.weights.h5")[0].get_weights()
    for a, b, mixed in zip(
        load_for_inference(start)[0].get_weights(), load_for_inference(end)[0].get_weights(), blended, strict=True
    ):
        assert np.allclose(mixed, 0.75 * a + 0.25 * b, atol=1e-6)
    photos = tmp_path / "photos"
    photos.mkdir()
    photo_crop(48).save(photos / "piece.png")
    grid = ("--betas", "0,1", "--photos", "photos")
    result = run_main("docs/blend_weights.py", str(start), str(end), *grid, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.split()[:1] in (["0.00"], ["1.00"])}
    worst = {float(beta): min(map(float, re.findall(r"([+-]\d+\.\d+) \(", line))) for beta, line in rows.items()}
    assert len(worst) == 2 and f"picked: beta {max(worst, key=worst.get)} " in result.stdout


def test_the_router_floor_measurement_sends_unsure_readings_to_the_clean_model():
    """docs/router_floor.py: a reading whose top kind holds less than the floor goes to the clean model."""
    from conftest import load_script

    from srcnn.routing import Router

    pick = load_script("docs/router_floor.py").floored_pick
    router = Router(("smooth", "sharpened"), ("clean", "sharpened"), (0.0, 0.0))
    sure, unsure = np.log([0.2, 0.8]), np.log([0.4, 0.6])
    assert pick(router, sure, 0.0) == pick(router, sure, 0.7) == "sharpened"
    assert pick(router, unsure, 0.5) == "sharpened" and pick(router, unsure, 0.7) == "clean"
    assert pick(router, None, 0.0) == "clean"  # too flat to read
