"""Re-parameterized training: the branches collapse exactly into the blog's plain network."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from srcnn.checkpoints import BEST_WEIGHTS_NAME, CheckpointError, load_for_inference, load_training_state
from srcnn.config import ModelConfig, PrepConfig, TrainConfig
from srcnn.network import build_model
from srcnn.preparation import prepare_folder
from srcnn.reparam import build_training_model, collapse
from srcnn.training import train

TINY = ModelConfig(filters=6)


def branch_by_branch(training_model: keras.Model, config: ModelConfig, inputs: np.ndarray) -> np.ndarray:
    """The training form's definition, computed the slow way: every branch convolved on its own and
    the outputs added, layer by layer (LeakyReLU between, tanh at the end)."""
    values = inputs
    layers = [layer for layer in training_model.layers if hasattr(layer, "kernels")]
    for index, layer in enumerate(layers):

        def convolve(name, x, layer=layer):
            return keras.ops.conv(x, layer.kernels[name], padding="same") + layer.biases[name]

        total = sum(convolve(name, values) for name in ("full", "point", "row", "column"))
        total = total + convolve("reduce", convolve("expand", values))
        last = index == len(layers) - 1
        values = keras.ops.tanh(total) if last else keras.ops.leaky_relu(total, config.leaky_slope)
    return np.asarray(values)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_the_collapsed_model_computes_what_the_branches_do(kernel_size):
    config = ModelConfig(filters=8, kernel_size=kernel_size)
    training_model = build_training_model(config)
    rng = np.random.default_rng(1)
    for variable in training_model.weights:  # every branch and bias non-zero
        variable.assign(rng.normal(0, 0.1, variable.shape).astype(np.float32))
    inputs = rng.uniform(-1, 1, (2, 19, 23, 3)).astype(np.float32)
    plain = collapse(training_model, config)
    assert plain.count_params() == build_model(config).count_params()
    reference = branch_by_branch(training_model, config, inputs)
    for model in (training_model, plain):  # float32 rounding of sums in another order, nothing more
        assert np.abs(model.predict_on_batch(inputs) - reference).max() <= 1e-5


@pytest.mark.slow  # several training runs
def test_a_reparameterized_run_saves_the_plain_network(photo_folder, tmp_path):
    data = tmp_path / "data"
    for index, path in enumerate(sorted(photo_folder.rglob("*.*"))):
        split = "val" if index == 0 else "train"
        (photo_folder / split).mkdir(exist_ok=True)
        path.rename(photo_folder / split / path.name)
    prepare_folder(photo_folder, data, PrepConfig(size=24), progress=False)
    config = TrainConfig(epochs=1, batch_size=2, reparam=True, precision="float32")
    result = train(data, tmp_path / "run", tmp_path / "run", config, TINY, verbose=0, log=lambda line: None)
    assert result.status == "finished"
    plain, loaded_config = load_for_inference(tmp_path / "run" / BEST_WEIGHTS_NAME)  # loads into build_model()
    assert loaded_config == TINY and type(plain.get_layer("deconv1")) is keras.layers.Conv2DTranspose
    training_model = load_training_state(tmp_path / "run")
    inputs = np.random.default_rng(0).uniform(-1, 1, (1, 24, 24, 3)).astype(np.float32)
    np.testing.assert_allclose(plain.predict_on_batch(inputs), training_model.predict_on_batch(inputs), atol=1e-5)

    plain_config = TrainConfig(epochs=2, batch_size=2, reparam=False, precision="float32")
    with pytest.raises(CheckpointError, match="reparam=True"):
        train(data, tmp_path / "run", tmp_path / "run", plain_config, resume=True, verbose=0, log=lambda line: None)


def test_a_glorot_start_goes_into_the_full_branch_alone():
    from srcnn.network import conv2d_kernel
    from srcnn.reparam import initialize_training_model

    training_model = build_training_model(TINY)
    initialize_training_model(training_model, TINY, lambda model, config: None)  # Keras' own start
    layer = training_model.get_layer("deconv2")
    assert all(not np.any(np.asarray(layer.kernels[name])) for name in ("point", "row", "column", "reduce"))
    plain = collapse(training_model, TINY)
    kernel = np.asarray(conv2d_kernel(plain.get_layer("deconv2").get_weights()[0]))
    np.testing.assert_allclose(kernel, np.asarray(layer.kernels["full"]), atol=1e-7)
