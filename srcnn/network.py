"""The blog's seven-layer "DeconvNet", its loss, and the mapping between uint8 pixels and its [-1, 1] range."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable

import keras
import numpy as np

from srcnn.config import ModelConfig
from srcnn.metrics import Y_WEIGHTS


@keras.saving.register_keras_serializable(package="srcnn")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """A stride-1, 'same'-padded Keras Conv2DTranspose, computed as the Conv2D it equals.

    For stride 1 and an odd kernel, the transposed convolution with kernel K (height, width,
    out, in) is exactly the convolution with K flipped in height and width and its channel axes
    swapped. Same weights and layout as the Keras layer; only the kernels TensorFlow runs differ:
    under bfloat16 the Conv2D ones trained about 8% faster here (benchmarks/README.md). It keeps
    the Keras class name on purpose: Keras files weights under the class name, so both forms read
    and write the same checkpoints.
    """

    def build(self, input_shape):
        if tuple(self.strides) != (1, 1) or self.padding != "same" or any(k % 2 == 0 for k in self.kernel_size):
            raise ValueError(f"{self.name}: the Conv2D form needs stride 1, 'same' padding and an odd kernel")
        if tuple(self.dilation_rate) != (1, 1) or self.data_format != "channels_last":
            raise ValueError(f"{self.name}: the Conv2D form needs no dilation and channels_last")
        super().build(input_shape)

    def call(self, inputs):
        kernel = conv2d_kernel(self.kernel)
        outputs = keras.ops.conv(inputs, kernel, strides=1, padding="same")
        if self.use_bias:
            outputs = keras.ops.add(outputs, keras.ops.reshape(self.bias, (1, 1, 1, self.filters)))
        return self.activation(outputs) if self.activation is not None else outputs


def conv2d_kernel(transpose_kernel):
    """Conv2DTranspose kernel (height, width, out, in) -> the equal Conv2D kernel (height, width, in, out)."""
    return keras.ops.flip(keras.ops.transpose(transpose_kernel, (0, 1, 3, 2)), axis=(0, 1))


def build_model(
    config: ModelConfig | None = None, precision: str = "float32", conv2d_form: bool | None = None
) -> keras.Model:
    """The blog's network: stride-1, 'same'-padded Conv2DTranspose layers, LeakyReLU, tanh output.

    Input and output are (batch, height, width, 3) in [-1, 1]; any height and width work
    because the network has no pooling and no dense layer. `precision` is a Keras dtype policy
    ("float32", "mixed_bfloat16", "mixed_float16"): mixed ones compute in 16 bits and keep the
    weights, the tanh output and so the loss in float32. Under bfloat16 (or with `conv2d_form`)
    the transposed layers run in their Conv2D form (network.Conv2DTranspose); weights are the
    same either way.
    """
    config = config or ModelConfig()
    config.validate()
    policy = keras.DTypePolicy(precision)
    if conv2d_form is None:  # by default only under bfloat16, where it trains faster
        conv2d_form = policy.compute_dtype == "bfloat16"
    transposed = Conv2DTranspose if conv2d_form else keras.layers.Conv2DTranspose

    def convolution(filters: int, name: str) -> keras.layers.Layer:
        # Blog: "Since the stride is 1, technically a 'transposed convolution' is not really
        # happening"; it keeps Conv2DTranspose so the code can later upsample inside the net.
        return transposed(filters, config.kernel_size, strides=1, padding="same", name=name, dtype=policy)

    return stack_layers(config, policy, convolution, "srcnn_deconvnet")


# Pure white (255) is 1.0 in the network's range, which tanh reaches only at an infinite input, and
# rounds to 255 only above tanh(3.12). The MSE's pull on such a pixel, 2 (1 - t) (1 - t^2), fades
# to nothing near there: it settles around 254, and any fine-tune moves it across (docs/results.md, "Your
# photos"). PURE_WEIGHT scales a squared hinge on tanh's input instead, zero once a pure target's
# pixel is past the margin: 1e-3 makes a pixel at 3.0 weigh about 20x what the MSE gives it.
PURE_WEIGHT = 1e-3

# BT.601 luma, the Y of the standard Y-PSNR (metrics.Y_WEIGHTS) up to its 219/255 scale: 0.299,
# 0.587, 0.114, green five times blue. An error shared by the three colours moves Y by as much.
LUMA = tuple(weight / sum(Y_WEIGHTS) for weight in Y_WEIGHTS)


@keras.saving.register_keras_serializable(package="srcnn")
class PixelLoss(keras.losses.Loss):
    """The mean squared ("mse") or absolute ("l1") pixel error, over all but the outer `border`
    pixels of each image (config.TrainConfig.loss_border says why). With `pure_margin` m > 0, each
    colour value whose target is 255 (1) or 0 (-1), as in pure white and black, also costs
    PURE_WEIGHT * (m - |tanh's input|)^2 while tanh's input is short of m on its side: such values
    stay exact (m = 5, TrainConfig's default: 254.99, which rounds to 255). With `luma_weight` w > 0, that share of the
    error is taken on each pixel's luma (LUMA) instead of on its three colours alike."""

    def __init__(
        self,
        kind: str = "mse",
        border: int = 0,
        pure_margin: float = 0.0,
        luma_weight: float = 0.0,
        name: str | None = None,
        **kw,
    ):
        super().__init__(name=name or f"{kind}_pixel_loss", **kw)
        if kind not in ("mse", "l1"):
            raise ValueError(f"loss must be mse or l1, got {kind!r}")
        if not 0 <= luma_weight <= 1:
            raise ValueError(f"luma weight must be within 0-1, got {luma_weight}")
        self.kind, self.border, self.pure_margin, self.luma_weight = kind, border, pure_margin, luma_weight

    def call(self, y_true, y_pred):
        if self.border:
            inside = (slice(None), slice(self.border, -self.border), slice(self.border, -self.border))
            y_true, y_pred = y_true[inside], y_pred[inside]
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        error = keras.ops.subtract(y_pred, y_true)
        loss = keras.ops.mean(self.penalty(error), axis=(1, 2, 3))  # one number per image, as Keras' own losses
        if self.luma_weight:
            luma_error = keras.ops.sum(error * keras.ops.convert_to_tensor(LUMA, error.dtype), axis=-1)
            luma_loss = keras.ops.mean(self.penalty(luma_error), axis=(1, 2))
            loss = (1 - self.luma_weight) * loss + self.luma_weight * luma_loss
        if self.pure_margin:
            # tanh's input, recovered from its float32 output (up to the clip's 7.25, far past the margin).
            pre_activation = keras.ops.arctanh(keras.ops.clip(y_pred, -1 + 1e-6, 1 - 1e-6))
            pure = keras.ops.cast(keras.ops.abs(y_true) == 1, y_pred.dtype)  # +1 white, -1 black, else 0
            shortfall = keras.ops.relu(self.pure_margin - pre_activation * y_true) * pure
            loss = loss + PURE_WEIGHT * keras.ops.mean(keras.ops.square(shortfall), axis=(1, 2, 3))
        return loss

    def penalty(self, error):
        return keras.ops.square(error) if self.kind == "mse" else keras.ops.abs(error)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "kind": self.kind,
            "border": self.border,
            "pure_margin": self.pure_margin,
            "luma_weight": self.luma_weight,
        }


def compile_model(
    model: keras.Model,
    learning_rate: float,
    precision: str = "float32",
    jit: bool = False,
    loss: str = "mse",
    loss_border: int = 0,
    pure_margin: float = 0.0,
    luma_weight: float = 0.0,
) -> None:
    # Blog: "Our loss function is about as simple as possible, its just the mean-squared error".
    # Assumed: Adam, the usual choice for the blog's era of TF tutorials.
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    if precision == "mixed_float16":
        # float16 gradients of a small loss underflow; scale the loss up and the gradients back.
        # (bfloat16 has float32's exponent range and needs no scaling.)
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    # No metrics on training batches (see callbacks.Validation): the loss says how training goes.
    model.compile(optimizer=optimizer, loss=PixelLoss(loss, loss_border, pure_margin, luma_weight), jit_compile=jit)


def stack_layers(
    config: ModelConfig,
    policy: keras.DTypePolicy,
    convolution: Callable[[int, str], keras.layers.Layer],
    name: str,
) -> keras.Model:
    """The blog's layer stack around a given convolution: `layers` of them (the last one giving the
    colour channels), LeakyReLU after each but the last, tanh at the end."""
    low_res = keras.Input(shape=(None, None, config.channels), name="low_res")
    x = low_res
    for index in range(1, config.layers + 1):
        last = index == config.layers
        x = convolution(config.channels if last else config.filters, f"deconv{index}")(x)
        if last:
            # Blog: "The final activation function is Tanh, which has a range of -1 to 1".
            x = keras.layers.Activation("tanh", name="tanh", dtype="float32")(x)
        else:
            x = keras.layers.LeakyReLU(negative_slope=config.leaky_slope, name=f"leaky_relu{index}", dtype=policy)(x)
    return keras.Model(low_res, x, name=name)


def forward_flops_per_pixel(config: ModelConfig) -> int:
    """Multiply-adds x 2 of one forward pass per output pixel (convolutions only)."""
    widths = [config.channels] + [config.filters] * (config.layers - 1) + [config.channels]
    return sum(
        2 * config.kernel_size**2 * fan_in * fan_out for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True)
    )


