"""Gemm and MatMul with a constant weight -> dense; a following bias Add is folded in."""

from __future__ import annotations

from typing import Any

import numpy as np

from probes.importers.context import Act, Ctx, Unsupported, Value, const
from probes.importers.registry import converter

Ins = list[Value | None]


def dense(ctx: Ctx, a: Act, weight: np.ndarray, bias: np.ndarray | None) -> Act:
    """``weight`` in the neutral (out, in) layout."""
    if weight.ndim != 2 or weight.shape[1] != a.shape[-1]:
        raise Unsupported(f"weight {list(weight.shape)} does not fit input {list(a.shape)}")
    w = {"weight": weight}
    if bias is not None:
        w["bias"] = np.broadcast_to(bias.reshape(-1), (weight.shape[0],)).copy()
    params = {"units": int(weight.shape[0]), "bias": bias is not None}
    return ctx.emit("dense", [a], params, w)


@converter("Gemm")
def gemm(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    if attrs.get("transA", 0):
        raise Unsupported("Gemm with transA=1")
    b = const(ins[1], "Gemm's B")
    weight = b if attrs.get("transB", 0) else b.T
    weight = weight * float(attrs.get("alpha", 1.0))
    c = ins[2] if len(ins) > 2 else None
    bias = None if c is None else const(c, "Gemm's C") * float(attrs.get("beta", 1.0))
    if bias is not None and bias.size not in (1, weight.shape[0]):
        raise Unsupported(f"Gemm bias of shape {list(bias.shape)}")
    return [dense(ctx, a, weight, bias)]


@converter("MatMul")
def matmul(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    x, y = ins[0], ins[1]
    if isinstance(x, Act) and isinstance(y, np.ndarray):
        if y.ndim != 2:
            raise Unsupported(f"MatMul with a constant of rank {y.ndim}")
        return [dense(ctx, ctx.canonical(x), y.T, None)]
    if isinstance(x, Act) and isinstance(y, Act):
        a, b = ctx.canonical(x), ctx.canonical(y)
        if len(a.shape) < 2 or len(b.shape) < 2:
            raise Unsupported(f"MatMul of per-sample shapes {list(a.shape)} and {list(b.shape)}")
        return [ctx.emit("matmul", [a, b])]
    raise Unsupported("MatMul of a constant by an activation")


def fold_bias(ctx: Ctx, a: Act, c: np.ndarray) -> Act | None:
    """``a + c`` where ``a`` is a bias-free dense/conv used only here: set its bias."""
    node = ctx.node(a.ref)
    if node is None or ctx.ref_users.get(a.ref, 0) != 1 or node["params"].get("bias", True):
        return None
    op = node["op"]
    if op == "dense":
        units = node["params"]["units"]
        if c.shape[-1:] != (units,) or c.size != units:
            return None
    elif op in ("conv1d", "conv2d"):
        nd = 1 if op == "conv1d" else 2
        units = node["params"]["filters"]
        if c.size != units or c.ndim < nd + 1 or c.shape[-(nd + 1)] != units:
            return None
    else:
        return None
    node["params"]["bias"] = True
    ctx.weights[a.ref]["bias"] = c.reshape(-1).astype(np.float32)
    return a
