"""The blog's seven-layer "DeconvNet" and the mapping between uint8 pixels and its [-1, 1] range."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import keras
import numpy as np


def config_from_dict(cls: type, values: dict, what: str):
    """A config dataclass from a dict (JSON), refusing keys it does not know instead of ignoring them."""
    known = {field.name for field in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {what}: {sorted(unknown)} (known: {sorted(known)})")
    return cls(**values)


@dataclass(frozen=True)
class ModelConfig:
    layers: int = 7  # blog: "a seven-layer DeconvNet"
    filters: int = 32  # blog: "with 32 filters in each layer"
    # Assumed: the blog does not give a kernel size. 3x3 keeps the net small and cheap
    # (about 1.6 GFLOP per 128x128 forward pass) while seven layers still see a 15x15 window,
    # a little more than the SRCNN paper's 9-1-5 network (13x13).
    kernel_size: int = 3
    # Assumed: the blog names Leaky ReLUs but no slope; 0.2 is the default of TF's
    # tf.nn.leaky_relu, which the blog's TensorFlow code would have used (Keras' own is 0.3).
    leaky_slope: float = 0.2
    channels: int = 3  # blog: RGB in, RGB out

    def validate(self) -> None:
        if self.layers < 2 or self.filters < 1 or self.channels < 1:
            raise ValueError(f"invalid model config {self}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            # An even kernel with 'same' padding shifts the image by half a pixel.
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        return config_from_dict(cls, values, "model config keys")

    @property
    def receptive_field(self) -> int:
        """Side of the input window that one output pixel depends on."""
        return self.layers * (self.kernel_size - 1) + 1


def build_model(config: ModelConfig | None = None) -> keras.Model:
    """The blog's network: stride-1, 'same'-padded Conv2DTranspose layers, LeakyReLU, tanh output.

    Input and output are (batch, height, width, 3) in [-1, 1]; any height and width work
    because the network has no pooling and no dense layer.
    """
    config = config or ModelConfig()
    config.validate()
    low_res = keras.Input(shape=(None, None, config.channels), name="low_res")
    x = low_res
    for index in range(1, config.layers + 1):
        last = index == config.layers
        # Blog: "Since the stride is 1, technically a 'transposed convolution' is not really
        # happening"; it keeps Conv2DTranspose so the code can later upsample inside the net.
        x = keras.layers.Conv2DTranspose(
            filters=config.channels if last else config.filters,
            kernel_size=config.kernel_size,
            strides=1,
            padding="same",
            name=f"deconv{index}",
        )(x)
        if last:
            # Blog: "The final activation function is Tanh, which has a range of -1 to 1".
            x = keras.layers.Activation("tanh", name="tanh", dtype="float32")(x)
        else:
            x = keras.layers.LeakyReLU(negative_slope=config.leaky_slope, name=f"leaky_relu{index}")(x)
    return keras.Model(low_res, x, name="srcnn_deconvnet")


def to_model_range(pixels: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1] (blog: targets are transformed to tanh's range)."""
    return np.asarray(pixels, dtype=np.float32) / 127.5 - 1.0


def from_model_range(values: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> uint8 [0, 255], rounded to nearest (not truncated) and clipped."""
    pixels = (np.asarray(values, dtype=np.float32) + 1.0) * 127.5
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def initialize_near_identity(model: keras.Model, config: ModelConfig, noise_scale: float = 0.1) -> None:
    """Start training from a network that already passes its input through (before tanh).

    Without a skip connection, a randomly initialised net spends most of its early training
    learning to reproduce the bicubic input at all. A LeakyReLU with slope s passes x exactly
    through a pair of channels (+x, -x): lrelu(x) - lrelu(-x) = (1 + s) x. So each colour gets one
    such pair through layers 1-6, and layer 7 reads it back; every other weight keeps its random
    initial value, scaled down by `noise_scale`, so all filters still learn.
    """
    if config.filters < 2 * config.channels:
        raise ValueError(f"near-identity start needs at least {2 * config.channels} filters, got {config.filters}")
    centre = config.kernel_size // 2
    gain = 1.0 / (1.0 + config.leaky_slope)
    layers = [model.get_layer(f"deconv{index}") for index in range(1, config.layers + 1)]
    for index, layer in enumerate(layers):
        kernel, bias = (np.asarray(weight) for weight in layer.get_weights())
        kernel = kernel * noise_scale  # Conv2DTranspose kernels: (height, width, out, in).
        for channel in range(config.channels):
            plus, minus = 2 * channel, 2 * channel + 1
            if index == 0:  # colour -> (+x, -x)
                kernel[centre, centre, plus, channel] = 1.0
                kernel[centre, centre, minus, channel] = -1.0
            elif index < len(layers) - 1:  # pair -> pair
                kernel[centre, centre, plus, plus] = gain
                kernel[centre, centre, plus, minus] = -gain
                kernel[centre, centre, minus, plus] = -gain
                kernel[centre, centre, minus, minus] = gain
            else:  # pair -> colour
                kernel[centre, centre, channel, plus] = gain
                kernel[centre, centre, channel, minus] = -gain
        layer.set_weights([kernel, np.zeros_like(bias)])