def training_flops_per_pixel(config: ModelConfig) -> int:
    """Forward + backward per pixel: each layer's backward pass costs two forward passes (gradients
    for its input and for its kernel), except the first layer, whose input needs no gradient."""
    first_layer = 2 * config.kernel_size**2 * config.channels * config.filters
    return 3 * forward_flops_per_pixel(config) - first_layer


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


# Assumed (beyond the blog): where the identity start bends, per colour, on [-1, 1]. Four kinks a
# side fit three colours into 27 of the 32 channels; the slopes are fitted below.
IDENTITY_KNOTS = (0.4, 0.7, 0.88, 0.96)


def identity_slopes(knots: tuple[float, ...] = IDENTITY_KNOTS) -> np.ndarray:
    """Coefficients of g(x) = a x + sum_k b_k (relu(x - t_k) - relu(-x - t_k)) so that tanh(g(x)) ~ x.

    Least squares against atanh on the 256 pixel levels, weighted by tanh's slope (errors count in
    pixel terms), the end points held hard: pure white and black come out exactly 255 and 0."""
    x = np.arange(256) / 127.5 - 1.0
    basis = np.stack([x] + [np.maximum(x - knot, 0) - np.maximum(-x - knot, 0) for knot in knots], axis=1)
    weights = 1.0 - x**2 + 0.002
    weights[[0, -1]] = 5.0
    target = np.arctanh(np.clip(x, -0.997, 0.997))  # tanh(+-3.25) rounds to 255 and 0
    coefficients, *_ = np.linalg.lstsq(basis * weights[:, None], target * weights, rcond=None)
    return coefficients


