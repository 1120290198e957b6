"""TensorFlow/Keras side of the worker: parity passes and timed steps under TFSettings.

The worker sets TF_ENABLE_ONEDNN_OPTS before this module is imported (it is read once,
at TensorFlow's import).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import tensorflow as tf

from probes.errors import UnsupportedError, brief
from probes.frameworks import EVAL_BATCH, Backend, Optimized, Step, Trainer
from probes.frameworks.tf import build as build_tf
from probes.frameworks.tf import weights as tf_weights
from probes.frameworks.tf.layers import custom_grads as custom_grads
from probes.payloads import CompileCheck
from probes.protocol import ConvergenceWorkload, TrainStepWorkload, TrainWorkload
from probes.settings import FrameworkSettings, TFSettings, cpu_budget
from probes.spec import SpecGraph
from probes.weights import NeutralWeights


def _own(settings: FrameworkSettings | None) -> TFSettings:
    if settings is None:
        return TFSettings()
    if not isinstance(settings, TFSettings):
        raise TypeError(f"TensorFlow backend given {settings.framework} settings")
    return settings


def configure(settings: FrameworkSettings | None, device: str = "cpu") -> dict[str, str]:
    s = _own(settings)
    tf.config.threading.set_intra_op_parallelism_threads(s.intra_threads or cpu_budget())
    if s.inter_threads:
        tf.config.threading.set_inter_op_parallelism_threads(s.inter_threads)
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cuda":
        if not gpus:
            raise UnsupportedError("device=cuda requested but TensorFlow sees no GPU")
        for gpu in gpus:  # allocator peaks are only meaningful with growth on
            tf.config.experimental.set_memory_growth(gpu, True)
    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if s.precision == "bf16" else "float32"
    )
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "intra_threads": str(tf.config.threading.get_intra_op_parallelism_threads()),
        "device": gpus[0].name if device == "cuda" else "cpu",
    }


def _device(device: str) -> str:
    return "/GPU:0" if device == "cuda" else "/CPU:0"


def _feed(built: build_tf.KerasBuild, graph: SpecGraph, inputs: list[np.ndarray]) -> list[Any]:
    return [
        build_tf.to_cl(x) if built.input_layouts[i.name] == build_tf.CL else x
        for i, x in zip(graph.spec.inputs, inputs, strict=True)
    ]


def _listed(outs: Any) -> list[Any]:
    return list(outs) if isinstance(outs, list | tuple) else [outs]


def _outputs(built: build_tf.KerasBuild, outs: Any) -> list[np.ndarray]:
    return [
        build_tf.to_neutral(np.asarray(o)) if lay == build_tf.CL else np.asarray(o)
        for o, lay in zip(_listed(outs), built.output_layouts, strict=True)
    ]


def _compiled(fn: Callable[..., Any], s: TFSettings) -> Callable[..., Any]:
    if s.mode == "eager":
        return fn
    return tf.function(fn, jit_compile=s.mode == "xla")


def _materialise(out: Any) -> None:
    for o in _listed(out):
        o.numpy()  # blocks until computed; zero-copy for CPU tensors


def _optimizer(workload: Optimized, first_step_parity: bool = False) -> keras.optimizers.Optimizer:
    """SGD (with the workload's momentum, if any) or Adam with PyTorch's epsilon.

    Keras adds epsilon to sqrt(v) before bias correction, PyTorch after it. For a single
    step (t=1), epsilon * sqrt(1 - beta2) makes Keras's update equal PyTorch's
    lr * g / (|g| + 1e-8) exactly (``first_step_parity``); see docs/spec.md.
    """
    if workload.optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=workload.lr, momentum=getattr(workload, "momentum", 0.0)
        )
    eps = 1e-8 * (1 - 0.999) ** 0.5 if first_step_parity else 1e-8
    return keras.optimizers.Adam(learning_rate=workload.lr, beta_2=0.999, epsilon=eps)


def infer_step(
    graph: SpecGraph,
    weights: NeutralWeights,
    arrays: list[np.ndarray],
    s: FrameworkSettings,
    device: str,
) -> Step:
    s = _own(s)
    with tf.device(_device(device)):
        built = build_tf.build(graph, weights)
        fed = [tf.constant(x) for x in _feed(built, graph, arrays)]
        model = built.model
        call = _compiled(lambda: model(fed if len(fed) > 1 else fed[0], training=False), s)

    def step() -> None:
        _materialise(call())  # placed by its inputs: built and fed under tf.device above

    return step


def train_step_fn(
    graph: SpecGraph,
    weights: NeutralWeights,
    arrays: list[np.ndarray],
    targets: list[np.ndarray],
    workload: TrainWorkload,
    s: FrameworkSettings,
    device: str,
) -> Step:
    s = _own(s)
    with tf.device(_device(device)):
        built = build_tf.build(graph, weights)
        fed = [tf.constant(x) for x in _feed(built, graph, arrays)]
        ys = [
            tf.constant(build_tf.to_cl(t) if lay == build_tf.CL else t)
            for t, lay in zip(targets, built.output_layouts, strict=True)
        ]
        model, opt = built.model, _optimizer(workload)
        opt.build(model.trainable_variables)

    def train() -> Any:
        with tf.GradientTape() as tape:
            outs = _listed(model(fed if len(fed) > 1 else fed[0], training=True))
            loss = tf.add_n(
                [
                    tf.reduce_mean((tf.cast(o, tf.float32) - y) ** 2)
                    for o, y in zip(outs, ys, strict=True)
                ]
            )
        variables = model.trainable_variables
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    call = _compiled(train, s)

    def step() -> float:
        return float(call().numpy())

    return step


def peak_step(n: int, device: str) -> Step:
    with tf.device(_device(device)):
        a, b = tf.random.normal((n, n)), tf.random.normal((n, n))

    def step() -> None:
        _materialise(tf.linalg.matmul(a, b))

    return step


def reset_device_peak(device: str) -> None:
    if device == "cuda":
        tf.config.experimental.reset_memory_stats("GPU:0")


def device_peak_bytes(device: str) -> int | None:
    if device != "cuda":
        return None
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])


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
    workload: TrainStepWorkload,
    names: dict[str, list[str]],
) -> tuple[float, NeutralWeights]:
    """One parity step; returns the loss and the updated trainable neutral weights."""
    built = build_tf.build(graph, weights)
    opt = _optimizer(workload, first_step_parity=True)
    fed = _feed(built, graph, inputs)
    native_targets = [
        build_tf.to_cl(t) if lay == build_tf.CL else t
        for t, lay in zip(targets, built.output_layouts, strict=True)
    ]
    with tf.GradientTape() as tape:
        outs = _listed(built.model(fed, training=True))
        loss = tf.add_n(
            [tf.reduce_mean((o - t) ** 2) for o, t in zip(outs, native_targets, strict=True)]
        )
    variables = built.model.trainable_variables
    opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
    return float(loss), tf_weights.dump_weights(built.cores, graph, names)


def trainer(
    graph: SpecGraph,
    weights: NeutralWeights,
    data: dict[str, np.ndarray],
    w: ConvergenceWorkload,
    s: FrameworkSettings,
    device: str,
) -> Trainer:
    """The convergence run's steps: in ``data``'s batch order, evaluated after each epoch.

    Keras SGD momentum (m = mu*m - lr*g; p += m) equals PyTorch's at constant lr.
    """
    s = _own(s)
    classify = graph.spec.task == "classification"
    with tf.device(_device(device)):
        built = build_tf.build(graph, weights)
        model = built.model
        cl_in = built.input_layouts[graph.spec.inputs[0].name] == build_tf.CL
        feed = build_tf.to_cl if cl_in else (lambda a: a)
        x, xv = tf.constant(feed(data["x_train"])), tf.constant(feed(data["x_val"]))
        cl_out = built.output_layouts[0] == build_tf.CL and not classify
        y = tf.constant(build_tf.to_cl(data["y_train"]) if cl_out else data["y_train"])
        opt = _optimizer(w)
        loss_fn = (
            keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            if classify
            else keras.losses.MeanSquaredError()
        )

    def train(idx: Any) -> Any:
        with tf.GradientTape() as tape:
            out = tf.cast(model(tf.gather(x, idx), training=True), tf.float32)
            loss = loss_fn(tf.gather(y, idx), out)
        variables = model.trainable_variables
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    compiled = _compiled(train, s)

    def step(rows: np.ndarray) -> float:
        return float(compiled(tf.constant(rows)).numpy())

    def predict() -> np.ndarray:
        n = int(xv.shape[0])
        chunks = [
            tf.cast(model(xv[i : i + EVAL_BATCH], training=False), tf.float32)
            for i in range(0, n, EVAL_BATCH)
        ]
        pred = tf.concat(chunks, axis=0).numpy()
        return build_tf.to_neutral(pred) if cl_out else pred

    return Trainer(step=step, predict=predict, epoch=lambda: tf.device(_device(device)))


def compile_check(
    graph: SpecGraph, weights: NeutralWeights, arrays: list[np.ndarray], full: bool
) -> list[CompileCheck]:
    """Does the eval model run as a tf.function graph, and under XLA (jit_compile), with
    the eager outputs? (``full`` is accepted for symmetry: both are real compiles.)"""
    built = build_tf.build(graph, weights)
    fed = [tf.constant(x) for x in _feed(built, graph, arrays)]
    model, x = built.model, fed if len(fed) > 1 else fed[0]
    ref = _listed(model(x, training=False))
    checks: list[CompileCheck] = []
    for name, jit in (
        ("tf.function (graph)", False),
        ("tf.function(jit_compile=True) (XLA)", True),
    ):
        t0 = time.perf_counter()
        try:
            got = _listed(tf.function(lambda: model(x, training=False), jit_compile=jit)())
            same = all(
                np.allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
                for a, b in zip(ref, got, strict=True)
            )
            detail = "outputs match eager" if same else "outputs differ from eager"
            checks.append(
                CompileCheck(name=name, ok=same, detail=detail, time_s=time.perf_counter() - t0)
            )
        except Exception as e:
            checks.append(CompileCheck(name=name, ok=False, detail=brief(e)))
    return checks


class TFBackend:
    """This module as a `Backend`: mypy checks every function against the protocol here."""

    configure = staticmethod(configure)
    infer_step = staticmethod(infer_step)
    train_step_fn = staticmethod(train_step_fn)
    peak_step = staticmethod(peak_step)
    reset_device_peak = staticmethod(reset_device_peak)
    device_peak_bytes = staticmethod(device_peak_bytes)
    forward = staticmethod(forward)
    train_step = staticmethod(train_step)
    compile_check = staticmethod(compile_check)
    custom_grads = staticmethod(custom_grads)
    trainer = staticmethod(trainer)


BACKEND: Backend = TFBackend()
