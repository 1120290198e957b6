"""Replays a matched attention region on shapes only: constants are folded, activations
are ``Sym`` (their ONNX shape, batch included). Nothing is computed on data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper

from probes.importers.attention_match import Region
from probes.importers.context import Act, Ctx, Unsupported
from probes.importers.fold import fold_node
from probes.importers.registry import FOLDERS


def attrs_of(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


@dataclass(frozen=True)
class Sym:
    """An activation inside the region: only its ONNX shape (batch included)."""

    shape: tuple[int, ...]


Val = Sym | np.ndarray


def _bcast(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError as e:
        raise Unsupported(f"attention shapes do not broadcast: {e}") from None


def _shape_of(op: str, a: dict[str, Any], ins: list[Val | None], n_out: int) -> list[Sym]:
    """Output shapes of one node whose first input is an activation."""
    if op in ("Add", "Sub", "Mul", "Div", "Where", "Pow"):
        return [Sym(_bcast([v.shape for v in ins if v is not None]))]
    x = ins[0]
    if not isinstance(x, Sym):
        raise Unsupported(f"{op} of a constant by an activation inside attention")
    s = x.shape
    if op in ("Gather", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Slice", "Split"):
        return _layout_shape(op, a, ins, s, n_out)
    if op == "MatMul":
        y = ins[1]
        t = y.shape if isinstance(y, Sym | np.ndarray) else ()
        if len(s) < 2 or len(t) < 2 or s[-1] != t[-2]:
            raise Unsupported(f"attention MatMul of shapes {list(s)} and {list(t)}")
        return [Sym((*_bcast([s[:-2], t[:-2]]), s[-2], t[-1]))]
    if op == "Gemm":
        w = ins[1]
        assert isinstance(w, np.ndarray)
        return [Sym((s[0], w.shape[0] if a.get("transB", 0) else w.shape[1]))]
    if op == "Attention":
        v = ins[2]
        if not isinstance(v, Sym):
            raise Unsupported("Attention values are a constant")
        return [Sym((*s[:-1], v.shape[-1]))]
    if op in ("Softmax", "Cast", "Identity", "Dropout"):
        return [Sym(s)]
    raise Unsupported(f"{op} inside an attention block")


def _layout_shape(
    op: str, a: dict[str, Any], ins: list[Val | None], s: tuple[int, ...], n_out: int
) -> list[Sym]:
    if op == "Gather":
        idx, ax = ins[1], int(a.get("axis", 0)) % max(len(s), 1)
        if not isinstance(idx, np.ndarray):
            raise Unsupported("a Gather by computed indices inside attention")
        return [Sym((*s[:ax], *idx.shape, *s[ax + 1 :]))]
    probe = np.broadcast_to(np.zeros((), np.bool_), s)  # zero strides: no memory
    consts = [v if isinstance(v, np.ndarray) else None for v in ins]
    consts[0] = probe
    outs = _split(a, consts, n_out) if op == "Split" else fold_node(op, a, consts)
    return [Sym(tuple(o.shape)) for o in outs]


def _split(a: dict[str, Any], ins: list[np.ndarray | None], n: int) -> list[np.ndarray]:
    x = ins[0]
    assert x is not None
    axis = int(a.get("axis", 0))
    if len(ins) > 1 and ins[1] is not None:
        sizes = [int(v) for v in ins[1]]
    elif "split" in a:
        sizes = [int(v) for v in a["split"]]
    else:
        size = -(-x.shape[axis] // n)
        sizes = [min(size, x.shape[axis] - i * size) for i in range(n)]
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


def replay(ctx: Ctx, r: Region, x: Act) -> dict[str, Val]:
    """Every value inside the region: constants folded, activations as shapes."""
    env: dict[str, Val] = {r.x: Sym(x.onnx_shape(ctx.batch))}
    for node in r.nodes:
        ins: list[Val | None] = []
        for i in node.input:
            v = env.get(i) if i in env else ctx.values.get(i) if i else None
            if i and not isinstance(v, Sym | np.ndarray):
                raise Unsupported(f"attention input '{i}' is missing or not a constant")
            if i and i not in env:
                env[i] = v  # type: ignore[assignment]
            ins.append(v if isinstance(v, Sym | np.ndarray) else None)
        a = attrs_of(node)
        op = node.op_type
        if op in ("Shape", "Size") and isinstance(ins[0], Sym):
            dims = np.array(ins[0].shape, np.int64)
            outs: list[Val] = [dims if op == "Shape" else np.array(dims.prod(), np.int64)]
            if op == "Shape":
                outs = [dims[a.get("start", 0) : a.get("end", len(dims))]]
        elif all(isinstance(v, np.ndarray) for v in ins if v is not None) and op in FOLDERS:
            outs = list(fold_node(op, a, [v if isinstance(v, np.ndarray) else None for v in ins]))
        else:
            outs = list(_shape_of(op, a, ins, len(node.output)))
        for name, v in zip(node.output, outs, strict=False):
            if name:
                env[name] = v
    return env
