"""tf.distribute: two workers on loopback train like one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, run_script, tiny_model_config

from srcnn.checkpoints import BEST_WEIGHTS_NAME, LATEST_NAME, load_for_inference
from srcnn.distribution import check_tf_config

# float32 and a fixed seed: the runs must be comparable number for number. No random changes to the
# pairs (invert_chance 0): how they are drawn is not promised equal on one process and on several
# workers (each reads its own copy of the pipeline); the gradients' arithmetic is.
SETTINGS = {"model": {"filters": 6}, "seed": 3, "invert_chance": 0}
FLAGS = ("--epochs", "2", "--quiet", "--precision", "float32", "--learning-rate", "1e-2")


def common(folder) -> tuple[str, ...]:
    """The flags of every run here, with the settings that are --config keys in a file in `folder`."""
    path = folder / "settings.json"
    path.write_text(json.dumps(SETTINGS))
    return (*FLAGS, "--config", str(path))


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def start_workers(tmp_path, data, shared, *args: str) -> list[subprocess.Popen]:
    """Two train.py workers on 127.0.0.1 with free ports, sharing one checkpoint folder (as shared storage)."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CONFIG": json.dumps(tf_config)}
        # One compute thread each: two workers on a small test machine, neither starved of the CPU.
        environment["TF_NUM_INTRAOP_THREADS"] = "1"
        # A killed worker cannot remove its scratch folder: keep it in the test's own folder.
        environment["TMPDIR"] = str(tmp_path)
        (tmp_path / f"cwd{index}").mkdir(exist_ok=True)
        command = [sys.executable, str(ROOT / "train.py"), "--strategy", "multiworker", "--data", str(data)]
        command += ["--checkpoint-dir", str(shared / "checkpoints"), "--results-dir", str(shared / "results"), *args]
        processes.append(
            subprocess.Popen(
                command,
                cwd=tmp_path / f"cwd{index}",
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
        )
    return processes


def finish(processes: list[subprocess.Popen], timeout: int = 240) -> list[str]:
    """Wait for all workers; whatever happens, none is left running."""
    try:
        return [process.communicate(timeout=timeout)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.slow
def test_two_workers_on_loopback_match_one_process(prepared_data, tmp_path):
    shared = tmp_path / "multi"
    # 1 per replica x 2 replicas = a global batch of 2.
    outputs = finish(start_workers(tmp_path, prepared_data, shared, "--batch-size", "1", *common(tmp_path)))
    for output in outputs:
        assert "done: 2 epochs" in output, output[-3000:]
        assert "replicas: 2" in output
    assert "(chief)" in outputs[0] and "(worker 1)" in outputs[1]
    # Only the chief wrote: the checkpoint, history and plot; no backup is left behind.
    assert (shared / "checkpoints" / BEST_WEIGHTS_NAME).is_file() and (shared / "results" / "curves.png").is_file()
    assert not (shared / "checkpoints" / "backup").exists()
    assert all(not any(folder.iterdir()) for folder in (tmp_path / "cwd0", tmp_path / "cwd1"))
    with open(shared / "results" / "history.csv") as file:
        assert len(file.read().strip().splitlines()) == 3  # header + 2 epochs
    model, _ = load_for_inference(shared / "checkpoints" / BEST_WEIGHTS_NAME)
    prediction = model.predict_on_batch(np.zeros((1, 20, 20, 3), np.float32))
    assert prediction.shape == (1, 20, 20, 3) and np.all(np.isfinite(prediction))

    # One process, the same global batch and seed.
    single = run_script(
        "train.py", "--data", str(prepared_data), "--checkpoint-dir", "checkpoints", "--results-dir", "results",
        "--batch-size", "2", "--strategy", "default", *common(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-2000:]
    assert "replicas: 1" in single.stdout
    import keras

    two_workers = keras.models.load_model(shared / "checkpoints" / LATEST_NAME)
    one_process = keras.models.load_model(tmp_path / "checkpoints" / LATEST_NAME)
    assert int(two_workers.optimizer.iterations) == int(one_process.optimizer.iterations) == 4  # 2 steps x 2 epochs
    difference = max(
        float(np.max(np.abs(a - b))) for a, b in zip(two_workers.get_weights(), one_process.get_weights(), strict=True)
    )
    print(f"two workers vs one process: largest weight difference {difference:.2e}")
    assert difference < 1e-5, f"weights differ by {difference}"


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "needs the TF_CONFIG"),
        ("{not json", "not a cluster description"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "not in the cluster"),
    ],
)
def test_bad_tf_config_is_one_clear_line(text, message):
    with pytest.raises(ValueError, match=message):
        check_tf_config(text)


