"""The three scripts as a user runs them, as subprocesses on tiny photos."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, tiny_model_config
from conftest import run_script as script
from PIL import Image


@pytest.mark.slow
def test_prep_train_test(prepared_data, tmp_path):
    tiny = tiny_model_config(tmp_path)
    train = script("train.py", "--epochs", "2", "--batch-size", "2", "--config", tiny, "--quiet", cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    assert "training on CPU" in train.stdout
    assert (tmp_path / "checkpoints" / "best.weights.h5").is_file()
    assert (tmp_path / "results" / "curves.png").is_file()
    with open(tmp_path / "results" / "history.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert {"val_psnr", "val_ssim", "val_bicubic_psnr", "val_bicubic_ssim"} <= set(rows[0])

    test = script("test.py", cwd=tmp_path)
    assert test.returncode == 0, test.stderr
    comparison = tmp_path / "results" / "compare" / "photo 0_jpg.png"
    with Image.open(comparison) as image:
        assert image.width > 3 * 24 and image.height > 24
    with open(tmp_path / "results" / "metrics.csv") as file:
        names = [row["name"] for row in csv.DictReader(file)]
    assert names == ["photo 0_jpg", "mean"]

    resume = script("train.py", "--epochs", "3", "--batch-size", "2", "--resume", "--quiet", cwd=tmp_path)
    assert resume.returncode == 0, resume.stderr
    assert "resuming from epoch 2" in resume.stdout


def test_user_mistakes_give_one_line_not_a_traceback(tmp_path, run_main):
    for name, args, hint in (
        ("train.py", (), "prep_images.py"),
        ("test.py", ("--checkpoint-dir", "checkpoints"), "train.py"),  # a named folder: no fallback
        ("train.py", ("--resume",), "no training state"),
        ("prep_images.py", ("--input", "missing"), "no such folder"),
    ):
        result = run_main(name, *args, cwd=tmp_path)
        assert result.returncode != 0
        errors = [line for line in result.stderr.splitlines() if line.startswith(f"{name}: error:")]
        assert len(errors) == 1 and hint in errors[0], result.stderr


@pytest.mark.slow
def test_ctrl_c_saves_and_resume_continues(prepared_data, tmp_path):
    """SIGINT during training saves the state; --resume picks it up."""
    # PYTHONFAULTHANDLER: if the run hangs after the signal, SIGABRT makes it print where it is.
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONFAULTHANDLER": "1"}
    tiny = tiny_model_config(tmp_path)
    # A shell without job control starts background jobs with SIGINT ignored, and a child inherits
    # that (a handled signal resets to default across exec, an ignored one stays ignored): the run
    # would never see the signal. Handle it here while the child starts, as an interactive shell does.
    command = [sys.executable, str(ROOT / "train.py"), "--epochs", "1000", "--batch-size", "2", "--config", tiny]
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [*command, "--quiet"],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    state = tmp_path / "checkpoints" / "state.json"
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert state.exists(), process.communicate()[1]
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        stdout, stderr = process.communicate(timeout=30)
        pytest.fail(f"train.py did not stop within 120 s of SIGINT; where it was:\n{stderr[-6000:]}")
    assert process.returncode == 130, stderr
    assert "interrupted: saved after epoch" in stdout and "--resume" in stdout
    assert "Traceback" not in stderr

    saved_epoch = json.loads(state.read_text())["epoch"]
    assert saved_epoch >= 1
    resume = script("train.py", "--epochs", str(saved_epoch + 1), "--resume", "--quiet", cwd=tmp_path)
    assert resume.returncode == 0, resume.stderr
    assert f"resuming from epoch {saved_epoch}" in resume.stdout
