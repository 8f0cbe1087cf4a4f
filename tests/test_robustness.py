"""Messy inputs and killed trainings: every tool keeps going, names what it skipped, loses nothing."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, make_corpus, save_tiny_checkpoint, tiny_model_config
from conftest import run_script as script
from PIL import Image


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, bool]]:
    folder = tmp_path_factory.mktemp("messy") / "photos"
    return folder, make_corpus(folder)


def bad_names(usable: dict[str, bool]) -> list[str]:
    return [Path(name).name for name, good in usable.items() if not good]


def test_prep_skips_each_bad_file_with_its_reason(corpus, tmp_path, run_main):
    folder, usable = corpus
    started = time.monotonic()
    result = run_main("prep_images.py", "--input", str(folder), "--output", "data", "--size", "32", cwd=tmp_path)
    assert time.monotonic() - started < 120  # the bomb is refused from its header, not decoded
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    for name in bad_names(usable):
        assert any(name in line and "skipped" in line for line in output.splitlines()), name
    written = {path.name for path in (tmp_path / "data").glob("*/hr/*.png")}
    assert len(written) == sum(usable.values())
    assert "Fotos del año__café crème_png.png" in written
    rotated = np.asarray(Image.open(next((tmp_path / "data").glob("*/hr/rotated_jpg.png"))))
    # Upright the photo is portrait (30 x 40): the white bands are left and right, not above.
    assert (rotated[:, :3] == 255).all() and not (rotated[:3, 8:24] == 255).all()


def test_prep_with_nothing_usable_fails(tmp_path, run_main):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"")
    result = run_main("prep_images.py", "--input", str(folder), "--output", "data", cwd=tmp_path)
    assert result.returncode == 1 and "no usable images" in result.stderr


def test_upscale_enlarges_the_good_files_and_names_the_bad(corpus, tmp_path, run_main):
    folder, usable = corpus
    weights = save_tiny_checkpoint(tmp_path / "checkpoint")
    result = run_main("upscale.py", str(folder), "--out-dir", "out", "--checkpoint", str(weights), cwd=tmp_path)
    assert result.returncode == 1  # some inputs failed
    errors = [line for line in result.stderr.splitlines() if line.startswith("upscale.py: skipped")]
    for name in bad_names(usable):
        assert any(name in line for line in errors), name
    bad = len(bad_names(usable))
    assert f"upscale.py: {sum(usable.values())} enlarged, 0 up to date (kept), {bad} skipped" in result.stdout
    again = run_main("upscale.py", str(folder), "--out-dir", "out", "--checkpoint", str(weights), cwd=tmp_path)
    assert f"0 enlarged, {sum(usable.values())} up to date (kept), {bad} skipped" in again.stdout
    made = {path.relative_to(tmp_path / "out").as_posix() for path in (tmp_path / "out").rglob("*_x2.png")}
    assert len(made) == sum(usable.values())
    with Image.open(tmp_path / "out" / "rotated_x2.png") as rotated:
        assert rotated.size == (60, 80)  # upright
    with Image.open(tmp_path / "out" / "strip_x2.png") as strip:
        assert strip.size == (6000, 2)
    with Image.open(tmp_path / "out" / "deep grey_x2.png") as grey:
        assert grey.mode == "L" and grey.size == (48, 40)
    assert "Fotos del año/café crème_x2.png" in made


def test_benchmark_skips_what_it_cannot_score(corpus, tmp_path, run_main):
    folder, _ = corpus
    weights = save_tiny_checkpoint(tmp_path / "checkpoint")
    result = run_main("test.py", "--benchmark", str(folder), "--checkpoint", str(weights), cwd=tmp_path)
    assert result.returncode == 0  # some images were scored
    assert "bomb.png" in result.stderr and "tiny.png" in result.stderr
    assert "rotated" in result.stdout and "mean" in result.stdout


@pytest.mark.slow
def test_kill_9_then_resume_loses_nothing(prepared_data, tmp_path):
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, str(ROOT / "train.py"), "--batch-size", "2", "--config", tiny_model_config(tmp_path)]
    command.append("--quiet")
    process = subprocess.Popen(
        [*command, "--epochs", "1000"], cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    state = tmp_path / "checkpoints" / "state.json"
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    time.sleep(0.5)  # somewhere inside a later epoch, or a later save
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    saved = json.loads(state.read_text())["epoch"]
    assert saved >= 1

    target = saved + 2
    resumed = script("train.py", *command[2:], "--epochs", str(target), "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from epoch {saved}" in resumed.stdout
    assert json.loads(state.read_text())["epoch"] == target
    from srcnn.checkpoints import load_training_state

    model = load_training_state(tmp_path / "checkpoints")
    assert int(model.optimizer.iterations.numpy()) == target * 2  # 4 training pairs, batches of 2
    with open(tmp_path / "results" / "history.csv") as file:
        assert [int(row["epoch"]) for row in csv.DictReader(file)] == list(range(1, target + 1))
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))  # what the kill left half-written is gone
    tested = script("test.py", cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(prepared_data, tmp_path, run_main):
    common = ("--batch-size", "2", "--config", tiny_model_config(tmp_path), "--quiet")
    first = run_main("train.py", *common, "--epochs", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    best = (tmp_path / "checkpoints" / "best.weights.h5").read_bytes()
    diverged = run_main("train.py", *common, "--epochs", "3", "--resume", "--learning-rate", "1e30", cwd=tmp_path)
    assert diverged.returncode == 1
    assert "NaN or infinite" in diverged.stderr
    assert json.loads((tmp_path / "checkpoints" / "state.json").read_text())["epoch"] == 1
    assert (tmp_path / "checkpoints" / "best.weights.h5").read_bytes() == best
    assert run_main("test.py", cwd=tmp_path).returncode == 0


def test_unwritable_checkpoint_folder_is_refused_before_training(prepared_data, tmp_path, run_main):
    (tmp_path / "a file").write_text("not a folder")
    result = run_main("train.py", "--checkpoint-dir", str(tmp_path / "a file" / "checkpoints"), cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot write there" in result.stderr
    assert not (tmp_path / "results" / "history.csv").exists()


def test_checkpoint_of_another_config_is_refused_in_one_line(prepared_data, tmp_path, run_main):
    weights = save_tiny_checkpoint(tmp_path / "checkpoints", filters=6)
    config_path = tmp_path / "checkpoints" / "config.json"
    config = json.loads(config_path.read_text())
    config["model"]["kernel_size"] = 5
    config_path.write_text(json.dumps(config))
    result = run_main("test.py", "--checkpoint", str(weights), cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("test.py: error:")]
    assert len(errors) == 1 and "kernel_size=5" in errors[0]
