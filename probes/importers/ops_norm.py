"""Instance and group normalization and PRelu, decomposed into spec ops.

Normalising over the last axis is one ``custom`` expression (mean and variance with
keepdims reductions); per-channel scale, shift and slope are ``affine`` nodes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from probes.importers.context import Act, Ctx, Unsupported, Value, const
from probes.importers.ops_act import custom
from probes.importers.ops_shape import reshape_to
from probes.importers.registry import converter

Ins = list[Value | None]
NORMALIZE = (
    "(x - mean(x, axis=-1, keepdims=True)) * rsqrt(mean(square(x - mean(x, axis=-1, "
    "keepdims=True)), axis=-1, keepdims=True) + eps)"
)


def _grouped_norm(ctx: Ctx, a: Act, groups: int, eps: float) -> Act:
    """Normalise each of ``groups`` channel groups over its channels and positions."""
    c = a.shape[0]
    flat = reshape_to(ctx, a, [ctx.batch, groups, math.prod(a.shape) // groups], 0)
    normed = custom(ctx, [flat], NORMALIZE, {"eps": eps}, "normalize")
    return reshape_to(ctx, normed, [ctx.batch, c, *a.shape[1:]], 0) if len(a.shape) > 1 else normed


def _per_channel(ctx: Ctx, a: Act, scale: np.ndarray | None, shift: np.ndarray | None) -> Act:
    c, rank = a.shape[0], len(a.shape)
    shape = [c, *([1] * (rank - 1))]
    weights: dict[str, np.ndarray] = {}
    if scale is not None and not np.all(scale == 1):
        weights["scale"] = scale.reshape(shape).astype(np.float32)
    if shift is not None and np.any(shift):
        weights["shift"] = shift.reshape(shape).astype(np.float32)
    if not weights:
        return a
    params = {"shape": shape, "scale": "scale" in weights, "shift": "shift" in weights}
    return ctx.emit("affine", [a], params, weights)


@converter("InstanceNormalization")
def instance_norm(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    if len(a.shape) < 2:
        raise Unsupported("instance normalization of a rank-1 input")
    c = a.shape[0]
    scale, shift = const(ins[1], "the scale"), const(ins[2], "the bias")
    if scale.size != c or shift.size != c:
        raise Unsupported(f"scale/bias of {scale.size} for {c} channels")
    normed = _grouped_norm(ctx, a, c, float(attrs.get("epsilon", 1e-5)))
    return [_per_channel(ctx, normed, scale, shift)]


@converter("GroupNormalization")
def group_norm(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    groups, c = int(attrs["num_groups"]), a.shape[0]
    if groups <= 0 or c % groups:
        raise Unsupported(f"{groups} groups for {c} channels")
    scale, shift = const(ins[1], "the scale"), const(ins[2], "the bias")
    if scale.size == groups and groups != c:  # opset 18: one value per group
        scale, shift = np.repeat(scale, c // groups), np.repeat(shift, c // groups)
    normed = _grouped_norm(ctx, a, groups, float(attrs.get("epsilon", 1e-5)))
    return [_per_channel(ctx, normed, scale, shift)]


@converter("PRelu")
def prelu(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    slope = const(ins[1], "the slope").astype(np.float32)
    if slope.size == 1:
        s = float(slope.reshape(-1)[0])
        return [custom(ctx, [a], "where(x >= 0, x, s * x)", {"s": s}, "prelu")]
    pos = ctx.emit("relu", [a])
    neg = custom(ctx, [a], "minimum(x, 0)", {}, "prelu_neg")
    w = slope.reshape(slope.shape[1:]) if slope.ndim == len(a.shape) + 1 else slope
    if w.ndim > len(a.shape):
        raise Unsupported(f"a slope of shape {list(slope.shape)}")
    scaled = ctx.emit("affine", [neg], {"shape": list(w.shape)}, {"scale": w})
    return [ctx.emit("add", [pos, scaled])]
