"""x3 and x4: the scale from prep to train to test to upscale, passes after the x2 model, exact sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import gradient_image, save_tiny_checkpoint
from PIL import Image

from srcnn.checkpoints import BEST_WEIGHTS_NAME, CONFIG_NAME, CheckpointError, read_run_record, write_run_record
from srcnn.config import ModelConfig, PrepConfig, TrainConfig
from srcnn.dataset import DataError
from srcnn.images import whole_high_res
from srcnn.network import build_model
from srcnn.passes import enlarge, first_pass_input, load_passes, pass_chain
from srcnn.preparation import prepare_folder
from srcnn.training import enlargement
from srcnn.upscaling import split_modes, upscale_in_passes


def save_second_pass(folder: Path, first: Path, scale: int) -> Path:
    """A tiny network recorded as trained on pairs made by `first`, then bicubic to x`scale`."""
    folder.mkdir(parents=True)
    config = ModelConfig(filters=6)
    build_model(config).save_weights(folder / BEST_WEIGHTS_NAME)
    write_run_record(folder, config, TrainConfig(), {"scale": scale, "first_pass": str(first)}, folder / "results")
    return folder / BEST_WEIGHTS_NAME


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """{2: a tiny x2 model, 3: a x3 model after it, 4: a x4 model after it}."""
    root = tmp_path_factory.mktemp("models")
    x2 = save_tiny_checkpoint(root / "x2")
    return {2: x2, 3: save_second_pass(root / "x3", x2, 3), 4: save_second_pass(root / "x4", x2, 4)}


def test_a_second_pass_names_the_first_relative_to_itself(chain):
    record = json.loads((chain[4].parent / CONFIG_NAME).read_text())
    assert record["data"] == {"scale": 4, "first_pass": "../x2/best.weights.h5"}
    assert pass_chain(chain[4]) == [(chain[2].resolve(), 2), (chain[4], 4)]
    assert pass_chain(chain[2]) == [(chain[2], 2)]  # a record without a scale: x2


def test_a_pass_must_enlarge_more_than_the_one_before(chain, tmp_path):
    backwards = save_second_pass(tmp_path / "x2-after-x3", chain[3], 2)
    with pytest.raises(CheckpointError, match="cannot follow"):
        pass_chain(backwards)


@pytest.mark.parametrize("scale", [3, 4])
@pytest.mark.parametrize("width, height", [(13, 7), (20, 11)])
def test_exact_sizes_at_3_and_4_for_odd_inputs(chain, scale, width, height):
    passes = load_passes(chain[scale])
    stages = [(step.model.predict_on_batch, step.config, step.scale) for step in passes]
    photo = gradient_image(width, height, seed=scale).convert("RGBA")
    result = upscale_in_passes(stages, split_modes(photo), tile=16)
    assert result.size == (scale * width, scale * height) and result.mode == "RGBA"
    assert enlarge(passes, photo.convert("RGB")).shape == (scale * height, scale * width, 3)  # benchmarks, prep
    grey = split_modes(photo.convert("LA"))  # and with --ensemble, whose quarter turns swap the sides
    ensemble = upscale_in_passes(stages, grey, tile=16, ensemble=True)
    assert ensemble.size == (scale * width, scale * height) and ensemble.mode == "LA"


def test_prep_makes_second_pass_pairs_and_records_them(chain, photo_folder, tmp_path):
    data = tmp_path / "data"
    # --whole at x3 with the default --size (128, not a multiple of 3): the size does not apply.
    config = PrepConfig(mode="whole", scale=3, split="train", first_pass=str(chain[2]))
    prepare_folder(photo_folder, data, config, progress=False)
    manifest = json.loads((data / "manifest.json").read_text())
    entry = manifest["pairs"][0]
    assert entry["prep"] == {"mode": "whole", "scale": 3, "first_pass": str(chain[2])}
    high_res = Image.open(data / entry["hr"])
    assert high_res.width % 3 == 0 and high_res.height % 3 == 0
    small = high_res.resize((high_res.width // 3, high_res.height // 3), Image.Resampling.BICUBIC)
    expected = first_pass_input(chain[2], small, high_res.size)
    np.testing.assert_array_equal(np.asarray(Image.open(data / entry["lr"])), np.asarray(expected))
    assert enlargement(data, manifest["pairs"]) == {"scale": 3, "first_pass": str(chain[2])}


def test_training_refuses_pairs_of_several_enlargements(tmp_path):
    made = [{"prep": {"scale": 2}}, {"prep": {"scale": 4, "first_pass": "/m/x2.weights.h5"}}]
    with pytest.raises(DataError, match="several enlargements"):
        enlargement(tmp_path, made)
    assert enlargement(tmp_path, []) == {"scale": 2}


def test_upscale_takes_the_scale_of_its_model_and_refuses_another(chain, run_main, tmp_path):
    gradient_image(15, 9).save(tmp_path / "photo.png")
    done = run_main("upscale.py", "photo.png", "--out-dir", "big", "--checkpoint", str(chain[4]), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"model: {chain[2].resolve()} (--checkpoint), then {chain[4]} (the x4 second pass)" in done.stdout
    assert Image.open(tmp_path / "big" / "photo_x4.png").size == (60, 36)
    refused = run_main(
        "upscale.py", "photo.png", "-o", "x.png", "--checkpoint", str(chain[4]), "--scale", "2", cwd=tmp_path
    )
    assert refused.returncode == 2 and "a x4 model, not x2" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.png").exists()


def test_another_x2_model_can_run_first_but_only_one_of_the_first_pass_scale(chain, tmp_path):
    other = save_tiny_checkpoint(tmp_path / "other-x2", seed=5)
    assert pass_chain(chain[3], first=other) == [(other, 2), (chain[3], 3)]
    with pytest.raises(CheckpointError, match="x3 model cannot replace the x2 first pass"):
        pass_chain(chain[4], first=chain[3])
    with pytest.raises(CheckpointError, match="no first pass to replace"):
        pass_chain(chain[2], first=other)


@pytest.mark.parametrize("scale", [3, 4])
def test_at_3_and_4_the_x2_model_picked_for_the_photo_runs_first(chain, run_main, tmp_path, monkeypatch, caplog, scale):
    from conftest import tiny_router

    from srcnn import checkpoints

    shipped = {"clean": chain[2], "unfiltered": save_tiny_checkpoint(tmp_path / "unfiltered", seed=7)}
    shipped["jpeg-low"] = save_tiny_checkpoint(tmp_path / "jpeg-low", seed=8)
    shipped["jpeg-high"] = save_tiny_checkpoint(tmp_path / "jpeg-high", seed=9)
    for name, weights in shipped.items():
        monkeypatch.setitem(checkpoints.SHIPPED_WEIGHTS, name, weights)
    monkeypatch.setitem(checkpoints.SHIPPED_BY_SCALE, scale, chain[scale])
    after_other = save_second_pass(tmp_path / f"x{scale}-routed", chain[2], scale)  # its own, to tell apart
    monkeypatch.setitem(checkpoints.AFTER_OTHER_X2, scale, after_other)
    tiny_router(tmp_path / "router", bias=(0.0, 50.0, 0.0))  # reads every lossless image as unfiltered
    monkeypatch.setattr(checkpoints, "ROUTER_DIR", tmp_path / "router")
    photos = tmp_path / "photos"
    photos.mkdir()
    gradient_image(40, 36, seed=1).save(photos / "a.png")  # big enough for the router to read
    gradient_image(14, 10, seed=2).save(photos / "b.jpg", quality=70)
    gradient_image(14, 10, seed=3).save(photos / "c.jpg", quality=90)
    gradient_image(14, 10, seed=4).save(photos / "d.png")  # too small to read: the clean model's chain

    done = run_main(
        "upscale.py", "photos", "--out-dir", "big", "--scale", str(scale), "--runtime", "keras", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    # Eight networks traced once each: no warning of "excessive retracing" (it counts traces by code).
    assert not [record for record in caplog.records if "retracing" in record.getMessage()]
    assert f"with {chain[2].resolve()}, then {chain[scale]}:" in done.stdout  # every pass named
    for photo, first in (("a.png", "unfiltered"), ("b.jpg", "jpeg-low"), ("c.jpg", "jpeg-high")):
        assert f"with {shipped[first]}, then {after_other}:" in done.stdout
        passes = load_passes(after_other, shipped[first])
        stages = [(step.model.predict_on_batch, step.config, step.scale) for step in passes]
        with Image.open(photos / photo) as image:
            expected = upscale_in_passes(stages, split_modes(image))
        with Image.open(tmp_path / "big" / f"{photo[0]}_x{scale}.png") as made:
            np.testing.assert_array_equal(np.asarray(made), np.asarray(expected))
    named = run_main(
        "upscale.py", "photos/a.png", "-o", "c.png", "--scale", str(scale), "--model", "clean", cwd=tmp_path
    )
    assert named.returncode == 0, named.stderr
    own = f"the x{scale} model's own first pass (from the clean model), --model clean"
    assert f"model: {chain[2].resolve()} ({own}), then {chain[scale]}" in named.stdout

    (tmp_path / "set").mkdir()
    gradient_image(40 * scale, 36 * scale, seed=3).save(tmp_path / "set" / "a.png")  # small: 40x36
    scored = run_main("test.py", "--benchmark", "set", "--scale", str(scale), "--model", "auto", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert f"model unfiltered: {shipped['unfiltered']}, then {after_other}" in scored.stdout
    named = run_main("test.py", "--benchmark", "set", "--scale", str(scale), "--model", "jpeg-low", cwd=tmp_path)
    assert named.returncode == 0, named.stderr
    assert f"(x{scale}, after {shipped['jpeg-low']};" in named.stdout and str(after_other) in named.stdout


def test_benchmark_scores_a_model_at_its_own_scale(chain, run_main, tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    gradient_image(26, 22, seed=1).save(folder / "a.png")
    done = run_main("test.py", "--benchmark", "set", "--checkpoint", str(chain[3]), "--json", "s.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "x3" in done.stdout
    # The protocol at x3: the image cropped to 24x21, a 3-pixel shave.
    scores = json.loads((tmp_path / "s.json").read_text())["images"][0]
    assert scores["psnr_y"] > 0
    refused = run_main("test.py", "--benchmark", "set", "--checkpoint", str(chain[3]), "--scale", "4", cwd=tmp_path)
    assert refused.returncode == 2 and "a x3 model, not x4" in refused.stderr


def test_a_first_pass_must_enlarge_less_than_the_pairs(chain):
    with pytest.raises(ValueError, match="already enlarges x2"):
        PrepConfig(mode="whole", scale=2, first_pass=str(chain[2])).validate()
    PrepConfig(mode="whole", scale=4, first_pass=str(chain[2])).validate()


def test_a_run_recorded_before_scales_were_keeps_its_scale():
    from srcnn.config import record_scale

    assert record_scale({"data": {"train": {"prep": [{"mode": "whole", "scale": 3, "pairs": 9}]}}}) == 3
    assert record_scale({}) == 2


@pytest.mark.slow  # five short trainings: 15 s, the fast suite's largest
def test_end_to_end_trains_both_passes_and_its_graph_enlarges_as_upscale_does(
    chain, run_main, tmp_path, capsys, monkeypatch
):
    """docs/end_to_end.py: the trained graph (bicubic inside it) gives what srcnn.passes.enlarge
    gives with 8-bit pixels between the passes, up to that rounding; the run writes two passes that
    upscale.py and test.py load as one x3 model, and a history row per epoch."""
    from conftest import load_script

    from srcnn.network import from_model_range, to_model_range

    script = load_script("docs/end_to_end.py")
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(3):
        gradient_image(99, 105, seed=index).save(photos / f"p{index}.png")
    (tmp_path / "val.txt").write_text("p0.png\n")
    high_res = whole_high_res(Image.open(photos / "p0.png"), 3)
    small, first_input = script.small_and_first_input(high_res, 3)
    assert first_input.shape == (2 * small.height, 2 * small.width, 3)
    passes = load_passes(chain[3])
    trainable = script.build_trainable(passes[0].model, passes[1].model, 3)
    in_graph = from_model_range(trainable(to_model_range(first_input[np.newaxis])).numpy()[0]).astype(int)
    difference = np.abs(in_graph - enlarge(passes, small).astype(int))
    assert difference.max() <= 3 and difference.mean() < 0.5, (difference.max(), difference.mean())

    argv = ["photos", "--val-names", "val.txt", "--start", str(chain[3]), "--out", "e2e", "--epochs", "1"]
    done = run_main("docs/end_to_end.py", *argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 training photos" in done.stdout and "1 validation" in done.stdout
    assert pass_chain(tmp_path / "e2e" / BEST_WEIGHTS_NAME) == [
        (tmp_path / "e2e" / "first-pass" / BEST_WEIGHTS_NAME, 2),
        (tmp_path / "e2e" / BEST_WEIGHTS_NAME, 3),
    ]
    assert [row.split(",")[0] for row in (tmp_path / "e2e" / "history.csv").read_text().splitlines()] == [
        "epoch", "0", "1"
    ]  # fmt: skip
    # Resumed, a run goes on from OUT/latest: moved by 0.5 here, its weights must stay near there.
    latest_first = tmp_path / "e2e" / "latest" / "first-pass" / BEST_WEIGHTS_NAME
    moved = load_passes(latest_first)[0].model
    moved.set_weights([weights + 0.5 for weights in moved.get_weights()])
    moved.save_weights(latest_first)
    with pytest.raises(SystemExit):  # a finished run is not started again over itself
        run_main("docs/end_to_end.py", *argv, cwd=tmp_path)
    with pytest.raises(SystemExit):  # nor resumed with other settings
        run_main("docs/end_to_end.py", *argv[:-1], "2", "--resume", cwd=tmp_path)
    assert "--resume takes those settings again" in capsys.readouterr().err
    refused = {  # settings that would waste a run, and the flag each error names
        ("--crop", "95"): "not a multiple of the scale",
        ("--border", "48"): "nor two as wide as the crop",
        ("--border", "-1"): "no border under 0",
        ("--downscales", "0.9,1.5"): "factors between 0 and 1",
        ("--repeat", "0"): "--repeat and --epochs 1 or more",
        ("--luma-weight", "1.5"): "--luma-weight 1.5: a weight from 0 to 1",
        ("--crop", "300"): "no training photo of 300 pixels or more a side",
    }
    for (flag, value), reason in refused.items():
        with pytest.raises(SystemExit):
            run_main("docs/end_to_end.py", *argv[:6], "other", flag, value, cwd=tmp_path)
        assert reason in capsys.readouterr().err, (flag, value)
    assert not (tmp_path / "other").exists()  # refused before anything is written
    # A run recorded before --crop, --border, --downscales, --repeat, --loss, --reparam, --distill and
    # --luma-weight ran with their defaults.
    (tmp_path / "e2e" / "run.json").write_text(
        json.dumps({"start": str(chain[3]), "epochs": 2, "learning_rate": 2e-4}) + "\n"
    )  # as if it had been asked for 2 epochs and stopped after 1
    again = run_main("docs/end_to_end.py", *argv[:-1], "2", "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "epoch 2:" in again.stdout and "epoch 1:" not in again.stdout
    history = (tmp_path / "e2e" / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history] == ["epoch", "0", "1", "2"]
    resumed = load_passes(latest_first)[0].model.get_weights()
    assert max(np.abs(a - b).max() for a, b in zip(resumed, moved.get_weights(), strict=True)) < 0.1

    # A second stage from this run (smaller copies of the photos, as the shipped x3's) keeps the first on record.
    start = str(tmp_path / "e2e" / BEST_WEIGHTS_NAME)
    stage = ["photos", "--val-names", "val.txt", "--start", start, "--out", "stage2", "--epochs", "1"]
    stage += ["--downscales", "0.98", "--repeat", "1", "--reparam", "--luma-weight", "0.5"]
    import srcnn.network

    luma_weights = []  # what the loss that trains is given, not only what the record says

    class RecordedLoss(srcnn.network.PixelLoss):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            luma_weights.append(self.luma_weight)

    monkeypatch.setattr(srcnn.network, "PixelLoss", RecordedLoss)
    done = run_main("docs/end_to_end.py", *stage, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert luma_weights == [0.5]
    assert "6 training photos" in done.stdout  # p1, p2, each at 0.98, and the fourth of them on two squares
    for folder in ("stage2", "stage2/first-pass"):
        note = read_run_record(tmp_path / folder)["end_to_end"]
        assert note["downscales"] == [0.98] and note["after"]["start"] == str(chain[3]), note
        assert note["reparam"] is True and note["luma_weight"] == 0.5
    # Re-parameterized, its epoch 0 is the start's function exactly (the extra branches at zero), and
    # what it saves is the blog's network again, as upscale.py loads it.
    rows = [line.split(",") for line in (tmp_path / "stage2" / "history.csv").read_text().splitlines()]
    first_stage = [line.split(",") for line in (tmp_path / "e2e" / "history.csv").read_text().splitlines()]
    assert abs(float(rows[1][2]) - max(float(row[2]) for row in first_stage[1:])) < 0.01, (rows, first_stage)
    assert len(load_passes(tmp_path / "stage2" / "latest" / BEST_WEIGHTS_NAME)) == 2


@pytest.mark.parametrize("scale", [3, 4])
def test_the_shipped_x3_and_x4_run_their_own_first_pass_and_the_routed_ones_the_second_pass_made_after_clean(scale):
    from srcnn.checkpoints import AFTER_OTHER_X2, SHIPPED_BY_SCALE, SHIPPED_WEIGHTS, shipped_passes

    own = pass_chain(*shipped_passes("clean", scale))
    assert own == [
        (SHIPPED_BY_SCALE[scale].parent / "first-pass" / BEST_WEIGHTS_NAME, 2),
        (SHIPPED_BY_SCALE[scale], scale),
    ]
    routed = pass_chain(*shipped_passes("sharpened", scale))
    assert routed == [(SHIPPED_WEIGHTS["sharpened"], 2), (AFTER_OTHER_X2[scale], scale)]
    # The routed second pass was trained after the clean x2 model, which its record names.
    assert pass_chain(AFTER_OTHER_X2[scale])[0][0] == SHIPPED_WEIGHTS["clean"].resolve()
    with pytest.raises(CheckpointError, match="trained together with its own first pass"):
        pass_chain(SHIPPED_BY_SCALE[scale], first=SHIPPED_WEIGHTS["unfiltered"])


def test_white_edges_tells_a_speck_in_the_background_from_a_darker_edge():
    """docs/white_edges.py: of the pure white pixels test.py counts, those an output moves, by their
    distance to the nearest pixel that is not white, and by how many levels."""
    from conftest import load_script

    from srcnn.metrics import flat_region_kept

    script = load_script("docs/white_edges.py")
    photo = np.full((40, 40, 3), 255, np.uint8)
    photo[10:20, 10:20] = 0  # the product
    output = photo.copy()
    output[10:20, 22] = 240  # beside its edge: 3 pixels out, 15 levels
    output[35, 15] = 254  # a speck in the background, 16 pixels out
    output[0, 0] = 200  # the photo's border, which test.py does not count
    counted, distances, levels = script.moved_white(photo, output)
    pixels, kept = flat_region_kept(photo, 255, output)
    assert counted == pixels and len(distances) == pixels - kept == 11
    moved = sorted(zip(distances.round(1).tolist(), levels.tolist(), strict=True))
    assert moved == [(3.0, 15)] * 10 + [(16.0, 1)]


@pytest.mark.slow
def test_the_x3_lab_tries_start_where_the_model_is(run_main, tmp_path, capsys):
    """docs/third_pass.py: the third network starts as the identity, so the three passes score as
    the two did (within the identity start's noise), then train; docs/average_passes.py: a model
    averaged with itself scores as it does."""
    from conftest import load_script

    x2 = save_tiny_checkpoint(tmp_path / "x2", filters=27)
    folder = tmp_path / "x3"
    folder.mkdir()
    config = ModelConfig(filters=27)  # the third pass takes this config: initialize_identity needs 27 filters
    build_model(config).save_weights(folder / BEST_WEIGHTS_NAME)
    write_run_record(folder, config, TrainConfig(), {"scale": 3, "first_pass": str(x2)}, folder / "results")
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(3):
        gradient_image(99, 105, seed=index).save(photos / f"p{index}.png")
    (tmp_path / "val.txt").write_text("p0.png\n")
    x3 = str(folder / BEST_WEIGHTS_NAME)

    averaged = run_main("docs/average_passes.py", "photos", "--val-names", "val.txt", x3, x3, cwd=tmp_path)
    assert averaged.returncode == 0, averaged.stderr
    scores = [float(line.split()[0]) for line in averaged.stdout.splitlines() if " dB " in line]
    assert len(scores) == 3 and max(scores) - min(scores) < 1e-6, averaged.stdout
    two = load_script("docs/average_passes.py")
    assert [[w.tolist() for w in p] for p in two.mean_weights([[[np.ones(2)]], [[np.zeros(2)]]])] == [[[0.5, 0.5]]]

    argv = ["photos", "--val-names", "val.txt", "--start", x3, "--out", "third", "--epochs", "1", "--freeze", "1"]
    done = run_main("docs/third_pass.py", *argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = (tmp_path / "third" / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["epoch", "0", "1"]
    start = float(rows[1].split(",")[2])
    assert abs(start - scores[0]) < 0.2, (start, scores[0])  # the identity start changes next to nothing

    def weights(path):
        network = build_model(config)
        network.load_weights(path)
        return network.get_weights()

    def same(first, second):
        return all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))

    frozen = [weights(tmp_path / "third" / "latest" / f"{number}.weights.h5") for number in (1, 2)]
    assert same(frozen[0], weights(x2)) and same(frozen[1], weights(x3))  # only the third trained
    # One epoch more after the freeze: the schedule goes on with all three passes training.
    common = argv[:5]  # the photos, --val-names, --start
    done = run_main("docs/third_pass.py", *common, "--out", "all", "--epochs", "2", "--freeze", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not same(weights(tmp_path / "all" / "latest" / "1.weights.h5"), weights(x2))
    with pytest.raises(SystemExit):  # a model that is not there: one line, no traceback
        run_main("docs/third_pass.py", *argv[:3], "--start", "missing.weights.h5", "--out", "none", cwd=tmp_path)
    assert "missing.weights.h5: no such checkpoint" in capsys.readouterr().err


def test_end_to_end_reparam_trains_the_branches_and_saves_what_they_compute(tmp_path):
    """docs/end_to_end.py --reparam: each pass trains as srcnn/reparam.py's branches, which start as
    the saved weights' function; whatever the branches then hold, copy_into gives the plain network
    that computes the same (what is scored and saved)."""
    from conftest import load_script

    from srcnn.passes import Pass
    from srcnn.reparam import RepConv

    script = load_script("docs/end_to_end.py")
    weights = save_tiny_checkpoint(tmp_path / "x2")
    config = ModelConfig(filters=6)
    start = build_model(config)
    start.load_weights(weights)
    network = script.training_network(config, "float32", weights, reparam=True)
    assert isinstance(network.get_layer("deconv1"), RepConv)
    image = np.random.default_rng(0).uniform(-1, 1, (1, 12, 10, 3)).astype(np.float32)
    np.testing.assert_allclose(network(image), start(image), atol=1e-5)  # the same function to start
    rng = np.random.default_rng(1)
    for variable in network.trainable_variables:  # as if trained: every branch moved
        variable.assign(variable + rng.normal(0, 0.05, variable.shape).astype(np.float32))
    step = Pass(weights, build_model(config), config, 2)
    script.copy_into(network, step)
    np.testing.assert_allclose(step.model(image), network(image), atol=1e-5)
    assert not np.allclose(step.model(image), start(image), atol=1e-3)


def test_distilled_pairs_move_the_photo_towards_the_start_models_self_ensemble(chain):
    """docs/end_to_end.py --distill W: the target is (1 - W) x the photo + W x the eight-view mean."""
    from conftest import load_script

    from srcnn.images import self_ensemble
    from srcnn.passes import enlarge, load_passes

    end_to_end = load_script("docs/end_to_end.py")
    passes = load_passes(chain[3])
    photo = gradient_image(30, 24, seed=6)
    pairs = end_to_end.model_pairs([photo], 3)
    small, _ = end_to_end.small_and_first_input(photo, 3)
    teacher = self_ensemble(lambda image: enlarge(passes, Image.fromarray(image)), np.asarray(small))
    assert not np.array_equal(teacher, np.asarray(photo))
    pure = np.isin(np.asarray(photo), (0, 255))
    assert pure.any() and not pure.all()  # the photo's pure values stay: the loss keeps them exact
    for weight, expected in ((0.0, np.asarray(photo)), (1.0, np.where(pure, np.asarray(photo), teacher))):
        ((first_input, target),) = end_to_end.distilled_pairs([photo], passes, 3, weight)
        np.testing.assert_array_equal(first_input, pairs[0][0])  # the input stays what the first network sees
        np.testing.assert_array_equal(target, expected)
    ((_, halfway),) = end_to_end.distilled_pairs([photo], passes, 3, 0.5)
    mean = (np.asarray(photo).astype(np.float32) + teacher) / 2
    assert np.abs(halfway - mean)[~pure].max() <= 0.5
