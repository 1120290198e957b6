"""Keras layers for the spec's ``matmul`` and ``slice`` ops (neutral layout).

Imported only inside probe worker processes.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="fwadvisor")
class MatMul(keras.layers.Layer):
    def call(self, a: Any, b: Any) -> Any:
        return ops.matmul(a, b)


@keras.saving.register_keras_serializable(package="fwadvisor")
class Slice(keras.layers.Layer):
    """``x[:, ..., start:end:step, ...]`` on tensor axis ``axis`` (batch is axis 0)."""

    def __init__(
        self, axis: int, start: int, end: int | None, step: int, squeeze: bool, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.axis, self.start, self.end, self.step, self.squeeze = axis, start, end, step, squeeze

    def call(self, x: Any) -> Any:
        index: list[Any] = [slice(None)] * len(x.shape)
        index[self.axis] = slice(self.start, self.end, self.step)
        out = x[tuple(index)]
        return ops.squeeze(out, axis=self.axis) if self.squeeze else out

    def get_config(self) -> dict[str, Any]:
        extra = {"axis": self.axis, "start": self.start, "end": self.end, "step": self.step}
        return {**super().get_config(), **extra, "squeeze": self.squeeze}


@keras.saving.register_keras_serializable(package="fwadvisor")
class Affine(keras.layers.Layer):
    """x * scale + shift with learned tensors broadcast over the per-sample shape."""

    def __init__(self, shape: list[int], scale: bool, shift: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.shape_, self.use_scale, self.use_shift = list(shape), scale, shift

    def build(self, input_shape: Any) -> None:
        if self.use_scale:
            self.scale = self.add_weight(shape=tuple(self.shape_), initializer="ones", name="scale")
        if self.use_shift:
            self.shift = self.add_weight(
                shape=tuple(self.shape_), initializer="zeros", name="shift"
            )

    def call(self, x: Any) -> Any:
        if self.use_scale:
            x = x * self.scale
        return x + self.shift if self.use_shift else x

    def get_config(self) -> dict[str, Any]:
        extra = {"shape": self.shape_, "scale": self.use_scale, "shift": self.use_shift}
        return {**super().get_config(), **extra}


@keras.saving.register_keras_serializable(package="fwadvisor")
class ChannelPRelu(keras.layers.Layer):
    """``max(x, 0) + alpha * min(x, 0)``, one slope per channel on the last axis
    (channels-last images, or the features of a vector)."""

    def __init__(self, channels: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.channels = channels

    def build(self, input_shape: Any) -> None:
        self.alpha = self.add_weight(shape=(self.channels,), initializer="zeros", name="alpha")

    def call(self, x: Any) -> Any:
        return ops.maximum(x, 0.0) + self.alpha * ops.minimum(x, 0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "channels": self.channels}
