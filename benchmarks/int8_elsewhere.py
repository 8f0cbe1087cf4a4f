"""Does 8-bit pay on this CPU at all? The default runtime against the project's 8-bit graph run by
ONNX Runtime and by OpenVINO (a second maintained runtime, built on oneDNN, which uses AMX and
AVX512-VNNI where the CPU has them), and against OpenVINO in bfloat16, at several tile sizes.

Usage, from the project's root folder (OpenVINO is not one of the project's requirements):

    pip install openvino
    python -m benchmarks.int8_elsewhere            # about 4 minutes on 2 cores

Each runtime enlarges the same synthetic photos through srcnn.upscaling.upscale (bicubic, then the
network in tiles, as upscale.py does), taking turns, 3 rounds after a warm-up; it prints output
megapixels per second (the median round) and its ratio to the default's at 512-pixel tiles
(keras-bfloat16 where the CPU computes in bfloat16, float32 ONNX Runtime elsewhere), and each
runtime's Set5 Y-PSNR against Keras float32 (`--set5 DIR`). OpenVINO reads the same ONNX graphs the
project exports (runtimes.onnx_bytes, int8.quantized_onnx): the numbers compare runtimes, not
quantizations. ONNX Runtime's 8 bits run as upscale.py runs them (pure white and black restored);
OpenVINO's without that step. OpenVINO in bfloat16 is measured only on a CPU with bfloat16.

`ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16` before the command keeps oneDNN (TensorFlow's and OpenVINO's)
off AMX, as on a CPU with AVX512-BF16 and VNNI but no AMX; ONNX Runtime's own kernels do not read it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import ROOT, set5_psnr_y, synthetic_photo
from srcnn.checkpoints import load_for_inference, shipped_weights
from srcnn.images import IMAGE_SUFFIXES, load_rgb
from srcnn.precision import BFLOAT16_CPU_FLAGS, cpu_flags
from srcnn.runtimes import conv2d_form, int8_onnx, make_runtime, onnx_bytes, resolve_runtime
from srcnn.upscaling import split_modes, upscale

SIZES = {"1 MP": (512, 512), "6 MP": (1000, 1500)}  # input (height, width); output 2x each side
TILES = (128, 256, 512)
ROUNDS = 3


def openvino_predict(graph: bytes, precision: str):
    """OpenVINO on the CPU for an ONNX graph; `precision`: its inference precision hint (f32 or bf16;
    an 8-bit graph runs its quantized convolutions in int8 whatever the hint)."""
    import numpy as np
    import openvino

    core = openvino.Core()
    with tempfile.TemporaryDirectory(prefix="srcnn-openvino-") as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(graph)
        compiled = core.compile_model(
            core.read_model(str(path)), "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
        )
    request = compiled.create_infer_request()
    return lambda batch: request.infer([np.ascontiguousarray(batch, np.float32)])[0].copy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set5", type=Path, default=ROOT.parent / "shared" / "data" / "Set5")
    args = parser.parse_args(argv)
    weights = shipped_weights("clean")
    model, config = load_for_inference(weights)[:2]
    default, _ = resolve_runtime("auto")
    float_graph, int8_graph = onnx_bytes(conv2d_form(model, config)), int8_onnx(weights, config)
    runtimes = {f"{default} (default)": make_runtime(default, model, config).predict}
    runtimes["onnxruntime-int8"] = make_runtime("onnxruntime-int8", model, config, weights).predict
    if default != "onnxruntime":  # the float32 runtime a CPU without bfloat16 falls back to
        runtimes["onnxruntime"] = make_runtime("onnxruntime", model, config).predict
    try:
        runtimes["openvino-int8"] = openvino_predict(int8_graph, "f32")
        if set(BFLOAT16_CPU_FLAGS) & cpu_flags():
            runtimes["openvino-bfloat16"] = openvino_predict(float_graph, "bf16")
        runtimes["openvino-float32"] = openvino_predict(float_graph, "f32")
    except ImportError:
        print("OpenVINO is not installed (pip install openvino): ONNX Runtime only")
    runs = [(name, tile) for name in runtimes for tile in TILES]
    base = (next(iter(runtimes)), 512)  # the default at its own tile size
    for label, (height, width) in SIZES.items():
        photo = split_modes(synthetic_photo(height, width, 11))

        def seconds(name: str, tile: int, photo=photo) -> float:
            start = time.perf_counter()
            upscale(runtimes[name], config, photo, tile=tile)
            return time.perf_counter() - start

        for run in runs:
            seconds(*run)  # warm-up: graphs compiled for each tile shape
        rounds = [{run: seconds(*run) for run in runs} for _ in range(ROUNDS)]
        megapixels = 4 * height * width / 1e6
        print(f"{label} output ({width}x{height} -> {2 * width}x{2 * height}), MP/s (x the default at tile 512):")
        rates = {run: megapixels / statistics.median(times[run] for times in rounds) for run in runs}
        for run in runs:
            print(f"  {run[0]:28s} tile {run[1]:4d}  {rates[run]:6.2f}  x{rates[run] / rates[base]:.2f}")
    paths = sorted(p for p in args.set5.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if args.set5.is_dir() else []
    if paths:
        images = [load_rgb(path) for path in paths]
        reference = set5_psnr_y(make_runtime("keras", model, config).predict, config, images)
        for name, predict in runtimes.items():
            delta = set5_psnr_y(predict, config, images) - reference
            print(f"Set5 Y-PSNR against Keras float32, {name}: {delta:+.3f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
