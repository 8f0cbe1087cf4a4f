"""tf.distribute for train.py: one device, several GPUs of one machine, or several machines.

The strategies are TensorFlow's own. With several workers (TF_CONFIG), every worker runs the
same train.py; only the chief writes checkpoints, logs and plots.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multiworker")


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


def task_of(strategy: tf.distribute.Strategy) -> tuple[str, int]:
    """(task type, index) of this process: ("worker", 0) when there is no cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return "worker", 0
    return resolver.task_type or "worker", int(resolver.task_id or 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The chief: the task named "chief", or worker 0 where the cluster names no chief."""
    task_type, index = task_of(strategy)
    resolver = getattr(strategy, "cluster_resolver", None)
    has_chief = resolver is not None and "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (task_type == "worker" and index == 0 and not has_chief)


def describe(strategy: tf.distribute.Strategy) -> str:
    task_type, index = task_of(strategy)
    role = "chief" if is_chief(strategy) else f"{task_type} {index}"
    return f"strategy: {type(strategy).__name__} ({role}); replicas: {strategy.num_replicas_in_sync}"
