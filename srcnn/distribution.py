"""tf.distribute for train.py: one device, several GPUs of one machine, or several machines.

The strategies are TensorFlow's own. With several workers (TF_CONFIG), every worker runs the
same train.py; only the chief writes checkpoints, logs and plots.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from srcnn.checkpoints import CheckpointError
from srcnn.config import STRATEGIES


def make_strategy(name: str) -> tf.distribute.Strategy:
    """`auto`: MirroredStrategy with more than one visible GPU, else the default (one device)
    strategy; `multiworker`: MultiWorkerMirroredStrategy, configured by TF_CONFIG."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "auto":
        name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    check_tf_config(os.environ.get("TF_CONFIG"))
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_tf_config(text: str | None) -> None:
    """Refuse a missing or malformed TF_CONFIG in one line, before TensorFlow fails obscurely."""
    if not text:
        raise ValueError("--strategy multiworker needs the TF_CONFIG environment variable (see README)")
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        task_type, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"TF_CONFIG is not a cluster description ({error}); expected"
            ' {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'
        ) from None
    if task_type not in config["cluster"] or not 0 <= index < len(config["cluster"][task_type]):
        raise ValueError(f"TF_CONFIG: task {task_type} {index} is not in the cluster {config['cluster']}")
    if not isinstance(workers, list) or not workers:
        raise ValueError("TF_CONFIG: cluster.worker must list at least one host:port")


def cluster_of(strategy: tf.distribute.Strategy) -> dict:
    """The cluster a multi-worker strategy was given ({"worker": [...], ...}); {} for one process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver.cluster_spec().as_dict() if resolver is not None else {}


def in_multi_worker_mode(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(cluster_of(strategy))


def task_of(strategy: tf.distribute.Strategy) -> tuple[str, int]:
    """(task type, index) of this process: ("worker", 0) when there is no cluster."""
    if not cluster_of(strategy):
        return "worker", 0
    resolver = strategy.cluster_resolver
    return resolver.task_type or "worker", int(resolver.task_id or 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The chief: the task named "chief", or worker 0 where the cluster names no chief."""
    task_type, index = task_of(strategy)
    return task_type == "chief" or (task_type == "worker" and index == 0 and "chief" not in cluster_of(strategy))


def describe(strategy: tf.distribute.Strategy) -> str:
    """One line for the log: which strategy, this process's role among several workers, the replicas."""
    distributed = (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)
    name = type(strategy).__name__ if isinstance(strategy, distributed) else "default (one device)"
    if in_multi_worker_mode(strategy):
        task_type, index = task_of(strategy)
        name += " (chief)" if is_chief(strategy) else f" ({task_type} {index})"
    return f"strategy: {name}; replicas: {strategy.num_replicas_in_sync}"


def same_on_all_replicas(strategy: tf.distribute.Strategy, value: int) -> bool:
    """Whether every replica holds the same number: sum(x)^2 == n * sum(x^2) only when all x are equal."""

    @tf.function
    def sums():
        number = tf.constant(float(value))
        return strategy.reduce("SUM", strategy.run(lambda: tf.stack([number, number * number])), axis=None)

    total, squares = (float(item) for item in sums())
    return abs(total * total - strategy.num_replicas_in_sync * squares) < 1e-6 * max(1.0, squares)


def fit_across_workers(model, strategy, train_data, epochs: int, initial_epoch: int, callbacks, log) -> None:
    """Keras fit's epoch loop, for MultiWorkerMirroredStrategy.

    Keras 3.15's fit cannot run under that strategy (keras-team/keras#20585: it reduces a
    distributed input batch, then the scalar metrics along an axis they lack). This loop does
    what fit does for train.py, with TensorFlow's documented custom-loop pieces: a distributed
    dataset, strategy.run, the loss averaged over the global batch, and Keras' optimizer (which
    sums the gradients of all replicas); the same callbacks run (validation is one of them).
    """
    if not same_on_all_replicas(strategy, initial_epoch):
        raise CheckpointError(
            "the workers would start at different epochs (a restart or --resume without the checkpoint"
            " folder on storage they all share); start every worker again, from one shared checkpoint folder"
        )
    train_batches = strategy.experimental_distribute_dataset(train_data)
    optimizer = model.optimizer

    def train_step(low_res, high_res):
        with tf.GradientTape() as tape:
            predicted = tf.cast(model(low_res, training=True), tf.float32)
            per_image = model.loss.call(high_res, predicted)  # the compiled loss (network.PixelLoss), per image
            loss = tf.nn.compute_average_loss(per_image)  # averaged over the global batch
            scaled = optimizer.scale_loss(loss)  # loss scaling under mixed_float16, else unchanged
        gradients = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return tf.stack([tf.reduce_sum(per_image), tf.cast(tf.shape(per_image)[0], tf.float32)])

    @tf.function
    def distributed_train_step(batch):
        return strategy.reduce("SUM", strategy.run(train_step, args=batch), axis=None)

    callback_list = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        loss_sum, count = 0.0, 0.0
        for step, batch in enumerate(train_batches):
            callback_list.on_train_batch_begin(step)
            step_loss, step_count = (float(value) for value in distributed_train_step(batch))
            loss_sum, count = loss_sum + step_loss, count + step_count
            callback_list.on_train_batch_end(step, {"loss": step_loss / max(step_count, 1.0)})
            if model.stop_training:
                break
        logs = {"loss": loss_sum / max(count, 1.0)}
        callback_list.on_epoch_end(epoch, logs)
        log(f"epoch {epoch + 1}/{epochs}: " + " - ".join(f"{key}: {value:.4f}" for key, value in logs.items()))
        if model.stop_training:
            break
    callback_list.on_train_end()
