"""The blog's seven-layer "DeconvNet" and the mapping between uint8 pixels and its [-1, 1] range."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import keras
import numpy as np


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
        known = {field.name for field in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**values)

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
