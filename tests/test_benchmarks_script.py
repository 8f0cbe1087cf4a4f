"""benchmarks/run.py's pieces, small: the timing rounds, the prep measurement and the report."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from benchmarks import run as benchmark


def test_rounds_take_turns_and_ratios_come_from_one_round():
    calls = []

    def runner(name, seconds):
        def one_epoch():
            calls.append(name)
            return seconds

        return one_epoch

    rates, rounds = benchmark.interleaved({"fast": runner("fast", 1.0), "slow": runner("slow", 4.0)}, 8, 3)
    assert calls == ["fast", "slow"] * 4  # a warm-up each, then three rounds in turn
    assert rates == {"fast": 8.0, "slow": 2.0}
    assert len(rounds) == 3
    assert benchmark.median_ratio(rounds, "fast", "slow") == pytest.approx(4.0)


@pytest.mark.slow
def test_prep_is_measured_in_fresh_processes(tmp_path):
    one, everyone, cores = benchmark.prep_rates(tmp_path, 4)
    assert one > 0 and everyone > 0
    assert cores == (os.cpu_count() or 1)
    # Both runs made every pair, the same ones.
    made = {
        workers: sorted(path.relative_to(tmp_path / f"prepared-{workers}").as_posix()
                        for path in (tmp_path / f"prepared-{workers}").glob("*/*/*.png"))
        for workers in (1, cores)
    }  # fmt: skip
    assert len(made[1]) == 2 * 4 and made[1] == made[cores]
    # The probe's process never loads TensorFlow (-X importtime lists every module it imports).
    imports = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "benchmarks.probes", "--help"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "srcnn.preparation" in imports.stderr
    assert "tensorflow" not in imports.stderr


def test_report_shows_the_ratios():
    results = {
        "train_fastest_precision": "mixed_bfloat16",
        "train_images_per_s": 60.0,
        "train_fp32_images_per_s": 30.0,
        "naive_images_per_s": 25.0,
        "fastest_over_naive": 2.4,
        "fp32_over_naive": 1.2,
        "input_pipeline_share": 0.01,
        "bound_fp32_images_per_s": 40.0,
        "bound_bf16_images_per_s": 75.0,
        "train_mixed_bfloat16_images_per_s": 60.0,
        "prep_images_per_s_1": 100.0,
        "prep_images_per_s_all": 180.0,
        "prep_workers_all": 2,
    }
    table = benchmark.format_ratios(results)
    assert "| fastest / naive (median of per-round ratios) | 2.40x |" in table
    assert "| float32 fit / float32 bound | 75% |" in table  # 30 / 40
    assert "| bfloat16 fit / bfloat16 bound | 80% |" in table  # 60 / 75
    assert "| input pipeline time / training step time | 1.0% |" in table
    assert "| prep, 2 workers / 1 worker | 1.80x |" in table
    assert "upscale" not in table  # no upscaling results, no upscaling rows
