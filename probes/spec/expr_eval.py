"""One walker lowers expression IR to any array library through a function table.

torch, TensorFlow and numpy each supply a table (name -> callable); the walker handles
constants, per-sample rank alignment and reduction axes the same way for all three.
Tensors carry a leading batch axis. When two operands have different per-sample ranks,
the lower-rank one gets new axes *after the batch axis*, so per-sample shapes broadcast
numpy-style (aligned at the last axis) and the batch axis never takes part.
Framework-free: numpy only (the numpy table is the float64 reference).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from probes.spec.expr import Binary, Compare, Const, Expr, Reduce, Unary, Var
from probes.spec.expr_shapes import Shape

Table = Mapping[str, Callable[..., Any]]
AxisMap = Callable[[int, int], int]


def neutral_axis(axis: int, rank: int) -> int:
    """Per-sample axis (normalised) of a rank-``rank`` tensor -> tensor axis, batch first."""
    return axis + 1


def channels_last_axis(axis: int, rank: int) -> int:
    """The same for a tensor stored channels-last (neutral axis 0 is stored last)."""
    return (rank if axis == 0 else axis) if rank >= 2 else axis + 1


def _expand(t: Any, n: int) -> Any:
    return t[(slice(None), *([None] * n))]


ARITHMETIC: dict[str, Callable[..., Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": operator.pow,
    "neg": operator.neg,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
    "expand": _expand,
}


@dataclass(frozen=True)
class _T:
    """A lowered tensor and its per-sample rank."""

    value: Any
    rank: int


Operand = _T | float


class _Lowering:
    def __init__(self, table: Table, env: Mapping[str, Any], axis_map: AxisMap) -> None:
        self.table = {**ARITHMETIC, **table}
        self.env = {k: _T(v, int(v.ndim) - 1) for k, v in env.items()}
        self.ref = next(iter(env.values()))
        self.axis_map = axis_map

    def run(self, e: Expr) -> Operand:
        if isinstance(e, Const):
            return e.value
        if isinstance(e, Var):
            return self.env[e.name]
        if isinstance(e, Unary):
            return self.apply("neg", [self.run(e.operand)])
        if isinstance(e, Binary | Compare):
            return self.apply(e.op, [self.run(e.left), self.run(e.right)])
        if isinstance(e, Reduce):
            t = self.run(e.operand)
            assert isinstance(t, _T)
            axis = self.axis_map(e.axis % t.rank, t.rank)
            value = self.table[e.fn](t.value, axis, e.keepdims)
            return _T(value, t.rank if e.keepdims else t.rank - 1)
        args = [self.run(a) for a in e.args]
        if e.fn == "clip":  # bounds stay Python floats
            return self.apply("clip", args[:1], *args[1:])
        if e.fn in ("minimum", "maximum", "where"):  # these need tensors, not floats
            args = [a if isinstance(a, _T) else self.table["scalar"](a, self.ref) for a in args]
        return self.apply(e.fn, args)

    def apply(self, fn: str, args: list[Any], *extra: Any) -> _T:
        """Call ``fn`` with tensor args aligned to one per-sample rank (new axes after the
        batch axis); floats and 0-d scalars broadcast as they are."""
        rank = max(a.rank for a in args if isinstance(a, _T))
        expand = self.table["expand"]
        values = [
            (expand(a.value, rank - a.rank) if a.rank < rank else a.value)
            if isinstance(a, _T)
            else a
            for a in args
        ]
        return _T(self.table[fn](*values, *extra), rank)


def lower(e: Expr, table: Table, env: Mapping[str, Any], axis_map: AxisMap = neutral_axis) -> Any:
    """Evaluate ``e`` with ``table``'s functions on ``env``'s tensors (batch first).

    Returns a tensor, or a float when ``e`` is a constant. ``axis_map`` turns a
    per-sample reduction axis into the backend tensor's axis (its layout's business).
    """
    out = _Lowering(table, env, axis_map).run(e)
    return out.value if isinstance(out, _T) else out


def reduce_to(
    value: Any,
    shape: Shape | None,
    target: Shape,
    like: Any,
    table: Table,
    axis_map: AxisMap = neutral_axis,
) -> Any:
    """A gradient of per-sample ``shape`` summed (or broadcast) to ``target``, as autodiff
    does for a broadcast input. ``like`` is a tensor of the target's shape and dtype."""
    if shape is None:
        return table["full_like"](like, value)
    if len(shape) < len(target):
        value = _expand(value, len(target) - len(shape))
        shape = (1,) * (len(target) - len(shape)) + shape
    rank = len(shape)
    for _ in range(rank - len(target)):
        value = table["sum"](value, 1, False)
        rank -= 1
    shape = shape[len(shape) - len(target) :]
    for i, (s, d) in enumerate(zip(shape, target, strict=True)):
        if d == 1 and s != 1:
            value = table["sum"](value, axis_map(i, rank), True)
    if any(s == 1 and d != 1 for s, d in zip(shape, target, strict=True)):
        value = value + table["full_like"](like, 0.0)
    return value


def _sigmoid(v: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(v))
    out: np.ndarray = np.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return out


_erf = np.vectorize(math.erf, otypes=[np.float64])

NUMPY: dict[str, Callable[..., Any]] = {
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "rsqrt": lambda v: 1.0 / np.sqrt(v),
    "abs": np.abs,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "relu": lambda v: np.maximum(v, 0.0),
    "sin": np.sin,
    "cos": np.cos,
    "erf": _erf,
    "square": np.square,
    "minimum": np.minimum,
    "maximum": np.maximum,
    "clip": np.clip,
    "where": np.where,
    "sum": lambda v, a, k: np.sum(v, axis=a, keepdims=k),
    "mean": lambda v, a, k: np.mean(v, axis=a, keepdims=k),
    "max": lambda v, a, k: np.max(v, axis=a, keepdims=k),
    "min": lambda v, a, k: np.min(v, axis=a, keepdims=k),
    "scalar": lambda v, ref: np.asarray(v, dtype=ref.dtype),
    "full_like": lambda ref, v: np.full(ref.shape, v, dtype=ref.dtype),
}
