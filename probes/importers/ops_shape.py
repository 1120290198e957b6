"""Shape ops on activations: Reshape/Flatten/Squeeze/Unsqueeze, Transpose, Concat, Shape."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from probes.importers.context import Act, Ctx, Unsupported, Value, const, onnx_axis
from probes.importers.registry import converter

Ins = list[Value | None]


def _act(v: Value | None) -> Act:
    if not isinstance(v, Act):
        raise Unsupported("expected an activation input")
    return v


def reshape_to(ctx: Ctx, a: Act, target: list[int], batch_at: int) -> Act:
    """Reshape ``a`` to the full ONNX shape ``target`` whose axis ``batch_at`` is the batch.

    The batch may sit mid-tensor (after an RNN) as long as the reshape groups the axes
    before it and after it separately, keeping the batch a whole axis.
    """
    src = a.onnx_shape(ctx.batch)
    b = a.batch_axis
    if a.perm is not None and [p for p in a.perm if p != 0] != sorted(p for p in a.perm if p):
        a = ctx.canonical(a)
        src, b = a.onnx_shape(ctx.batch), 0
    if math.prod(src[:b]) != math.prod(target[:batch_at]) or math.prod(src[b + 1 :]) != math.prod(
        target[batch_at + 1 :]
    ):
        raise Unsupported(f"reshape {list(src)} -> {target} mixes the batch axis with others")
    per_sample = [d for i, d in enumerate(target) if i != batch_at]
    base = Act(a.ref, a.shape, a.dtype)
    out = base
    if tuple(per_sample) != a.shape:
        out = ctx.emit("reshape", [base], {"shape": per_sample})
    if batch_at == 0:
        return out
    order = list(range(1, len(target)))
    perm = tuple([*order[:batch_at], 0, *order[batch_at:]])
    return Act(out.ref, out.shape, out.dtype, perm)


def _batch_position(ctx: Ctx, a: Act, target: list[int]) -> int:
    b = a.batch_axis
    if b < len(target) and target[b] == ctx.batch:
        return b
    hits = [i for i, d in enumerate(target) if d == ctx.batch]
    if len(hits) == 1:
        return hits[0]
    raise Unsupported(f"cannot tell which axis of {target} is the batch")


@converter("Reshape")
def reshape(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = _act(ins[0])
    target = [int(v) for v in const(ins[1], "the target shape")]
    src = a.onnx_shape(ctx.batch)
    if not attrs.get("allowzero", 0):
        target = [src[i] if v == 0 and i < len(src) else v for i, v in enumerate(target)]
    if target.count(-1) == 1:
        known = math.prod(d for d in target if d != -1)
        total = math.prod(src)
        if known == 0 or total % known:
            raise Unsupported(f"cannot reshape {list(src)} to {target}")
        target[target.index(-1)] = total // known
    return [reshape_to(ctx, a, target, _batch_position(ctx, a, target))]


@converter("Flatten")
def flatten(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.canonical(_act(ins[0]))
    axis = attrs.get("axis", 1)
    rank = len(a.shape) + 1
    axis = axis % rank if axis < 0 else axis
    if axis == 1:
        return [ctx.emit("flatten", [a]) if len(a.shape) > 1 else a]
    if axis == 0:
        raise Unsupported("Flatten with axis=0 merges the batch axis")
    full = (ctx.batch, *a.shape)
    return [reshape_to(ctx, a, [math.prod(full[:axis]), math.prod(full[axis:])], 0)]


def _axes(attrs: dict[str, Any], ins: Ins) -> list[int]:
    if len(ins) > 1 and ins[1] is not None:
        return [int(v) for v in const(ins[1], "axes").reshape(-1)]
    return [int(v) for v in attrs.get("axes", [])]


@converter("Squeeze")
def squeeze(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = _act(ins[0])
    src = list(a.onnx_shape(ctx.batch))
    axes = {ax % len(src) for ax in _axes(attrs, ins)} or {
        i for i, d in enumerate(src) if d == 1 and i != a.batch_axis
    }
    if a.batch_axis in axes:
        raise Unsupported("Squeeze removes the batch axis")
    target = [d for i, d in enumerate(src) if i not in axes]
    at = a.batch_axis - sum(1 for ax in axes if ax < a.batch_axis)
    return [reshape_to(ctx, a, target, at)]


@converter("Unsqueeze")
def unsqueeze(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = _act(ins[0])
    src = list(a.onnx_shape(ctx.batch))
    rank = len(src) + len(_axes(attrs, ins))
    target: list[int | None] = [None] * rank
    for ax in _axes(attrs, ins):
        target[ax % rank] = 1
    it = iter(enumerate(src))
    at = 0
    for i in range(rank):
        if target[i] is None:
            j, d = next(it)
            target[i] = d
            if j == a.batch_axis:
                at = i
    return [reshape_to(ctx, a, [int(d or 1) for d in target], at)]


@converter("Transpose")
def transpose(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = _act(ins[0])
    rank = len(a.shape) + 1
    perm = [int(p) for p in attrs.get("perm", list(range(rank))[::-1])]
    base = a.perm or tuple(range(rank))
    return [Act(a.ref, a.shape, a.dtype, tuple(base[p] for p in perm))]


@converter("Shape")
def shape(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    dims = np.array(_act(ins[0]).onnx_shape(ctx.batch), np.int64)
    return [dims[attrs.get("start", 0) : attrs.get("end", len(dims))]]


@converter("Size")
def size(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    return [np.array(math.prod(_act(ins[0]).onnx_shape(ctx.batch)), np.int64)]


@converter("Identity", "Dropout")
def identity(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    v = ins[0]
    assert v is not None
    return [v]


@converter("Cast")
def cast(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = _act(ins[0])
    to = {1: "float32", 7: "int64", 6: "int64"}.get(int(attrs["to"]))
    if to != a.dtype:
        raise Unsupported(f"casts a {a.dtype} activation to type {attrs['to']}")
    return [a]


@converter("Concat")
def concat(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    given = [v for v in ins if v is not None]
    if any(isinstance(v, np.ndarray) for v in given):
        return [_class_token(ctx, int(attrs["axis"]), given)]
    acts = [ctx.act(v, "a Concat input") for v in given]
    axis = onnx_axis(int(attrs["axis"]), len(acts[0].shape) + 1)
    if len(acts) == 1:
        return [acts[0]]
    return [ctx.emit("concat", acts, {"axis": axis})]


def _class_token(ctx: Ctx, axis: int, given: list[Value]) -> Act:
    """``cat([token.expand(B, -1, -1), x], dim=1)`` on [B, T, E] (or the token last):
    the spec's ``class_token``."""
    consts = [i for i, v in enumerate(given) if isinstance(v, np.ndarray)]
    if len(given) != 2 or len(consts) != 1:
        raise Unsupported(
            "a Concat input is a constant: only one learned token put before or after "
            "a [T, E] sequence (a class token) is supported"
        )
    c = given[consts[0]]
    assert isinstance(c, np.ndarray)
    a = ctx.act(given[1 - consts[0]], "the Concat sequence input")
    if len(a.shape) != 2 or onnx_axis(axis, 3) != 0:
        raise Unsupported("a constant Concat input is only supported along the sequence of [T, E]")
    if c.ndim != 3 or c.shape[0] not in (1, ctx.batch) or c.shape[1:] != (1, a.shape[1]):
        raise Unsupported(
            f"a constant Concat input of shape {list(c.shape)}: a class token must be "
            f"[1, 1, {a.shape[1]}] (or expanded to the batch)"
        )
    if not np.all(c == c[:1]):
        raise Unsupported("a constant Concat input varies along the batch")
    params = {"at": "start" if consts[0] == 0 else "end"}
    return ctx.emit("class_token", [a], params, {"weight": c[0, 0].astype(np.float32)})


@converter("CastLike")
def cast_like(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    like = ins[1]
    dtype = like.dtype if isinstance(like, Act) else str(const(like, "the type source").dtype)
    if isinstance(ins[0], np.ndarray):
        return [ins[0].astype(dtype)]
    a = _act(ins[0])
    if dtype != a.dtype:
        raise Unsupported(f"casts a {a.dtype} activation to {dtype}")
    return [a]
