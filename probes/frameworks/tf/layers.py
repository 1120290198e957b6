"""Small Keras 3 layers for ops Keras lacks. Imported only inside probe workers.

Each is a plain ``keras.layers.Layer`` built from ``keras.ops`` (never a Lambda), so
models stay serialisable for SavedModel / LiteRT export.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from probes.errors import NotDifferentiableError
from probes.spec import TensorInfo
from probes.spec.expr_eval import AxisMap, channels_last_axis, neutral_axis
from probes.spec.ops_custom import (
    CustomParams,
    CustomProgram,
    compile_custom,
    numpy_backward,
    numpy_forward,
    run_backward,
    run_forward,
)


@keras.saving.register_keras_serializable(package="fwadvisor")
class ConstantPad(keras.layers.Layer):
    """Pads spatial axes of a channels-last tensor with a constant (``-inf`` for max pool)."""

    def __init__(self, pads: list[list[int]], value: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.pads, self.value = [list(p) for p in pads], float(value)

    def call(self, x: Any) -> Any:
        return ops.pad(x, [[0, 0], *self.pads, [0, 0]], constant_values=self.value)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pads": self.pads, "value": self.value}


def adaptive_matrix(size: int, out: int) -> np.ndarray:
    """Averaging matrix (out x size) with PyTorch's adaptive-pool bin edges."""
    m = np.zeros((out, size), np.float32)
    for i in range(out):
        lo, hi = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


@keras.saving.register_keras_serializable(package="fwadvisor")
class AdaptiveAvgPool2D(keras.layers.Layer):
    """Channels-last adaptive average pool as two constant averaging matrices."""

    def __init__(self, in_hw: list[int], out_hw: list[int], **kw: Any) -> None:
        super().__init__(**kw)
        self.in_hw, self.out_hw = list(in_hw), list(out_hw)
        self.mh = adaptive_matrix(self.in_hw[0], self.out_hw[0])
        self.mw = adaptive_matrix(self.in_hw[1], self.out_hw[1])

    def call(self, x: Any) -> Any:
        mh, mw = ops.cast(self.mh, x.dtype), ops.cast(self.mw, x.dtype)  # bf16-safe
        return ops.einsum("ih,bhwc,jw->bijc", mh, x, mw)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "in_hw": self.in_hw, "out_hw": self.out_hw}


