"""Small Keras 3 layers for ops Keras lacks. Imported only inside probe workers.

Each is a plain ``keras.layers.Layer`` built from ``keras.ops`` (never a Lambda), so
models stay serialisable for SavedModel / LiteRT export.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


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
