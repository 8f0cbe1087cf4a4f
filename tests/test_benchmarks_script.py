"""benchmarks/run.py's pieces, small: the timing rounds, the prep measurement and the report."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import run as benchmark  # noqa: E402


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
    assert benchmark.median_ratio(rounds, "fast", "slow") == pytest.approx(4.0)


def test_prep_is_measured_in_fresh_processes(tmp_path):
    one, everyone, cores = benchmark.prep_rates(tmp_path, 4)
    assert one > 0 and everyone > 0 and cores >= 1
    assert len(list((tmp_path / "prepared-1" / "train" / "hr").glob("*.png"))) >= 1


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
        "bound_bf16_images_per_s": 80.0,
        "train_mixed_bfloat16_images_per_s": 60.0,
    }
    table = benchmark.format_ratios(results)
    assert "| fastest / naive (median of per-round ratios) | 2.40x |" in table
    assert "| float32 fit / float32 bound | 75% |" in table
    assert "| bfloat16 fit / bfloat16 bound | 75% |" in table
