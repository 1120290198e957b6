"""Activations and elementwise arithmetic.

Built-in spec ops where one exists; otherwise a ``custom`` expression node (the spec's
whitelisted expression language), which both builders compile to native ops.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from probes.importers.context import Act, Ctx, Unsupported, Value
from probes.importers.registry import converter

Ins = list[Value | None]

SIMPLE = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "HardSwish": "hardswish",
}
UNARY_EXPR = {
    "Erf": "erf(x)",
    "Exp": "exp(x)",
    "Log": "log(x)",
    "Sqrt": "sqrt(x)",
    "Abs": "abs(x)",
    "Neg": "-x",
    "Reciprocal": "1 / x",
    "Sin": "sin(x)",
    "Cos": "cos(x)",
    "Softplus": "log1p(exp(x))",
}


def custom(ctx: Ctx, ins: list[Act], forward: str, consts: dict[str, float], tag: str) -> Act:
    for k, v in consts.items():
        if not math.isfinite(v) or abs(v) > 1e6:
            raise Unsupported(f"constant {k}={v} is outside the expression language's range")
    params = {"name": tag.lower(), "forward": forward, "constants": consts}
    return ctx.emit("custom", ins, params)


def _make_simple(onnx_op: str, spec_op: str) -> None:
    @converter(onnx_op)
    def conv(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
        return [ctx.emit(spec_op, [ctx.act(ins[0])])]


for _o, _s in SIMPLE.items():
    _make_simple(_o, _s)


def _make_unary(onnx_op: str, expr: str) -> None:
    @converter(onnx_op)
    def conv(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
        return [custom(ctx, [ctx.act(ins[0])], expr, {}, onnx_op)]


for _o, _e in UNARY_EXPR.items():
    _make_unary(_o, _e)


@converter("Gelu")
def gelu(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    if attrs.get("approximate", "none") != "none":
        raise Unsupported("the tanh approximation of GELU (only the exact erf form is built in)")
    return [ctx.emit("gelu", [ctx.act(ins[0])])]


@converter("Softmax")
def softmax(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    axis = int(attrs.get("axis", -1))
    rank = len(a.shape) + 1
    if axis % rank == 0:
        raise Unsupported("softmax over the batch axis")
    return [ctx.emit("softmax", [a], {"axis": axis % rank - 1})]


def _scalar(v: Value | None) -> float | None:
    if isinstance(v, np.ndarray) and v.size == 1:
        return float(v.reshape(-1)[0])
    return None


@converter("Clip")
def clip(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    lo = _scalar(ins[1]) if len(ins) > 1 and ins[1] is not None else attrs.get("min")
    hi = _scalar(ins[2]) if len(ins) > 2 and ins[2] is not None else attrs.get("max")
    if lo == 0.0 and hi == 6.0:
        return [ctx.emit("relu6", [a])]
    if lo == 0.0 and hi is None:
        return [ctx.emit("relu", [a])]
    if lo is None or hi is None:
        raise Unsupported("Clip needs constant bounds on both sides (or [0, 6] / [0, inf))")
    return [custom(ctx, [a], "clip(x, lo, hi)", {"lo": lo, "hi": hi}, "clip")]


@converter("LeakyRelu")
def leaky_relu(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    alpha = float(attrs.get("alpha", 0.01))
    if alpha >= 0:
        return [ctx.emit("leaky_relu", [ctx.act(ins[0])], {"alpha": alpha})]
    expr = "where(x >= 0, x, alpha * x)"
    return [custom(ctx, [ctx.act(ins[0])], expr, {"alpha": alpha}, "leaky_relu")]


@converter("Elu")
def elu(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    alpha = float(attrs.get("alpha", 1.0))
    expr = "where(x > 0, x, alpha * (exp(minimum(x, 0)) - 1))"
    return [custom(ctx, [ctx.act(ins[0])], expr, {"alpha": alpha}, "elu")]


@converter("HardSigmoid")
def hard_sigmoid(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a, b = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
    return [custom(ctx, [ctx.act(ins[0])], "clip(a * x + b, 0, 1)", {"a": a, "b": b}, "hsig")]


BINARY = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}


def _make_binary(onnx_op: str) -> None:
    @converter(onnx_op)
    def conv(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
        x, y = ins[0], ins[1]
        assert x is not None and y is not None
        return [arith(ctx, onnx_op, x, y)]


for _o in (*BINARY, "Pow"):
    _make_binary(_o)


def arith(ctx: Ctx, op: str, x: Value, y: Value) -> Act:
    """Binary arithmetic with at least one activation side."""
    from probes.importers.ops_dense import fold_bias

    if isinstance(x, Act) and isinstance(y, Act):
        a, b = ctx.canonical(x), ctx.canonical(y)
        if op in ("Add", "Mul") and a.shape == b.shape:
            return ctx.emit("add" if op == "Add" else "multiply", [a, b])
        if op == "Pow":
            raise Unsupported("Pow between two activations")
        return custom(ctx, [a, b], f"x0 {BINARY[op]} x1", {}, op)
    act_first = isinstance(x, Act)
    a = ctx.canonical(x if isinstance(x, Act) else y)  # type: ignore[arg-type]
    c = _per_sample(y if act_first else x, a)
    if op == "Add":
        folded = fold_bias(ctx, a, c)
        if folded is not None:
            return folded
        tail = c.shape[c.ndim - len(a.shape) :] if c.ndim >= len(a.shape) else c.shape
        table = c.reshape(tail) if c.size == np.prod(tail) else c
        if len(a.shape) == 2 and c.size == table.size and table.shape == a.shape:
            params = {"max_len": a.shape[0]}  # a learned [T, E] table: position embedding
            return ctx.emit("position_embedding", [a], params, {"weight": table})
    s = _scalar(c)
    if s is None:
        return _affine(ctx, op, a, c, act_first)
    if op == "Pow":
        if not act_first or s not in (0.5, 1.0, 2.0, 3.0, -1.0, -0.5):
            raise Unsupported(f"Pow with exponent {s}")
        expr = {0.5: "sqrt(x)", -0.5: "rsqrt(x)", -1.0: "1 / x"}.get(s, f"x ** {int(s)}")
        return custom(ctx, [a], expr, {}, "pow")
    expr = f"x {BINARY[op]} c" if act_first else f"c {BINARY[op]} x"
    return custom(ctx, [a], expr, {"c": s}, op)


def _per_sample(c: Value, a: Act) -> np.ndarray:
    """The constant side; one copy if it repeats the same values over a baked-in batch."""
    assert isinstance(c, np.ndarray)
    if c.ndim == len(a.shape) + 1 and c.shape[0] > 1 and np.all(c == c[:1]):
        return c[:1]
    return c


def _affine(ctx: Ctx, op: str, a: Act, c: np.ndarray, act_first: bool) -> Act:
    """An activation with a constant tensor: the spec's ``affine`` (scale and/or shift)."""
    rank = len(a.shape) + 1
    w = c.astype(np.float32)
    if w.ndim == rank:
        if w.shape[0] != 1:
            raise Unsupported(f"a constant of shape {list(c.shape)} varies along the batch")
        w = w.reshape(w.shape[1:])
    while w.ndim > 1 and w.shape[0] == 1 and w.ndim > 0:
        w = w.reshape(w.shape[1:])  # leading 1s broadcast anyway
    if w.ndim > len(a.shape):
        raise Unsupported(f"a constant of shape {list(c.shape)} for input {list(a.shape)}")
    shape = list(w.shape) or [1]
    if op == "Add":
        return ctx.emit(
            "affine", [a], {"shape": shape, "scale": False, "shift": True}, {"shift": w}
        )
    if op == "Sub" and act_first:
        return ctx.emit(
            "affine", [a], {"shape": shape, "scale": False, "shift": True}, {"shift": -w}
        )
    if op == "Sub":  # c - x
        params = {"shape": shape, "scale": True, "shift": True}
        return ctx.emit("affine", [a], params, {"scale": -np.ones_like(w), "shift": w})
    if op == "Mul":
        return ctx.emit("affine", [a], {"shape": shape}, {"scale": w})
    if op == "Div" and act_first and np.all(w != 0):
        return ctx.emit("affine", [a], {"shape": shape}, {"scale": 1.0 / w})
    raise Unsupported(f"{op} of a constant tensor of shape {list(c.shape)} by an activation")