@keras.saving.register_keras_serializable(package="fwadvisor")
class PositionEmbedding(keras.layers.Layer):
    def __init__(self, max_len: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.max_len = max_len

    def build(self, input_shape: Any) -> None:
        self.table = self.add_weight(
            shape=(self.max_len, input_shape[-1]), name="table", initializer="zeros"
        )

    def call(self, x: Any) -> Any:
        return x + self.table[: ops.shape(x)[1]]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_len": self.max_len}


@keras.saving.register_keras_serializable(package="fwadvisor")
class ClassToken(keras.layers.Layer):
    """One learned token before (or after) the sequence: [B, T, E] -> [B, T+1, E]."""

    def __init__(self, at_end: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.at_end = at_end

    def build(self, input_shape: Any) -> None:
        self.token = self.add_weight(shape=(input_shape[-1],), name="token", initializer="zeros")

    def call(self, x: Any) -> Any:
        tok = ops.cast(self.token, x.dtype)
        tok = ops.broadcast_to(ops.reshape(tok, (1, 1, -1)), (ops.shape(x)[0], 1, ops.shape(x)[2]))
        return ops.concatenate([x, tok] if self.at_end else [tok, x], axis=1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "at_end": self.at_end}


@keras.saving.register_keras_serializable(package="fwadvisor")
class ReduceMean(keras.layers.Layer):
    def __init__(self, axis: int, keepdims: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.axis, self.keepdims = axis, keepdims

    def call(self, x: Any) -> Any:
        return ops.mean(x, axis=self.axis, keepdims=self.keepdims)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis, "keepdims": self.keepdims}


@keras.saving.register_keras_serializable(package="fwadvisor")
class SelfAttention(keras.layers.Layer):
    """Keras MultiHeadAttention called as self-attention, optionally causal."""

    def __init__(self, num_heads: int, key_dim: int, causal: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.num_heads, self.key_dim, self.causal = num_heads, key_dim, causal
        self.mha = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=key_dim)

    def build(self, input_shape: Any) -> None:
        self.mha.build(input_shape, input_shape)

    def call(self, x: Any) -> Any:
        return self.mha(x, x, use_causal_mask=self.causal)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "causal": self.causal,
        }


TF: dict[str, Callable[..., Any]] = {
    "exp": tf.exp,
    "log": tf.math.log,
    "log1p": tf.math.log1p,
    "sqrt": tf.sqrt,
    "rsqrt": tf.math.rsqrt,
    "abs": tf.abs,
    "tanh": tf.tanh,
    "sigmoid": tf.sigmoid,
    "relu": tf.nn.relu,
    "sin": tf.sin,
    "cos": tf.cos,
    "erf": tf.math.erf,
    "square": tf.square,
    "minimum": tf.minimum,
    "maximum": tf.maximum,
    "clip": tf.clip_by_value,
    "where": tf.where,
    "sum": lambda v, a, k: tf.reduce_sum(v, axis=a, keepdims=k),
    "mean": lambda v, a, k: tf.reduce_mean(v, axis=a, keepdims=k),
    "max": lambda v, a, k: tf.reduce_max(v, axis=a, keepdims=k),
    "min": lambda v, a, k: tf.reduce_min(v, axis=a, keepdims=k),
    "scalar": lambda v, ref: tf.constant(v, dtype=ref.dtype),
    "full_like": lambda ref, v: tf.fill(tf.shape(ref), tf.constant(v, dtype=ref.dtype)),
}


def not_differentiable(prog: CustomProgram) -> NotDifferentiableError:
    err = NotDifferentiableError(
        f"custom op '{prog.name}' is opaque and declares no grad, so it cannot be trained; "
        "add `grad` expressions or set `opaque: false`"
    )
    err.ag_pass_through = True  # type: ignore[attr-defined]  # AutoGraph: keep the class
    return err


def _opaque(prog: CustomProgram, xs: Sequence[Any], axis_map: AxisMap, shape: Any) -> Any:
    """``tf.numpy_function`` running the numpy evaluator: invisible to TF's compilers."""

    def fwd(*arrays: np.ndarray) -> np.ndarray:
        return numpy_forward(prog, arrays, axis_map).astype(arrays[0].dtype)

    def bwd(*arrays: np.ndarray) -> list[np.ndarray]:
        *a, y, g = arrays
        grads = numpy_backward(prog, a, y, g, axis_map)
        return [r.astype(x.dtype) for r, x in zip(grads, a, strict=True)]

    @tf.custom_gradient  # type: ignore[untyped-decorator]
    def call(*args: Any) -> Any:
        y = tf.numpy_function(fwd, list(args), args[0].dtype, stateful=False)
        y.set_shape(shape)

        def grad(g: Any) -> Any:
            if prog.grads is None:
                raise not_differentiable(prog)
            gs = tf.numpy_function(bwd, [*args, y, g], [x.dtype for x in args], stateful=False)
            gs = list(gs) if isinstance(gs, list | tuple) else [gs]  # one output: no list
            for gi, x in zip(gs, args, strict=True):
                gi.set_shape(x.shape)
            return gs

        return y, grad

    return call(*xs)


def custom_call(prog: CustomProgram, xs: Sequence[Any], channels_last: bool = False) -> Any:
    """Apply a custom node to TF tensors stored neutral or (layout-free nodes) channels-last."""
    axis_map = channels_last_axis if channels_last else neutral_axis
    if prog.opaque:
        out = prog.out_shape
        out = (*out[1:], out[0]) if channels_last and len(out) >= 2 else out
        return _opaque(prog, xs, axis_map, (xs[0].shape[0], *out))
    if prog.grads is None:
        return run_forward(prog, TF, xs, axis_map)

    @tf.custom_gradient  # type: ignore[untyped-decorator]
    def call(*args: Any) -> Any:
        y = run_forward(prog, TF, args, axis_map)
        return y, lambda g: run_backward(prog, TF, args, y, g, axis_map)

    return call(*xs)


@keras.saving.register_keras_serializable(package="fwadvisor")
class CustomExpr(keras.layers.Layer):
    """A ``custom`` node. ``channels_last``: inputs (and output) are stored channels-last,
    which only layout-free programs (elementwise, one input rank) accept."""

    def __init__(
        self, params: dict[str, Any], in_shapes: list[list[int]], channels_last: bool, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.params, self.in_shapes = dict(params), [list(s) for s in in_shapes]
        self.channels_last = channels_last
        infos = [TensorInfo(tuple(s)) for s in self.in_shapes]
        self.prog = compile_custom(CustomParams.model_validate(self.params), infos, self.name)
        assert self.prog.layout_free or not channels_last

    def call(self, inputs: Any) -> Any:
        xs = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
        return custom_call(self.prog, xs, self.channels_last)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        first = input_shape[0] if isinstance(input_shape[0], list | tuple) else input_shape
        out = self.prog.out_shape
        if self.channels_last and len(out) >= 2:
            out = (*out[1:], out[0])
        return (first[0], *out)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "params": self.params,
            "in_shapes": self.in_shapes,
            "channels_last": self.channels_last,
        }


def custom_grads(
    prog: CustomProgram,
    arrays: Sequence[np.ndarray],
    upstream: np.ndarray,
    mode: str,
    dtype: Any = tf.float64,
) -> list[np.ndarray]:
    """dLoss/dx_i for loss = sum(y * upstream), as TensorFlow computes it in ``mode``
    (``autodiff``, ``explicit`` or ``opaque``); arrays in the neutral layout."""
    variant = replace(
        prog, opaque=mode == "opaque", grads=None if mode == "autodiff" else prog.grads
    )
    xs = [tf.constant(a, dtype=dtype) for a in arrays]
    with tf.GradientTape() as tape:
        tape.watch(xs)
        loss = tf.reduce_sum(custom_call(variant, xs) * tf.constant(upstream, dtype=dtype))
    return [np.asarray(gr, dtype=np.float64) for gr in tape.gradient(loss, xs)]