@pytest.mark.slow
def test_multiworker_without_tf_config_is_refused(prepared_data, tmp_path):
    environment_free = run_script(
        "train.py", "--data", str(prepared_data), "--strategy", "multiworker", "--epochs", "1", cwd=tmp_path
    )
    assert environment_free.returncode == 2
    assert "TF_CONFIG" in environment_free.stderr and "Traceback" not in environment_free.stderr


@pytest.mark.slow
def test_a_killed_job_run_again_restarts_from_the_backup(prepared_data, tmp_path):
    shared = tmp_path / "multi"
    # Mixed precision under the strategy, too.
    tiny = tiny_model_config(tmp_path)
    arguments = ("--batch-size", "1", "--config", tiny, "--quiet", "--precision", "mixed_bfloat16", "--epochs", "12")
    processes = start_workers(tmp_path, prepared_data, shared, *arguments)
    state = shared / "checkpoints" / "state.json"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (state.is_file() and json.loads(state.read_text())["epoch"] >= 3):
            time.sleep(0.2)
    finally:
        for process in processes:  # a crash of the whole job, mid-run
            process.kill()
        finish(processes)
    killed_at = json.loads(state.read_text())["epoch"]
    assert 3 <= killed_at < 12
    assert (shared / "checkpoints" / "backup" / "training_metadata.json").is_file()

    outputs = finish(start_workers(tmp_path, prepared_data, shared, *arguments))  # the same command again
    for output in outputs:
        assert "restarting from this worker's backup" in output, output[-3000:]
    # A loaded machine can stall a worker past TensorFlow's heartbeat timeout; the job then stops with
    # one line that says to run the same command again, which must continue from the backup.
    for _ in range(2):
        if not any("lost contact with a worker" in output for output in outputs):
            break
        assert all("Traceback" not in output for output in outputs), outputs
        outputs = finish(start_workers(tmp_path, prepared_data, shared, *arguments))
    for output in outputs:
        assert "done: 12 epochs" in output, output[-3000:]
    with open(shared / "results" / "history.csv") as file:
        epochs = [int(line.split(",")[0]) for line in file.read().strip().splitlines()[1:]]
    assert epochs == list(range(1, 13))  # each epoch once, across the crash
    assert not (shared / "checkpoints" / "backup").exists()


@pytest.mark.slow
def test_a_worker_lost_mid_run_is_one_line_and_the_backup_stays(prepared_data, tmp_path):
    shared = tmp_path / "multi"
    arguments = ("--batch-size", "1", "--config", tiny_model_config(tmp_path), "--quiet", "--epochs", "1000")
    chief, worker = start_workers(tmp_path, prepared_data, shared, *arguments)
    state = shared / "checkpoints" / "state.json"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not state.is_file():
            time.sleep(0.2)
        worker.kill()  # one machine of the job goes away
        output = chief.communicate(timeout=180)[0]
    finally:
        finish([chief, worker])
    assert chief.returncode == 1, output[-3000:]
    assert "lost contact with a worker" in output and "Traceback" not in output, output[-3000:]
    assert (shared / "checkpoints" / "backup" / "training_metadata.json").is_file()
