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


def test_interleaved_can_leave_the_warm_up_to_the_caller():
    calls = []
    rates, _ = benchmark.interleaved({"only": lambda: calls.append("only") or 2.0}, 20, 2, warm_up=False)
    assert calls == ["only", "only"]
    assert rates == {"only": 10.0}


def test_runtime_results_name_the_default_and_compare_it_with_keras_float32():
    rounds = [{"keras": 1.0, "keras-bfloat16": 1.5, "onnxruntime": 3.0}, {"keras": 2.0, "onnxruntime": 5.0}]
    rates = {"keras": 1.5, "keras-bfloat16": 1.5, "onnxruntime": 4.0}
    results = benchmark.runtime_results(rates, rounds, "onnxruntime")
    assert results["infer_keras_bfloat16_megapixels_per_s"] == 1.5
    assert results["infer_keras_fp32_megapixels_per_s"] == results["infer_keras_megapixels_per_s"] == 1.5
    assert results["infer_default_runtime"] == "onnxruntime"
    assert results["infer_megapixels_per_s"] == 4.0
    assert results["infer_default_over_keras_fp32"] == pytest.approx(2.75)  # median of 3.0 and 2.5, not 4 / 1.5


def test_report_shows_each_runtime_and_the_folder_speedup():
    results = {
        "infer_default_runtime": "onnxruntime",
        "infer_megapixels_per_s": 3.1,
        "infer_keras_megapixels_per_s": 1.5,
        "infer_keras_fp32_megapixels_per_s": 1.5,
        "infer_keras_bfloat16_megapixels_per_s": 2.0,
        "infer_onnxruntime_megapixels_per_s": 3.1,
        "infer_default_over_keras_fp32": 2.07,
        "infer_keras_set5_psnr_y": 36.7191,
        "infer_keras_set5_delta_db": 0.0,
        "infer_keras_bfloat16_set5_delta_db": -0.031,
        "infer_onnxruntime_set5_delta_db": 0.0004,
        "infer_failed_runtimes": {"litert": "no XNNPACK"},
        "infer_peak_rss_mb_4096": 850.0,
        "folder_photos_per_s": 1.2,
        "folder_sequential_keras_fp32_photos_per_s": 0.5,
        "folder_speedup": 2.4,
    }
    table = benchmark.format_ratios(results)
    assert "| upscale 1024² -> 2048², output MP/s | 3.10 |" in table  # the default runtime's, as before
    assert "| upscale 1024² -> 2048², keras-bfloat16, output MP/s | 2.00 |" in table
    assert "| upscale, default (onnxruntime) / keras float32 | 2.07x |" in table
    assert "| Set5 Y-PSNR, keras float32 | 36.719 dB |" in table
    assert "| Set5 Y-PSNR, keras-bfloat16 - keras float32 | -0.031 dB |" in table
    assert "Set5 Y-PSNR, keras - keras float32" not in table  # zero by definition
    assert "| Set5 Y-PSNR, onnxruntime - keras float32 | +0.000 dB |" in table
    assert "| runtimes that failed here | litert |" in table
    assert "| upscale.py 2048² -> 4096², peak RSS MiB | 850 |" in table
    assert "| folder, enlarge_all (onnxruntime) / one by one keras float32 | 2.40x |" in table
    assert "litert-int8" not in table  # not measured, no row
    assert table.rstrip().endswith("| upscale.py 2048² -> 4096², peak RSS MiB | 850 |")
    assert "training" not in table and "prep" not in table


def test_report_reads_results_from_before_the_runtimes():
    table = benchmark.format_ratios({"infer_megapixels_per_s": 1.51, "infer_peak_rss_mb_4096": 859.0})
    assert "| upscale 1024² -> 2048², output MP/s | 1.51 |" in table
    assert "Set5" not in table and "folder" not in table
