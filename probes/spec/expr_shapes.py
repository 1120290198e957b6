"""Shape inference and MAC estimates on expression IR.

Shapes are per sample (batch excluded). Tensors broadcast numpy-style: shapes align at
their last axis, and a dimension of 1 stretches. A reduction removes its axis (or keeps
it as 1). ``None`` is the shape of a constant scalar. Framework-free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from probes.errors import ExpressionError
from probes.spec.expr import Binary, Call, Compare, Const, Expr, Reduce, Unary, Var, show

Shape = tuple[int, ...]


def broadcast_shapes(a: Shape, b: Shape) -> Shape | None:
    """numpy broadcasting of two per-sample shapes; None if they do not broadcast."""
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out = []
    for da, db in zip(pa, pb, strict=True):
        if da != db and 1 not in (da, db):
            return None
        out.append(max(da, db))
    return tuple(out)


class ShapeInference:
    """Walks IR once, giving each node's shape and summing multiply-accumulates."""

    def __init__(self, env: Mapping[str, Shape], node: str | None = None) -> None:
        self.env, self.node, self.macs = env, node, 0

    def fail(self, msg: str) -> ExpressionError:
        return ExpressionError(msg, node=self.node)

    def shape(self, e: Expr) -> Shape | None:
        if isinstance(e, Const):
            return None
        if isinstance(e, Var):
            if e.name not in self.env:
                inputs = sum(1 for k in self.env if k.startswith("x"))
                raise self.fail(f"`{e.name}` is not defined here (this node has {inputs} input(s))")
            return self.env[e.name]
        if isinstance(e, Reduce):
            return self.reduce(e)
        parts = [self.shape(c) for c in _operands(e)]
        out: Shape | None = None
        for s in parts:
            if s is None:
                continue
            joined = s if out is None else broadcast_shapes(out, s)
            if joined is None:
                found = ", ".join(str(list(p)) if p is not None else "scalar" for p in parts)
                raise self.fail(f"shapes {found} do not broadcast in `{show(e)}`")
            out = joined
        if out is not None:
            self.macs += math.prod(out)
        return out

    def reduce(self, e: Reduce) -> Shape:
        s = self.shape(e.operand)
        if s is None or not -len(s) <= e.axis < len(s):
            rank = 0 if s is None else len(s)
            raise self.fail(
                f"axis {e.axis} is out of range for `{show(e)}`: its operand has per-sample "
                f"shape {list(s or ())} (rank {rank})"
            )
        self.macs += math.prod(s)
        ax = e.axis % len(s)
        return s[:ax] + ((1,) if e.keepdims else ()) + s[ax + 1 :]


def _operands(e: Unary | Binary | Compare | Call) -> tuple[Expr, ...]:
    if isinstance(e, Unary):
        return (e.operand,)
    if isinstance(e, Binary | Compare):
        return (e.left, e.right)
    return e.args


def infer_shape(e: Expr, env: Mapping[str, Shape], node: str | None = None) -> Shape | None:
    """Per-sample shape of ``e`` given its variables' shapes (None: a constant)."""
    return ShapeInference(env, node).shape(e)


def count_macs(e: Expr, env: Mapping[str, Shape]) -> int:
    """About one MAC per output element of each elementwise node; reductions count inputs."""
    inference = ShapeInference(env)
    inference.shape(e)
    return inference.macs


def reducible_to(grad: Shape | None, target: Shape) -> bool:
    """Can a gradient of shape ``grad`` be summed/broadcast to ``target`` (autodiff's rule)?"""
    return grad is None or broadcast_shapes(grad, target) is not None
