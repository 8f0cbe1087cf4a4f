"""Where upscale.py runs the network: Keras (float32 or bfloat16), ONNX Runtime (float32 or 8-bit
integers), or LiteRT (XNNPACK).

Every runtime computes the same network with the same weights; each is a `predict` function from
float32 (batch, height, width, 3) in [-1, 1] to the same, for any height and width. The exported
and converted graphs use the network's Conv2D form (network.Conv2DTranspose: a stride-1 transposed
convolution is the convolution with the kernel flipped), since ONNX Runtime's and XNNPACK's Conv
kernels are much faster than their transposed ones; the output is the same to float32 rounding.

`auto` takes the first of AUTO_ORDER that this machine can run: the order is the measured speed on
the project's CPUs, among the runtimes whose Set5 Y-PSNR is within 0.05 dB of Keras float32
(`python -m benchmarks.run --only infer`, benchmarks/README.md). The 8-bit one (srcnn/int8.py) runs
only a model whose weights were tuned for it (int8.weights.h5 beside them).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from srcnn.config import RUNTIMES, ModelConfig
from srcnn.network import build_model, graph_predict
from srcnn.precision import BFLOAT16_CPU_FLAGS, cpu_flags

# Fastest first on the project's CPUs, among those within 0.05 dB of Keras float32 on Set5
# (benchmarks/README.md): Keras in bfloat16 where the CPU computes in it, then ONNX Runtime.
# LiteRT float32 measured no faster than ONNX Runtime, LiteRT int8 (dynamic) slower on a CPU without
# VNNI, and ONNX Runtime int8 (tuned) 1.1-1.3x faster there but 0.15 dB lower on Set5, and on a CPU with
# AMX 0.4x the bfloat16 default (OpenVINO's int8 at most 0.6x): on request only.
AUTO_ORDER = ("keras-bfloat16", "onnxruntime", "keras")
# Python modules each runtime needs beyond TensorFlow, and the pip packages that bring them.
PACKAGES = {
    "onnxruntime": {"onnxruntime": "onnxruntime", "tf2onnx": "tf2onnx", "onnx": "onnx"},
    "onnxruntime-int8": {"onnxruntime": "onnxruntime", "tf2onnx": "tf2onnx", "onnx": "onnx"},
    "litert": {"ai_edge_litert": "ai-edge-litert"},
    "litert-int8": {"ai_edge_litert": "ai-edge-litert"},
}


@dataclass(frozen=True)
class Runtime:
    name: str
    predict: Callable[[np.ndarray], np.ndarray]


def available(name: str) -> bool:
    """Whether this machine can run `name`: its packages are installed (and, for bfloat16, the CPU
    computes in bfloat16; elsewhere it would be emulated, slowly)."""
    return not why_not(name)


def why_not(name: str) -> str:
    """Why `name` cannot run here ('' when it can)."""
    if name == "keras-bfloat16":
        if tf.config.list_physical_devices("GPU"):
            return "it is for CPUs; on a GPU, Keras picks its own precision"
        return "" if set(BFLOAT16_CPU_FLAGS) & cpu_flags() else "this CPU has no bfloat16 instructions"
    missing = [pip for module, pip in PACKAGES.get(name, {}).items() if importlib.util.find_spec(module) is None]
    return f"missing packages: pip install {' '.join(missing)}" if missing else ""


def resolve_runtime(requested: str) -> tuple[str, str]:
    """(the runtime to use, why) for a --runtime choice."""
    if requested not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {requested!r}")
    if requested != "auto":
        reason = why_not(requested)
        if reason:
            raise ValueError(f"runtime {requested} cannot run here: {reason}")
        return requested, "asked for"
    if tf.config.list_physical_devices("GPU"):
        return "keras", "auto: a GPU, which Keras uses"
    for name in AUTO_ORDER:
        if available(name):
            return name, "auto: the fastest here within 0.05 dB of Keras float32 on Set5 (benchmarks/README.md)"
    return "keras", "auto"


def conv2d_form(model: keras.Model, config: ModelConfig, precision: str = "float32") -> keras.Model:
    """The same network and weights, its transposed layers computed as the Conv2D they equal."""
    converted = build_model(config, precision, conv2d_form=True)
    converted.set_weights(model.get_weights())
    return converted


def make_runtime(name: str, model: keras.Model, config: ModelConfig, weights: Path | None = None) -> Runtime:
    """A predict function for `name` (not "auto": resolve it first). `weights`: where the model's
    weights came from; the 8-bit runtime quantizes the tuned ones beside them instead."""
    if name == "keras":
        return Runtime(name, graph_predict(model))
    if name == "keras-bfloat16":
        return Runtime(name, graph_predict(conv2d_form(model, config, "mixed_bfloat16")))
    if name == "onnxruntime":
        return Runtime(name, onnxruntime_predict(onnx_bytes(conv2d_form(model, config))))
    if name == "onnxruntime-int8":
        return Runtime(name, int8_predict(weights, config))
    if name in ("litert", "litert-int8"):
        return Runtime(name, litert_predict(tflite_bytes(conv2d_form(model, config), int8=name == "litert-int8")))
    raise ValueError(f"unknown runtime {name!r}")


def int8_onnx(weights: Path | None, config: ModelConfig) -> bytes:
    """The 8-bit ONNX graph (srcnn/int8.py) of the tuned weights beside `weights`, calibrated on
    its calibration crops; a ValueError if there are none."""
    from srcnn.int8 import calibration_batch, quantized_onnx, tuned_for_int8

    return quantized_onnx(onnx_bytes(conv2d_form(tuned_for_int8(weights, config), config)), calibration_batch())


def int8_predict(weights: Path | None, config: ModelConfig) -> Callable[[np.ndarray], np.ndarray]:
    """ONNX Runtime on int8_onnx(weights), pure white and black restored exactly."""
    from srcnn.int8 import restore_pure

    graph = onnxruntime_predict(int8_onnx(weights, config))
    return lambda batch: restore_pure(batch, graph(batch))


def traced(model: keras.Model) -> keras.Model:
    """Keras exports only a model that has run once; run it on a tiny image."""
    model.predict_on_batch(np.zeros((1, 8, 8, model.input_shape[-1]), np.float32))
    return model


def onnx_bytes(model: keras.Model) -> bytes:
    """The model as ONNX (Keras' own export, through tf2onnx), for any batch, height and width."""
    with tempfile.TemporaryDirectory(prefix="srcnn-onnx-") as folder:
        path = Path(folder) / "model.onnx"
        with warnings.catch_warnings():  # tf2onnx probes np.object, which NumPy 2 warns about
            warnings.filterwarnings("ignore", message="In the future `np.object`", category=FutureWarning)
            traced(model).export(str(path), format="onnx", verbose=False)
        return path.read_bytes()


def tflite_bytes(model: keras.Model, int8: bool = False) -> bytes:
    """The model as a TFLite flatbuffer, for any batch, height and width (resize before running).

    `int8`: weights stored as int8 and activations quantized on the fly (TFLite's dynamic-range
    quantization): a third of the size, faster with XNNPACK, and less exact (its Set5 cost is in
    benchmarks/README.md). Converted from a SavedModel: converting the traced function directly
    gave NaNs in TF 2.21."""
    with tempfile.TemporaryDirectory(prefix="srcnn-tflite-") as folder:
        traced(model).export(folder, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        if int8:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return converter.convert()


def onnxruntime_predict(model: bytes) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {input_name: np.ascontiguousarray(batch, np.float32)})[0]


def litert_predict(model: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """LiteRT's interpreter (XNNPACK for float32), resized whenever the input shape changes."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=os.cpu_count() or 1)
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    shape: list[tuple[int, ...]] = [()]

    def predict(batch: np.ndarray) -> np.ndarray:
        if batch.shape != shape[0]:
            interpreter.resize_tensor_input(input_index, batch.shape)
            interpreter.allocate_tensors()
            shape[0] = batch.shape
        interpreter.set_tensor(input_index, np.ascontiguousarray(batch, np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    return predict
