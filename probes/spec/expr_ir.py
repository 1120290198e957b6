"""Typed, immutable IR of the ``custom`` op's expression language (see ``expr.parse``).

Framework-free: stdlib only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

MAX_INPUTS = 8

UNARY_FUNCS = (
    *("exp", "log", "log1p", "sqrt", "rsqrt", "abs", "tanh"),
    *("sigmoid", "relu", "sin", "cos", "erf", "square"),
)
BINARY_FUNCS = ("minimum", "maximum")
REDUCTIONS = ("sum", "mean", "max", "min")
FUNCTIONS = frozenset({*UNARY_FUNCS, *BINARY_FUNCS, "clip", "where", *REDUCTIONS})
INPUT_NAME = re.compile(r"x(0|[1-9][0-9]*)")
GRAD_NAMES = ("g", "y")

BinOp = Literal["add", "sub", "mul", "div", "pow"]
CmpOp = Literal["lt", "le", "gt", "ge", "eq", "ne"]
ReduceFn = Literal["sum", "mean", "max", "min"]
SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
SYMBOLS |= {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


@dataclass(frozen=True)
class Const:
    value: float


@dataclass(frozen=True)
class Var:
    name: str  # canonical: x0..x7, and g, y in grad expressions


@dataclass(frozen=True)
class Unary:
    operand: Expr  # the only unary op is negation; unary plus is dropped


@dataclass(frozen=True)
class Binary:
    op: BinOp
    left: Expr
    right: Expr  # for "pow": always a Const with |value| <= MAX_EXPONENT


@dataclass(frozen=True)
class Compare:
    op: CmpOp
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Reduce:
    fn: ReduceFn
    operand: Expr
    axis: int  # per-sample axis (batch excluded), may be negative
    keepdims: bool


Expr = Const | Var | Unary | Binary | Compare | Call | Reduce

FOLD: dict[str, Callable[..., float]] = {
    "exp": math.exp,
    "log": math.log,
    "log1p": math.log1p,
    "sqrt": math.sqrt,
    "rsqrt": lambda v: 1.0 / math.sqrt(v),
    "abs": abs,
    "tanh": math.tanh,
    "sigmoid": lambda v: 0.5 * (1.0 + math.tanh(0.5 * v)),
    "relu": lambda v: max(v, 0.0),
    "sin": math.sin,
    "cos": math.cos,
    "erf": math.erf,
    "square": lambda v: v * v,
    "minimum": min,
    "maximum": max,
    "clip": lambda v, lo, hi: min(max(v, lo), hi),
    "neg": lambda v: -v,
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
}


def is_reserved(name: str) -> bool:
    """Names a ``constants`` entry may not take."""
    return name in FUNCTIONS or name in ("x", *GRAD_NAMES) or bool(INPUT_NAME.fullmatch(name))


def show(e: Expr) -> str:
    """Canonical source text of an IR node (for messages)."""
    if isinstance(e, Const):
        return repr(e.value)
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Unary):
        return f"-({show(e.operand)})"
    if isinstance(e, Binary | Compare):
        return f"({show(e.left)} {SYMBOLS[e.op]} {show(e.right)})"
    if isinstance(e, Call):
        return f"{e.fn}({', '.join(show(a) for a in e.args)})"
    return f"{e.fn}({show(e.operand)}, axis={e.axis}, keepdims={e.keepdims})"


def children(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, Unary | Reduce):
        return (e.operand,)
    if isinstance(e, Binary | Compare):
        return (e.left, e.right)
    if isinstance(e, Call):
        return e.args
    return ()


def walk(e: Expr) -> Iterator[Expr]:
    yield e
    for c in children(e):
        yield from walk(c)
