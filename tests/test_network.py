"""The model contract: the blog's layers, any image size, the [-1, 1] range."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from srcnn.config import ModelConfig
from srcnn.network import PixelLoss, build_model, from_model_range, to_model_range


def test_blog_architecture():
    model = build_model()
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert len(convolutions) == 7
    assert [layer.filters for layer in convolutions] == [32] * 6 + [3]
    assert all(layer.strides == (1, 1) and layer.padding == "same" for layer in convolutions)
    assert all(layer.kernel_size == (3, 3) for layer in convolutions)
    leaky = [layer for layer in model.layers if isinstance(layer, keras.layers.LeakyReLU)]
    assert len(leaky) == 6
    assert model.layers[-1].get_config()["activation"] == "tanh"
    allowed = (keras.layers.InputLayer, keras.layers.Conv2DTranspose, keras.layers.LeakyReLU, keras.layers.Activation)
    assert all(isinstance(layer, allowed) for layer in model.layers)  # no pooling, no normalisation
    # Every convolution but the last is followed by a LeakyReLU; the last by tanh.
    names = [layer.name for layer in model.layers[1:]]
    assert names[1::2] == [f"leaky_relu{i}" for i in range(1, 7)] + ["tanh"]
    assert model.count_params() == 48_003
    assert model.input_shape == (None, None, None, 3)


@pytest.mark.parametrize("height, width", [(16, 16), (13, 22)])
def test_output_shape_equals_input_shape_and_stays_in_range(height, width):
    model = build_model(ModelConfig(filters=4))
    inputs = np.random.default_rng(0).uniform(-1, 1, (2, height, width, 3)).astype(np.float32)
    outputs = model.predict_on_batch(inputs * 50)  # far outside the range: tanh must still bound it
    assert outputs.shape == (2, height, width, 3)
    assert outputs.min() >= -1 and outputs.max() <= 1


def test_kernel_size_is_a_parameter_and_must_be_odd():
    model = build_model(ModelConfig(kernel_size=5, filters=4))
    assert model.get_layer("deconv1").kernel_size == (5, 5)
    with pytest.raises(ValueError, match="odd"):
        build_model(ModelConfig(kernel_size=4))


def test_range_round_trip_and_rounding():
    pixels = np.arange(256, dtype=np.uint8)
    values = to_model_range(pixels)
    assert values.min() == -1 and values.max() == 1
    assert np.array_equal(from_model_range(values), pixels)
    # 0.6 of a level rounds up, where truncation would give 0.
    assert from_model_range(np.array([0.6 / 127.5 - 1.0]))[0] == 1
    assert from_model_range(np.array([-3.0, 3.0])).tolist() == [0, 255]


def test_near_identity_start_passes_the_input_through_tanh():
    from srcnn.network import initialize_near_identity

    config = ModelConfig(filters=8, kernel_size=5)
    inputs = np.random.default_rng(0).uniform(-1, 1, (1, 12, 17, 3)).astype(np.float32)
    exact = build_model(config)
    initialize_near_identity(exact, config, noise_scale=0.0)
    np.testing.assert_allclose(exact.predict_on_batch(inputs), np.tanh(inputs), atol=1e-5)
    noisy = build_model(config)
    initialize_near_identity(noisy, config)
    difference = np.abs(noisy.predict_on_batch(inputs) - np.tanh(inputs))
    assert 0 < difference.mean() < 0.1  # close to the identity, but every weight still random
    with pytest.raises(ValueError, match="at least 6 filters"):
        initialize_near_identity(build_model(ModelConfig(filters=4)), ModelConfig(filters=4))


def test_the_identity_start_gives_back_its_input_with_white_and_black_exact():
    from srcnn.network import initialize_identity

    config = ModelConfig()
    model = build_model(config)
    initialize_identity(model, config)  # with its noise on the spare channels
    assert model.count_params() == 48_003  # the blog's network, nothing added
    levels = np.arange(256, dtype=np.uint8)
    image = np.stack([np.tile(levels, (12, 1))] * 3, axis=-1)  # every level, (12, 256, 3)
    output = from_model_range(model.predict_on_batch(to_model_range(image)[np.newaxis])[0]).astype(int)
    inner = output[6, 8:-8]  # away from the zero padding at the borders
    assert np.abs(inner - image[6, 8:-8]).max() <= 2 and np.abs(inner - image[6, 8:-8]).mean() <= 0.5
    assert (output[:, -1] == 255).all() and (output[:, 0] == 0).all()  # pure white and black, also at edges


@pytest.mark.parametrize("kind", ["mse", "l1"])
def test_pixel_loss_leaves_the_border_out_and_equals_keras_inside(kind):
    rng = np.random.default_rng(3)
    target, output = (rng.uniform(-1, 1, (2, 12, 10, 3)).astype(np.float32) for _ in range(2))
    keras_loss = keras.losses.MeanSquaredError() if kind == "mse" else keras.losses.MeanAbsoluteError()
    inside = (slice(None), slice(3, -3), slice(3, -3))
    assert float(PixelLoss(kind, 3)(target, output)) == pytest.approx(
        float(keras_loss(target[inside], output[inside])), rel=1e-6
    )
    assert float(PixelLoss(kind)(target, output)) == pytest.approx(float(keras_loss(target, output)), rel=1e-6)
    changed = output.copy()
    changed[:, :3] = changed[:, -3:] = changed[:, :, :3] = changed[:, :, -3:] = 5.0  # only the border
    assert float(PixelLoss(kind, 3)(target, changed)) == float(PixelLoss(kind, 3)(target, output))


@pytest.mark.parametrize("kind", ["mse", "l1"])
def test_the_luma_share_of_the_loss_reads_luma_alone(kind):
    target = np.zeros((1, 2, 2, 3), np.float32)
    grey_error = np.full((1, 2, 2, 3), 0.2, np.float32)  # the same error in each colour: luma's too
    same_luma = np.tile(np.array([0.587, -0.299, 0.0], np.float32), (1, 2, 2, 1))  # red for green: luma 0
    for weight in (0.0, 0.5, 1.0):
        loss = PixelLoss(kind, luma_weight=weight)
        assert float(loss(target, grey_error)) == pytest.approx(float(PixelLoss(kind)(target, grey_error)), rel=1e-6)
        colour_loss = float(PixelLoss(kind)(target, same_luma))
        assert float(loss(target, same_luma)) == pytest.approx((1 - weight) * colour_loss, abs=1e-7)
    with pytest.raises(ValueError, match="luma weight"):
        PixelLoss(kind, luma_weight=1.5)


def test_the_pure_margin_costs_only_pure_targets_short_of_it_and_pushes_them_outwards():
    target = np.array([1.0, -1.0, 0.5, 1.0, -1.0], np.float32).reshape(1, 1, 5, 1)
    pre_activation = np.array([3.0, -3.5, 0.4, 4.5, -6.0], np.float32)  # the last two: past the margin
    output = np.tanh(pre_activation).reshape(1, 1, 5, 1)
    extra = float(PixelLoss("mse", 0, 4.0)(target, output)) - float(PixelLoss("mse")(target, output))
    assert extra == pytest.approx(1e-3 * (1.0**2 + 0.5**2) / 5, rel=1e-4)
    variable = keras.Variable(pre_activation.reshape(1, 1, 5, 1))
    with tf.GradientTape() as tape:
        loss = PixelLoss("mse", 0, 4.0)(target, keras.ops.tanh(variable)) - PixelLoss("mse")(
            target, keras.ops.tanh(variable)
        )
    gradient = tape.gradient(loss, variable).numpy().ravel()
    assert gradient[0] < 0 < gradient[1]  # white pulled up, black down
    assert gradient[2] == gradient[3] == gradient[4] == 0


def test_the_graph_of_a_model_serves_every_shape_and_goes_with_the_model():
    import gc
    import weakref

    from srcnn.network import graph_predict

    model = build_model(ModelConfig(filters=4))
    batch = np.random.default_rng(0).uniform(-1, 1, (1, 9, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(graph_predict(model)(batch), model.predict_on_batch(batch), atol=1e-6)
    assert graph_predict(model)(batch[:, :8, :5]).shape == (1, 8, 5, 3)
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None  # its cached graph does not keep it
