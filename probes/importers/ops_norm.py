"""Instance and group normalization and PRelu -> the spec's ``instance_norm``,
``group_norm`` and ``prelu``. A PRelu slope that is not one value per channel (or one
value) is decomposed: ``relu`` + ``custom`` + ``affine`` + ``add``, exact but slower.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from probes.importers.context import Ctx, Unsupported, Value, const
from probes.importers.ops_act import custom
from probes.importers.registry import converter

Ins = list[Value | None]


def _norm_weights(c: int, scale: np.ndarray, shift: np.ndarray) -> dict[str, np.ndarray]:
    if scale.size != c or shift.size != c:
        raise Unsupported(f"scale/bias of {scale.size}/{shift.size} values for {c} channels")
    return {"gamma": scale.reshape(c), "beta": shift.reshape(c)}


@converter("InstanceNormalization")
def instance_norm(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    if not 2 <= len(a.shape) <= 4:
        raise Unsupported(f"instance normalization of a rank-{len(a.shape)} input")
    weights = _norm_weights(a.shape[0], const(ins[1], "the scale"), const(ins[2], "the bias"))
    params = {"eps": float(attrs.get("epsilon", 1e-5))}
    return [ctx.emit("instance_norm", [a], params, weights)]


@converter("GroupNormalization")
def group_norm(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    groups, c = int(attrs["num_groups"]), a.shape[0]
    if groups <= 0 or c % groups:
        raise Unsupported(f"{groups} groups for {c} channels")
    scale, shift = const(ins[1], "the scale"), const(ins[2], "the bias")
    if scale.size == groups and groups != c:  # opset 18: one value per group
        scale, shift = np.repeat(scale, c // groups), np.repeat(shift, c // groups)
    params = {"groups": groups, "eps": float(attrs.get("epsilon", 1e-5))}
    return [ctx.emit("group_norm", [a], params, _norm_weights(c, scale, shift))]


def _channel_slope(slope: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """The slope as one value per channel (axis 0), if ONNX broadcasting makes it that."""
    c = shape[0]
    if slope.size == 1:
        return np.full(c, float(slope.reshape(-1)[0]), np.float32)
    dims = list(slope.shape)
    while len(dims) > len(shape) and dims[0] == 1:
        dims.pop(0)
    if len(dims) == len(shape) and dims[0] == c and all(d == 1 for d in dims[1:]):
        return slope.reshape(c).astype(np.float32)
    return None


@converter("PRelu")
def prelu(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    slope = const(ins[1], "the slope").astype(np.float32)
    alpha = _channel_slope(slope, a.shape)
    if alpha is not None:
        return [ctx.emit("prelu", [a], {}, {"alpha": alpha})]
    pos = ctx.emit("relu", [a])
    neg = custom(ctx, [a], "minimum(x, 0)", {}, "prelu_neg")
    w = slope.reshape(slope.shape[1:]) if slope.ndim == len(a.shape) + 1 else slope
    if w.ndim > len(a.shape):
        raise Unsupported(f"a slope of shape {list(slope.shape)}")
    scaled = ctx.emit("affine", [neg], {"shape": list(w.shape)}, {"scale": w})
    return [ctx.emit("add", [pos, scaled])]
