"""TensorFlow/Keras side of the worker: forward and training step on the built model."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import tensorflow as tf

from probes import build_tf
from probes.spec import SpecGraph
from probes.weights import NeutralWeights


def configure(threads: int | None) -> None:
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _feed(built: build_tf.KerasBuild, graph: SpecGraph, inputs: list[np.ndarray]) -> list[Any]:
    return [
        build_tf.to_cl(x) if built.input_layouts[i.name] == build_tf.CL else x
        for i, x in zip(graph.spec.inputs, inputs, strict=True)
    ]


def _outputs(built: build_tf.KerasBuild, outs: Any) -> list[np.ndarray]:
    outs = outs if isinstance(outs, list | tuple) else [outs]
    return [
        build_tf.to_neutral(np.asarray(o)) if lay == build_tf.CL else np.asarray(o)
        for o, lay in zip(outs, built.output_layouts, strict=True)
    ]


def forward(
    graph: SpecGraph, weights: NeutralWeights, inputs: list[np.ndarray]
) -> list[np.ndarray]:
    built = build_tf.build(graph, weights)
    return _outputs(built, built.model(_feed(built, graph, inputs), training=False))


def train_step(
    graph: SpecGraph,
    weights: NeutralWeights,
    inputs: list[np.ndarray],
    targets: list[np.ndarray],
    workload: Any,
    names: dict[str, list[str]],
) -> tuple[float, NeutralWeights]:
    import keras

    built = build_tf.build(graph, weights)
    # Keras adds epsilon to sqrt(v) before bias correction, PyTorch after it. For this
    # single step (t=1) epsilon * sqrt(1 - beta2) makes Keras's update equal PyTorch's
    # lr * g / (|g| + 1e-8) exactly; see docs/spec.md, "Known framework differences".
    opt = (
        keras.optimizers.SGD(learning_rate=workload.lr)
        if workload.optimizer == "sgd"
        else keras.optimizers.Adam(
            learning_rate=workload.lr, beta_2=0.999, epsilon=1e-8 * (1 - 0.999) ** 0.5
        )
    )
    fed = _feed(built, graph, inputs)
    native_targets = [
        build_tf.to_cl(t) if lay == build_tf.CL else t
        for t, lay in zip(targets, built.output_layouts, strict=True)
    ]
    with tf.GradientTape() as tape:
        outs = built.model(fed, training=True)
        outs = outs if isinstance(outs, list | tuple) else [outs]
        loss = tf.add_n(
            [tf.reduce_mean((o - t) ** 2) for o, t in zip(outs, native_targets, strict=True)]
        )
    variables = built.model.trainable_variables
    opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
    return float(loss), build_tf.dump_weights(built, graph, names)