@converter("Sum")
def sum_(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    """Variadic Add (older exporters' residual sums), pairwise."""
    present = [v for v in ins if v is not None]
    out: Value = present[0]
    for v in present[1:]:
        out = arith(ctx, "Add", out, v)
    return [out if isinstance(out, Act) else ctx.act(out)]


def _make_minmax(onnx_op: str) -> None:
    @converter(onnx_op)
    def conv(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
        acts = [ctx.act(v) for v in ins if v is not None]
        if len(acts) == 1:
            return [acts[0]]
        if len(acts) != 2 or acts[0].shape != acts[1].shape:
            raise Unsupported(f"{onnx_op} of other than two activations of one shape")
        fn = "maximum" if onnx_op == "Max" else "minimum"
        return [custom(ctx, acts, f"{fn}(x0, x1)", {}, onnx_op)]


for _o in ("Max", "Min"):
    _make_minmax(_o)

LOG_SOFTMAX = (
    "x - max(x, axis=-1, keepdims=True) - log(sum(exp(x - max(x, axis=-1, keepdims=True)), "
    "axis=-1, keepdims=True))"
)


@converter("LogSoftmax")
def log_softmax(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    if int(attrs.get("axis", -1)) % (len(a.shape) + 1) != len(a.shape):
        raise Unsupported("LogSoftmax over an axis other than the last")
    return [custom(ctx, [a], LOG_SOFTMAX, {}, "log_softmax")]


@converter("Selu")
def selu(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = float(attrs.get("alpha", 1.6732632423543772))
    g = float(attrs.get("gamma", 1.0507009873554805))
    expr = "scale * where(x > 0, x, a * (exp(minimum(x, 0)) - 1))"
    return [custom(ctx, [ctx.act(ins[0])], expr, {"a": a, "scale": g}, "selu")]