def initialize_identity(model: keras.Model, config: ModelConfig, noise_scale: float = 0.1) -> None:
    """Start from a network whose output is its input (within half a level on average; white and
    black exactly), built from the blog's layers alone: tanh(g(x)) = x needs g = atanh, which the
    first two layers draw piecewise-linearly with LeakyReLU kinks and the last layer adds up.

    Per colour: one channel carries x + 1 (never negative, so every LeakyReLU passes it on). Per
    kink t and side: layer 1 computes lrelu(b (+-x - t)), b the kink's slope; layer 2 subtracts its
    negative part, since lrelu(z) - s z = (1 - s) relu(z), leaving a small channel that is never
    negative; layers 3-6 pass everything on; layer 7 adds the channels up to g(x) with weights
    near 1, so no channel's noise is amplified. Every weight into another channel keeps its random
    start scaled by `noise_scale`, so those filters learn too.
    """
    knots, slope = IDENTITY_KNOTS, config.leaky_slope
    per_colour = 1 + 2 * len(knots)
    used = per_colour * config.channels
    if config.filters < used or config.layers < 3:
        raise ValueError(
            f"the identity start needs {used} filters and 3 layers, got {config.filters} and {config.layers}"
        )
    coefficients = identity_slopes(knots)
    centre = config.kernel_size // 2
    layers = [model.get_layer(f"deconv{index}") for index in range(1, config.layers + 1)]
    kernels = [np.asarray(layer.get_weights()[0]) * noise_scale for layer in layers]  # (h, w, out, in)
    biases = [np.zeros_like(np.asarray(layer.get_weights()[1])) for layer in layers]
    for kernel in kernels[:-1]:  # the channels that carry g are exact
        kernel[:, :, :used, :] = 0.0
    kernels[-1][:, :, :, :used] = 0.0
    for colour in range(config.channels):
        base = colour * per_colour
        kernels[0][centre, centre, base, colour], biases[0][base] = 1.0, 1.0  # X = x + 1 >= 0
        for layer_index in range(1, config.layers - 1):
            kernels[layer_index][centre, centre, base, base] = 1.0
        kernels[-1][centre, centre, colour, base] = coefficients[0]  # a x = a (X - 1)
        biases[-1][colour] -= coefficients[0]
        for index, knot in enumerate(knots):
            steepness = coefficients[1 + index]
            for side, sign in ((0, 1.0), (1, -1.0)):
                channel = base + 1 + 2 * index + side
                # Layer 1: lrelu(b (sign x - t)), with x = X - 1 read from the input directly.
                kernels[0][centre, centre, channel, colour] = sign * steepness
                biases[0][channel] = -steepness * knot
                # Layer 2: minus s b (sign x - t) = minus s b (sign (X - 1) - t): (1 - s) b relu(sign x - t).
                kernels[1][centre, centre, channel, channel] = 1.0
                kernels[1][centre, centre, channel, base] = -slope * steepness * sign
                biases[1][channel] = slope * steepness * (sign + knot)
                for layer_index in range(2, config.layers - 1):
                    kernels[layer_index][centre, centre, channel, channel] = 1.0
                # Layer 7: b (relu(x - t) - relu(-x - t)), from channels that hold (1 - s) b relu(.).
                kernels[-1][centre, centre, colour, channel] = sign / (1.0 - slope)
    for layer, kernel, bias in zip(layers, kernels, biases, strict=True):
        layer.set_weights([kernel, bias])


