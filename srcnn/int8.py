"""The network in 8-bit integers: ONNX Runtime's static quantization, and the fake-quantized twin
that tunes a model's weights for it (docs/tune_int8.py).

Which tensors are 8-bit: the weights of every convolution but the first and the last (per output
channel, symmetric int8) and the activations between them (per tensor, uint8, ranges calibrated on
CALIBRATION_PHOTOS). The first convolution (3 colours in) and the last (3 out, then tanh) stay
float32: they are a fiftieth of the multiply-adds each, and quantized they cost the most. On a CPU
without VNNI, ONNX Runtime multiplies uint8 by int8 with AVX2's VPMADDUBSW, whose 16-bit sums
saturate when both sides are large, as the image's own pixels into the first layer are; and the
last layer's output quantized to 8 bits would round every pixel by up to 1.6 levels.

Quantized as they are, the shipped model's weights lose 0.43 dB on Set5 this way (36.71 -> 36.28):
each layer rounds the image it carries. Quantization-aware tuning (a short fine-tune through
`FakeQuantized`, which rounds where and as the int8 graph rounds, with float gradients passed
straight through the rounding) wins most of it back (to -0.15 dB); the tuned weights live beside the model's own
as INT8_WEIGHTS, and `--runtime onnxruntime-int8` quantizes those.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from srcnn.config import ModelConfig
from srcnn.network import conv2d_kernel

INT8_WEIGHTS = "int8.weights.h5"  # beside a model's best.weights.h5: its weights tuned for 8 bits
# Real photos every install has (scikit-image ships them), made small and enlarged as upscale.py's
# inputs are: the activation ranges are their minimum and maximum, so pure white and black crops
# join them (a product photo's background must not clip).
CALIBRATION_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
CALIBRATION_CROP = 96
CROPS_PER_PHOTO = 4


def int8_weights_of(weights: Path) -> Path:
    return weights.parent / INT8_WEIGHTS


def tuned_for_int8(weights: Path | None, config: ModelConfig) -> keras.Model:
    """The network with the 8-bit-tuned weights beside `weights`; a ValueError if there are none."""
    from srcnn.network import build_model

    tuned = None if weights is None else int8_weights_of(weights)
    if tuned is None or not tuned.is_file():
        raise ValueError(
            f"runtime onnxruntime-int8: {weights or 'this model'} has no {INT8_WEIGHTS} beside it (its weights tuned"
            f" for 8 bits: python docs/tune_int8.py PHOTO_FOLDER... --checkpoint {weights or 'WEIGHTS'} --val-names"
            " NAMES_FILE); quantized as they are, they would lose about 0.4 dB"
        )
    model = build_model(config)
    model.load_weights(str(tuned))
    return model


def calibration_batch() -> np.ndarray:
    """(n, CALIBRATION_CROP, CALIBRATION_CROP, 3) float32 in [-1, 1]: crops of the photos' x2 low-res
    side (make_whole_pair: PIL bicubic down and up), then one pure white and one pure black crop."""
    import skimage.data

    from srcnn.images import make_whole_pair
    from srcnn.network import to_model_range

    crops = []
    size = CALIBRATION_CROP
    for name in CALIBRATION_PHOTOS:
        photo = Image.fromarray(np.asarray(getattr(skimage.data, name)())).convert("RGB")
        low_res = to_model_range(np.asarray(make_whole_pair(photo, 2)[0]))
        height, width = low_res.shape[:2]
        corners = np.random.default_rng(len(crops)).integers(0, (height - size, width - size), (CROPS_PER_PHOTO, 2))
        crops += [low_res[top : top + size, left : left + size] for top, left in corners]
    crops += [np.full((size, size, 3), value, np.float32) for value in (1.0, -1.0)]
    return np.stack(crops)


def quantized_onnx(float_onnx: bytes, calibration: np.ndarray) -> bytes:
    """An ONNX model of the network's Conv2D form (runtimes.onnx_bytes) -> the same in 8 bits (QDQ
    format, which ONNX Runtime fuses into QLinearConv): the inner convolutions and activations as
    the module's docstring says, activation ranges the minimum and maximum over `calibration`."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Crops(CalibrationDataReader):
        def __init__(self, input_name: str):
            self.crops = iter([{input_name: crop[np.newaxis]} for crop in calibration])

        def get_next(self):
            return next(self.crops, None)

    with tempfile.TemporaryDirectory(prefix="srcnn-int8-") as folder:
        source, prepared, quantized = (Path(folder) / name for name in ("float.onnx", "prepared.onnx", "int8.onnx"))
        source.write_bytes(float_onnx)
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)  # sympy not needed
        graph = onnx.load(str(prepared)).graph
        convolutions = [node.name for node in graph.node if node.op_type == "Conv"]
        activations = [node.name for node in graph.node if node.op_type == "LeakyRelu"]
        quantize_static(
            str(prepared),
            str(quantized),
            Crops(graph.input[0].name),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            # float32 ends: the first convolution and its activation, the last activation and convolution
            nodes_to_exclude=[convolutions[0], activations[0], activations[-1], convolutions[-1]],
        )
        return quantized.read_bytes()


@keras.saving.register_keras_serializable(package="srcnn")
class FakeQuant(keras.layers.Layer):
    """Rounds to the 256 uint8 levels of [low, high] (zero exact), as ONNX Runtime's QuantizeLinear
    then DequantizeLinear do; gradients pass straight through inside the range."""

    def build(self, input_shape):
        self.low = self.add_weight(shape=(), initializer="zeros", trainable=False, name="low")
        self.high = self.add_weight(shape=(), initializer="ones", trainable=False, name="high")
        self.rounding = self.add_weight(shape=(), initializer="ones", trainable=False, name="rounding")

    def call(self, x):
        rounded = tf.quantization.fake_quant_with_min_max_vars(x, self.low, self.high, num_bits=8)
        return x + self.rounding * (rounded - x)  # rounding 0: the float network, to calibrate


