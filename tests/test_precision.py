"""Mixed precision and the Conv2D form of the blog's layers: same function, same checkpoints."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from srcnn import network
from srcnn.config import ModelConfig
from srcnn.network import build_model, forward_flops_per_pixel, training_flops_per_pixel
from srcnn.precision import resolve_jit, resolve_precision


@pytest.mark.parametrize("kernel_size, in_channels, filters", [(3, 3, 5), (5, 4, 3), (1, 2, 2)])
def test_conv2d_form_computes_the_transposed_convolution(kernel_size, in_channels, filters):
    keras.utils.set_random_seed(1)
    reference = keras.layers.Conv2DTranspose(filters, kernel_size, strides=1, padding="same")
    conv2d_form = network.Conv2DTranspose(filters, kernel_size, strides=1, padding="same")
    inputs = np.random.default_rng(0).normal(size=(2, 11, 17, in_channels)).astype(np.float32)
    reference(inputs)
    conv2d_form(inputs)
    kernel = np.random.default_rng(1).normal(size=reference.kernel.shape).astype(np.float32)
    bias = np.random.default_rng(2).normal(size=(filters,)).astype(np.float32)
    for layer in (reference, conv2d_form):
        layer.set_weights([kernel, bias])
    np.testing.assert_allclose(np.asarray(conv2d_form(inputs)), np.asarray(reference(inputs)), rtol=1e-5, atol=1e-5)


def test_conv2d_form_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="stride 1"):
        network.Conv2DTranspose(4, 3, strides=2, padding="same")(np.zeros((1, 8, 8, 3), np.float32))


def test_bfloat16_model_computes_in_16_bits_with_float32_weights_and_output():
    model = build_model(ModelConfig(filters=4), "mixed_bfloat16")
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert all(type(layer) is network.Conv2DTranspose for layer in convolutions)
    assert all(layer.compute_dtype == "bfloat16" and layer.kernel.dtype == "float32" for layer in convolutions)
    output = model(np.zeros((1, 8, 8, 3), np.float32))
    assert output.dtype == "float32"
    plain = build_model(ModelConfig(filters=4))
    assert all(type(layer) is keras.layers.Conv2DTranspose for layer in plain.layers if "deconv" in layer.name)


def test_checkpoints_convert_exactly_both_ways(tmp_path):
    config = ModelConfig(filters=6)
    inputs = np.random.default_rng(0).uniform(-1, 1, (1, 19, 23, 3)).astype(np.float32)
    for source_precision, target_precision in (("mixed_bfloat16", "float32"), ("float32", "mixed_bfloat16")):
        keras.utils.set_random_seed(3)
        source = build_model(config, source_precision)
        path = tmp_path / f"{source_precision}.weights.h5"
        source.save_weights(path)
        target = build_model(config, target_precision)
        target.load_weights(path)
        for saved, loaded in zip(source.get_weights(), target.get_weights(), strict=True):
            np.testing.assert_array_equal(saved, loaded)
    # Same weights: the bfloat16 model differs only by 16-bit rounding.
    plain, conv2d_form = build_model(config), build_model(config, "mixed_bfloat16")
    conv2d_form.set_weights(plain.get_weights())
    float32_outputs = plain.predict_on_batch(inputs)
    bfloat16_outputs = conv2d_form.predict_on_batch(inputs)
    assert 0 < np.max(np.abs(float32_outputs - bfloat16_outputs)) < 0.05  # 16-bit arithmetic, float32 weights


def test_flop_count_matches_the_models_kernels():
    config = ModelConfig()
    model = build_model(config)
    kernels = [layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert forward_flops_per_pixel(config) == sum(2 * int(np.prod(kernel.shape)) for kernel in kernels)
    # The blog's model: about 1.57 GFLOP forward and 4.7 GFLOP per training image at 128x128.
    assert forward_flops_per_pixel(config) * 128 * 128 == pytest.approx(1.567e9, rel=1e-3)
    # By hand: forward 2 * 9 * (3*32 + 5 * 32*32 + 32*3) = 95,616 per pixel; training adds the input
    # gradient of layers 2-7 and the kernel gradient of all seven: 3 * 95,616 - 2 * 9 * 3*32 = 285,120.
    assert forward_flops_per_pixel(config) == 95_616
    assert training_flops_per_pixel(config) == 285_120


def test_auto_precision_follows_the_cpu():
    assert resolve_precision("auto", flags={"avx512f", "avx512_bf16"}) == (
        "mixed_bfloat16",
        "auto: a CPU with avx512_bf16",
    )
    assert resolve_precision("auto", flags={"amx_bf16", "amx_tile"})[0] == "mixed_bfloat16"
    assert resolve_precision("auto", flags={"avx2"})[0] == "float32"
    assert resolve_precision("mixed_float16", flags=set()) == ("mixed_float16", "asked for")
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("float64")
    assert resolve_jit("off") is False and resolve_jit("on") is True
    assert resolve_jit("auto") is False  # tests run on the CPU