def super_resolve(model: keras.Model, low_res: np.ndarray) -> np.ndarray:
    """(height, width, 3) uint8 bicubic-upscaled image -> the model's uint8 image, same size, in one
    call (the network's zero padding at the borders; upscale.py's tiles extend the edges instead)."""
    batch = to_model_range(low_res)[np.newaxis]  # (1, height, width, 3) in [-1, 1]
    return from_model_range(graph_predict(model)(batch)[0])


_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def graph_predict(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    """The model as one TensorFlow graph for every batch, height and width, made once per model.
    Keras' predict_on_batch traces a graph per input shape, and photos of many sizes (a benchmark
    folder, a folder's edge tiles) bring many: each cost a new trace and TensorFlow's retracing warning."""
    graph = _GRAPHS.get(model)
    if graph is None:
        import tensorflow as tf

        spec = tf.TensorSpec((None, None, None, model.input_shape[-1]), tf.float32)
        # A partial, not a lambda: TensorFlow counts traces by the function's code, so the lambdas of
        # several models (x3 after each x2 model, a folder's photos split across models) would add up
        # to that warning, though each model traces once. It holds the model weakly, or the cache's
        # value would keep its own key, and every model it ever saw, alive.
        graph = tf.function(functools.partial(_float32_output, weakref.ref(model)), input_signature=[spec])
        _GRAPHS[model] = graph
    return functools.partial(_run_graph, graph, model)


def _float32_output(model: weakref.ref, batch):
    return keras.ops.cast(model()(batch, training=False), "float32")


def _run_graph(graph, model: keras.Model, batch: np.ndarray) -> np.ndarray:
    # `model` is unused here but held: while this function lives, so does the model its graph reads.
    return graph(np.asarray(batch, np.float32)).numpy()
