"""Structural re-parameterization: train each layer as a sum of linear branches, save it as one 3x3 layer.

During training each of the blog's layers is k x k + 1 x 1 + 1 x k + k x 1 convolutions and an
expanded k x k -> 1 x 1 pair, all added (as in ECBSR, RepVGG and SESR's collapsible linear
blocks). A sum of linear maps is one linear map: the branches collapse *exactly* into a single
k x k kernel and bias, so the saved model is the blog's network, unchanged (`collapse`). The extra
branches change only how gradient descent moves through the same function space, which these
papers found trains small networks to better optima.

Kernels here are Conv2D kernels, (height, width, in, out); a stride-1 'same' Conv2DTranspose is
the Conv2D with its kernel flipped and its channel axes swapped (network.conv2d_kernel).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from srcnn.config import ModelConfig, TrainConfig
from srcnn.network import build_model, compile_model, conv2d_kernel, initialize_near_identity, stack_layers


@keras.saving.register_keras_serializable(package="srcnn")
class RepConv(keras.layers.Layer):
    """One layer's training form: the sum of five linear convolution branches, each with a bias."""

    def __init__(self, filters: int, kernel_size: int = 3, expansion: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.expansion = filters, kernel_size, expansion

    def build(self, input_shape) -> None:
        channels, k, out = int(input_shape[-1]), self.kernel_size, self.filters
        shapes = {"full": (k, k, channels, out), "point": (1, 1, channels, out), "row": (1, k, channels, out)}
        shapes |= {"column": (k, 1, channels, out), "expand": (k, k, channels, self.expansion * out)}
        shapes |= {"reduce": (1, 1, self.expansion * out, out)}
        self.kernels = {
            name: self.add_weight(name=name, shape=shape, initializer="glorot_uniform")
            for name, shape in shapes.items()
        }
        self.biases = {
            name: self.add_weight(name=f"{name}_bias", shape=(shape[-1],), initializer="zeros")
            for name, shape in shapes.items()
        }

    def call(self, inputs):
        # The branches are summed as kernels, not as outputs: the same function and so the same
        # gradients, but one convolution a step instead of six (trains about as fast as the plain net).
        kernel, bias = self.merged(self.kernels, self.biases)
        outputs = keras.ops.conv(inputs, keras.ops.cast(kernel, inputs.dtype), strides=1, padding="same")
        return outputs + keras.ops.cast(bias, inputs.dtype)

    def merged(self, kernels: dict, biases: dict) -> tuple:
        """The one (k, k, in, out) kernel and bias that the branches add up to, as tensors."""
        ops, margin = keras.ops, self.kernel_size // 2
        no_pad = [0, 0]
        kernel = kernels["full"]
        kernel = kernel + ops.pad(kernels["point"], [[margin, margin], [margin, margin], no_pad, no_pad])
        kernel = kernel + ops.pad(kernels["row"], [[margin, margin], no_pad, no_pad, no_pad])
        kernel = kernel + ops.pad(kernels["column"], [no_pad, [margin, margin], no_pad, no_pad])
        reduce = kernels["reduce"][0, 0]  # (expanded, out)
        kernel = kernel + ops.einsum("hwie,eo->hwio", kernels["expand"], reduce)
        bias = biases["full"] + biases["point"] + biases["row"] + biases["column"]
        bias = bias + ops.matmul(biases["expand"], reduce) + biases["reduce"]
        return kernel, bias

    def collapsed(self) -> tuple[np.ndarray, np.ndarray]:
        """The one (k, k, in, out) Conv2D kernel and bias that compute exactly what the branches do
        (summed in float64, stored in float32)."""
        kernels = {name: np.asarray(variable, np.float64) for name, variable in self.kernels.items()}
        biases = {name: np.asarray(variable, np.float64) for name, variable in self.biases.items()}
        kernel, bias = self.merged(kernels, biases)
        return np.asarray(kernel).astype(np.float32), np.asarray(bias).astype(np.float32)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "expansion": self.expansion,
        }


def build_training_model(config: ModelConfig, precision: str = "float32") -> keras.Model:
    """The blog's network with each convolution in its re-parameterized training form (same names,
    same LeakyReLU and tanh); `collapse` turns it into build_model()'s network."""
    config.validate()
    policy = keras.DTypePolicy(precision)

    def convolution(filters: int, name: str) -> keras.layers.Layer:
        return RepConv(filters, config.kernel_size, name=name, dtype=policy)

    return stack_layers(config, policy, convolution, "srcnn_deconvnet_reparameterized")


def collapse(training_model: keras.Model, config: ModelConfig, into: keras.Model | None = None) -> keras.Model:
    """The plain blog network (float32, Conv2DTranspose layers) computing what training_model does:
    a new one, or `into` with its weights replaced (one network to score again and again)."""
    plain = build_model(config) if into is None else into
    for index in range(1, config.layers + 1):
        kernel, bias = training_model.get_layer(f"deconv{index}").collapsed()
        # Conv2D (h, w, in, out) -> Conv2DTranspose (h, w, out, in): the same flip and swap undo themselves.
        plain.get_layer(f"deconv{index}").set_weights([np.asarray(conv2d_kernel(kernel)), bias])
    return plain


def initialize_training_model(
    training_model: keras.Model,
    config: ModelConfig,
    start: Callable[[keras.Model, ModelConfig], None] = initialize_near_identity,
) -> None:
    """A start of the plain network (network.initialize_near_identity or initialize_identity) in the
    training form: the full k x k branch holds it, every other branch starts at zero, so the
    collapsed network starts exactly where the plain one would."""
    plain = build_model(config)
    start(plain, config)
    for index in range(1, config.layers + 1):
        layer = training_model.get_layer(f"deconv{index}")
        transposed_kernel, bias = plain.get_layer(f"deconv{index}").get_weights()
        for name, variable in layer.kernels.items():
            if name == "full":
                variable.assign(np.asarray(conv2d_kernel(transposed_kernel)))
            elif name != "expand":  # expand keeps its random start: with reduce at zero it adds nothing
                variable.assign(np.zeros(variable.shape, np.float32))
        for name, variable in layer.biases.items():
            variable.assign(bias if name == "full" else np.zeros(variable.shape, np.float32))


def compiled_training_model(model_config: ModelConfig, config: TrainConfig, precision: str, jit: bool) -> keras.Model:
    """The network in the form `config` trains it (plain, or re-parameterized), compiled with its loss."""
    model = build_training_model(model_config, precision) if config.reparam else build_model(model_config, precision)
    compile_model(
        model,
        config.learning_rate,
        precision,
        jit,
        config.loss,
        config.loss_border,
        config.pure_margin,
        config.luma_weight,
    )
    return model