@keras.saving.register_keras_serializable(package="srcnn")
class QuantizedConv(keras.layers.Layer):
    """A stride-1 'same' Conv2D whose kernel is rounded to int8 per output channel, symmetric (the
    levels -127..127 of max |w|), as quantize_static rounds it."""

    def __init__(self, filters: int, kernel_size: int, quantized: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.quantized = filters, kernel_size, quantized

    def build(self, input_shape):
        shape = (self.kernel_size, self.kernel_size, input_shape[-1], self.filters)
        self.kernel = self.add_weight(shape=shape, initializer="zeros", name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
        self.rounding = self.add_weight(shape=(), initializer="ones", trainable=False, name="rounding")

    def call(self, x):
        kernel = self.kernel
        if self.quantized:
            bound = tf.stop_gradient(tf.reduce_max(tf.abs(kernel), axis=(0, 1, 2)))
            rounded = tf.quantization.fake_quant_with_min_max_vars_per_channel(
                kernel, -bound, bound, num_bits=8, narrow_range=True
            )
            kernel = kernel + self.rounding * (rounded - kernel)
        return tf.nn.conv2d(x, kernel, 1, "SAME") + self.bias

    def get_config(self):
        return super().get_config() | {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "quantized": self.quantized,
        }


class FakeQuantized:
    """The network as its 8-bit graph computes it, trainable: `model` (Keras, float weights, the
    Conv2D form), `calibrate()` to set the activation ranges from the calibration crops, and
    `float_weights()` for the plain network (build_model's layout)."""

    def __init__(self, model: keras.Model, config: ModelConfig, calibration: np.ndarray):
        self.config, self.calibration = config, calibration
        low_res = keras.Input((None, None, config.channels), name="low_res")
        x, self.rounders = low_res, []
        for index in range(1, config.layers + 1):
            first, last = index == 1, index == config.layers
            filters = config.channels if last else config.filters
            x = QuantizedConv(filters, config.kernel_size, not (first or last), name=f"conv{index}")(x)
            if last:
                x = keras.layers.Activation("tanh", name="tanh")(x)
                break
            if not first:  # the quantized convolution's output
                x = self.rounder(x, f"rounds_conv{index}")
            x = keras.layers.LeakyReLU(negative_slope=config.leaky_slope, name=f"leaky_relu{index}")(x)
            if index < config.layers - 1:  # the next convolution's input, unless that one is float32
                x = self.rounder(x, f"rounds_leaky_relu{index}")
        self.model = keras.Model(low_res, x, name="srcnn_fake_int8")
        self.probe = keras.Model(low_res, [rounder.input for rounder in self.rounders])
        for index in range(config.layers):
            kernel, bias = model.get_layer(f"deconv{index + 1}").get_weights()
            layer = self.model.get_layer(f"conv{index + 1}")
            layer.kernel.assign(keras.ops.convert_to_numpy(conv2d_kernel(kernel)))
            layer.bias.assign(bias)

    def rounder(self, x, name: str):
        layer = FakeQuant(name=name)
        self.rounders.append(layer)
        return layer(x)

    def calibrate(self) -> None:
        """Each range to the minimum and maximum (zero included) of its tensor over the calibration
        crops, measured in the float network, as quantize_static measures them."""
        switches = [layer.rounding for layer in self.model.layers if isinstance(layer, (FakeQuant, QuantizedConv))]
        for rounding in switches:
            rounding.assign(0.0)
        values = self.probe.predict(self.calibration, batch_size=8, verbose=0)
        for rounder, tensor in zip(self.rounders, values, strict=True):
            rounder.low.assign(min(0.0, float(tensor.min())))
            rounder.high.assign(max(0.0, float(tensor.max())))
        for rounding in switches:
            rounding.assign(1.0)

    def float_weights(self) -> list[np.ndarray]:
        weights = []
        for index in range(self.config.layers):
            layer = self.model.get_layer(f"conv{index + 1}")
            weights += [transpose_kernel_of(layer.kernel.numpy()), layer.bias.numpy()]
        return weights


def transpose_kernel_of(kernel: np.ndarray) -> np.ndarray:
    """network.conv2d_kernel undone: Conv2D (height, width, in, out) -> Conv2DTranspose (height, width, out, in)."""
    return np.flip(np.asarray(kernel), (0, 1)).transpose(0, 1, 3, 2).copy()


# The float network keeps pure white and black (a product photo's background) exactly; 8-bit
# rounding moves some of their pixels by a level, mostly beside the photo's content (measured on a
# photo pasted on black, benchmarks/README.md: 98.1% kept, against 99.84% in float32). Restoring
# the pixels whose input is pure in a 3x3 window keeps 99.99%; windows of 5 and of the whole
# receptive field (15) kept 98.6% and 98.1%.
PURE_WINDOW = 3


def restore_pure(batch: np.ndarray, output: np.ndarray, window_size: int = PURE_WINDOW) -> np.ndarray:
    """`output` with every pixel whose window_size x window_size neighbourhood in `batch` (the
    bicubic-enlarged input) is pure white (1) or pure black (-1) in every channel set to exactly that."""
    import cv2

    window = np.ones((window_size, window_size), np.uint8)
    for level in (1.0, -1.0):
        for low_res, result in zip(batch, output, strict=True):
            pure = np.all(low_res == level, axis=-1).astype(np.uint8)
            if pure.any():
                result[cv2.erode(pure, window).astype(bool)] = level
    return output
