"""Constant folding: numpy versions of the ops that shape arithmetic is made of."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from onnx import helper, numpy_helper

from probes.importers.context import Unsupported
from probes.importers.registry import folder

Arrays = list[np.ndarray | None]
MAX_FOLD_ELEMENTS = 1 << 26  # a folded constant larger than this is refused


def _guard(shape: Any) -> tuple[int, ...]:
    dims = tuple(int(d) for d in np.asarray(shape).reshape(-1))
    if any(d < 0 for d in dims) or math.prod(dims) > MAX_FOLD_ELEMENTS:
        raise Unsupported(f"folding would build a constant of shape {list(dims)}")
    return dims


def _req(v: np.ndarray | None) -> np.ndarray:
    if v is None:
        raise Unsupported("a required input is missing")
    return v


@folder("Constant")
def constant(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    if "value" in a:
        return [numpy_helper.to_array(a["value"])]
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
        if key in a:
            return [np.array(a[key], dtype)]
    for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
        if key in a:
            return [np.array(list(a[key]), dtype)]
    raise Unsupported("Constant without a numeric value")


@folder("Identity")
def identity(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    return [_req(ins[0])]


@folder("Shape")
def shape(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    dims = np.array(_req(ins[0]).shape, np.int64)
    return [dims[a.get("start", 0) : a.get("end", len(dims))]]


@folder("Size")
def size(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    return [np.array(_req(ins[0]).size, np.int64)]


@folder("Gather")
def gather(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    return [np.take(_req(ins[0]), _req(ins[1]), axis=a.get("axis", 0))]


@folder("Unsqueeze")
def unsqueeze(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    x = _req(ins[0])
    axes = sorted(int(v) % (x.ndim + len(_axes(a, ins))) for v in _axes(a, ins))
    for ax in axes:
        x = np.expand_dims(x, ax)
    return [x]


def _axes(a: dict[str, Any], ins: Arrays) -> list[int]:
    if len(ins) > 1 and ins[1] is not None:
        return [int(v) for v in ins[1].reshape(-1)]
    return [int(v) for v in a.get("axes", [])]


@folder("Squeeze")
def squeeze(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    x = _req(ins[0])
    axes = _axes(a, ins)
    return [np.squeeze(x, axis=tuple(axes)) if axes else np.squeeze(x)]


@folder("Concat")
def concat(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    return [np.concatenate([_req(x) for x in ins], axis=a["axis"])]


@folder("Reshape")
def reshape(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    x, target = _req(ins[0]), [int(v) for v in _req(ins[1])]
    if not a.get("allowzero", 0):
        target = [x.shape[i] if v == 0 else v for i, v in enumerate(target)]
    return [x.reshape(target)]


@folder("Cast")
def cast(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    return [_req(ins[0]).astype(helper.tensor_dtype_to_np_dtype(a["to"]))]


@folder("Slice")
def slice_(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    x = _req(ins[0])
    starts, ends = _req(ins[1]), _req(ins[2])
    axes = ins[3] if len(ins) > 3 and ins[3] is not None else np.arange(len(starts))
    steps = ins[4] if len(ins) > 4 and ins[4] is not None else np.ones(len(starts), np.int64)
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        index[int(ax)] = slice(int(s), int(e), int(st))
    return [x[tuple(index)]]


_BINARY = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Equal": np.equal,
    "Less": np.less,
    "Greater": np.greater,
    "LessOrEqual": np.less_equal,
    "GreaterOrEqual": np.greater_equal,
    "And": np.logical_and,
    "Or": np.logical_or,
    "Pow": np.power,
    "Max": np.maximum,
    "Min": np.minimum,
}


@folder(*_BINARY)
def binary(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    raise AssertionError("dispatched by fold_node")


@folder("Div")
def div(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    x, y = _req(ins[0]), _req(ins[1])
    if np.issubdtype(x.dtype, np.integer):
        return [(x // y).astype(x.dtype)]
    return [(x / y).astype(x.dtype)]


@folder("Mod")
def mod(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    return [np.mod(_req(ins[0]), _req(ins[1]))]


_UNARY = {
    "Neg": np.negative,
    "Sqrt": np.sqrt,
    "Abs": np.abs,
    "Floor": np.floor,
    "Ceil": np.ceil,
    "Not": np.logical_not,
    "Reciprocal": np.reciprocal,
    "Exp": np.exp,
    "Log": np.log,
}


@folder(*_UNARY)
def unary(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    raise AssertionError("dispatched by fold_node")


@folder("Where")
def where(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    x, y = _req(ins[1]), _req(ins[2])
    return [np.where(_req(ins[0]), x, y).astype(np.result_type(x, y))]


@folder("ConstantOfShape")
def constant_of_shape(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    dims = _guard(_req(ins[0]))
    value = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
    return [np.full(dims, value.reshape(-1)[0], value.dtype)]


@folder("Range")
def range_(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    start, limit, delta = (_req(v).item() for v in ins[:3])
    if delta == 0:
        raise Unsupported("Range with a zero step")
    _guard([max(0, math.ceil((limit - start) / delta))])
    return [np.arange(start, limit, delta, dtype=_req(ins[0]).dtype)]


@folder("Expand")
def expand(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    x, dims = _req(ins[0]), _guard(_req(ins[1]))
    out = np.broadcast_shapes(x.shape, dims)
    _guard(out)
    return [np.broadcast_to(x, out).copy()]


@folder("Tile")
def tile(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    x, reps = _req(ins[0]), _guard(_req(ins[1]))
    _guard([d * r for d, r in zip(x.shape, reps, strict=True)])
    return [np.tile(x, reps)]


@folder("Transpose")
def transpose(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    x = _req(ins[0])
    return [np.transpose(x, a.get("perm", list(range(x.ndim))[::-1]))]


@folder("ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin")
def reduce(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    raise AssertionError("dispatched by fold_node")


_REDUCE: dict[str, Any] = {
    "ReduceProd": np.prod,
    "ReduceSum": np.sum,
    "ReduceMax": np.max,
    "ReduceMin": np.min,
}


def fold_node(op: str, a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    """Evaluate one all-constant node; numpy errors become ``Unsupported``."""
    from probes.importers.registry import FOLDERS

    try:
        with np.errstate(all="ignore"):
            if op in _BINARY:
                return [np.asarray(_BINARY[op](_req(ins[0]), _req(ins[1])))]
            if op in _UNARY:
                return [np.asarray(_UNARY[op](_req(ins[0])))]
            if op in _REDUCE:
                axes = _axes(a, ins) or None
                keep = bool(a.get("keepdims", 1))
                ax = tuple(axes) if axes else None
                return [np.asarray(_REDUCE[op](_req(ins[0]), axis=ax, keepdims=keep))]
            return [np.asarray(v) for v in FOLDERS[op](a, ins)]
    except (ValueError, IndexError, TypeError, KeyError) as e:
        raise Unsupported(f"cannot fold: {str(e).splitlines()[0] if str(e) else e}") from None


@folder("CastLike")
def cast_like(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    return [_req(ins[0]).astype(_req(ins[1]).dtype)]


@folder("GatherElements")
def gather_elements(a: dict[str, Any], ins: Arrays) -> list[np.ndarray]:
    return [np.take_along_axis(_req(ins[0]), _req(ins[1]), axis=int(a.get("axis", 0)))]
