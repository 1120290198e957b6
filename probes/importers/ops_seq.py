"""Embeddings (Gather), LayerNormalization, LSTM and GRU (ONNX gate orders)."""

from __future__ import annotations

from typing import Any

import numpy as np

from probes.importers.context import Act, Ctx, Unsupported, Value, const, onnx_axis
from probes.importers.ops_shape import reshape_to
from probes.importers.registry import converter

Ins = list[Value | None]


@converter("Gather")
def gather(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    data, idx = ins[0], ins[1]
    axis = int(attrs.get("axis", 0))
    if isinstance(data, np.ndarray) and isinstance(idx, Act):
        if axis != 0 or data.ndim != 2 or idx.dtype != "int64":
            raise Unsupported("Gather from a constant: only a 2-D embedding table by int ids")
        idx = ctx.canonical(idx)
        if idx.ref in ctx.tensors and not ctx.node(idx.ref):
            ctx.input_max[idx.ref] = max(ctx.input_max.get(idx.ref, 0), int(data.shape[0]))
        params = {"num_embeddings": int(data.shape[0]), "embedding_dim": int(data.shape[1])}
        return [ctx.emit("embedding", [idx], params, {"weight": data})]
    if isinstance(data, Act) and isinstance(idx, np.ndarray) and idx.ndim == 0:
        src = list(data.onnx_shape(ctx.batch))
        ax = axis % len(src)
        if ax == data.batch_axis:
            raise Unsupported("selects along the batch axis")
        if src[ax] == 1:  # selecting the only entry: a squeeze
            target = [d for i, d in enumerate(src) if i != ax]
            return [reshape_to(ctx, data, target, data.batch_axis - (ax < data.batch_axis))]
        a = ctx.canonical(data)
        i = int(idx)
        end = i + 1 if i != -1 else None
        pick = {"axis": ax - 1, "start": i, "end": end, "squeeze": True}
        return [ctx.emit("slice", [a], pick)]
    raise Unsupported("Gather other than an embedding lookup")


@converter("Split")
def split(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    v = ins[0]
    if not isinstance(v, Act):
        raise Unsupported("expected an activation input")
    n = len(ctx.out_used)
    if n == 1:
        return [v]
    a = ctx.canonical(v)
    axis = int(attrs.get("axis", 0))
    ax = onnx_axis(axis, len(a.shape) + 1)
    if len(ins) > 1 and ins[1] is not None:
        sizes = [int(s) for s in const(ins[1], "the split sizes")]
    elif "split" in attrs:
        sizes = [int(s) for s in attrs["split"]]
    else:
        size = -(-a.shape[ax] // n)
        sizes = [min(size, a.shape[ax] - i * size) for i in range(n)]
    outs: list[Value] = []
    start = 0
    for size, used in zip(sizes, ctx.out_used, strict=True):
        params = {"axis": ax, "start": start, "end": start + size}
        outs.append(ctx.emit("slice", [a], params) if used else np.zeros(0))
        start += size
    return outs


@converter("Slice")
def slice_(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    starts = [int(v) for v in const(ins[1], "starts")]
    ends = [int(v) for v in const(ins[2], "ends")]
    rank = len(a.shape) + 1
    axes = (
        [int(v) for v in const(ins[3], "axes")]
        if len(ins) > 3 and ins[3] is not None
        else list(range(len(starts)))
    )
    steps = (
        [int(v) for v in const(ins[4], "steps")]
        if len(ins) > 4 and ins[4] is not None
        else [1] * len(starts)
    )
    out = a
    for s, e, axis, st in zip(starts, ends, axes, steps, strict=True):
        full = (ctx.batch, *out.shape)[axis % rank]
        if st == 1 and s in (0, -full) and e >= full:
            continue  # the whole axis: no-op (also how exporters touch the batch axis)
        if st <= 0:
            raise Unsupported("Slice with a negative step")
        ax = onnx_axis(axis, rank)
        params = {"axis": ax, "start": s, "end": None if e >= full else e, "step": st}
        out = ctx.emit("slice", [out], params)
    return [out]


@converter("LayerNormalization")
def layer_norm(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    rank = len(a.shape) + 1
    if int(attrs.get("axis", -1)) % rank != rank - 1:
        raise Unsupported("LayerNormalization over more than the last axis")
    e = a.shape[-1]
    gamma = const(ins[1], "the scale") if len(ins) > 1 and ins[1] is not None else np.ones(e)
    beta = const(ins[2], "the bias") if len(ins) > 2 and ins[2] is not None else np.zeros(e)
    if gamma.size != e or beta.size != e:
        raise Unsupported(f"scale/bias of shape {list(gamma.shape)} for {e} features")
    weights = {"gamma": gamma.reshape(e), "beta": beta.reshape(e)}
    return [ctx.emit("layer_norm", [a], {"eps": float(attrs.get("epsilon", 1e-5))}, weights)]


LSTM_ORDER = (0, 2, 3, 1)  # ONNX i,o,f,c -> neutral i,f,g,o
GRU_ORDER = (1, 0, 2)  # ONNX z,r,h -> neutral r,z,n


def _blocks(arr: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    parts = np.split(arr, len(order), axis=0)
    return np.concatenate([parts[i] for i in order], axis=0)


def _check_rnn(attrs: dict[str, Any], ins: Ins, first_optional: int) -> None:
    if attrs.get("direction", "forward") == "reverse":
        raise Unsupported(
            "direction='reverse' (a reverse-only layer): the spec's lstm/gru runs forward "
            "or both ways (bidirectional), never backward alone"
        )
    for key in ("clip", "activations", "input_forget"):
        if attrs.get(key):
            raise Unsupported(f"recurrent attribute '{key}'")
    for i, v in enumerate(ins[first_optional:], start=first_optional):
        if v is None:
            continue
        if not isinstance(v, np.ndarray) or (i != 4 and np.any(v)):
            raise Unsupported("initial states, peepholes or sequence lengths")


def _rnn_input(ctx: Ctx, x: Value | None, layout: int) -> Act:
    if not isinstance(x, Act):
        raise Unsupported("the recurrent input is a constant")
    if layout == 0:
        if x.perm != (1, 0, 2):
            raise Unsupported("a time-major recurrent input whose batch is not axis 1")
        return Act(x.ref, x.shape, x.dtype)
    return ctx.canonical(x)


def _rnn(ctx: Ctx, attrs: dict[str, Any], ins: Ins, kind: str) -> list[Value]:
    layout = int(attrs.get("layout", 0))
    x = _rnn_input(ctx, ins[0], layout)
    w, r = const(ins[1], "W"), const(ins[2], "R")
    dirs, hidden = w.shape[0], int(attrs["hidden_size"])
    b = (
        const(ins[3], "B")
        if len(ins) > 3 and ins[3] is not None
        else np.zeros((dirs, 2 * w.shape[1]))
    )
    order = LSTM_ORDER if kind == "lstm" else GRU_ORDER
    weights: dict[str, np.ndarray] = {}
    for d in range(dirs):
        sfx = "" if d == 0 else "_reverse"
        weights[f"w_ih{sfx}"] = _blocks(w[d], order)
        weights[f"w_hh{sfx}"] = _blocks(r[d], order)
        wb, rb = np.split(b[d], 2)
        if kind == "lstm":
            weights[f"b{sfx}"] = _blocks(wb + rb, order)
        else:
            weights[f"b_ih{sfx}"], weights[f"b_hh{sfx}"] = _blocks(wb, order), _blocks(rb, order)
    used = ctx.out_used + [False] * 3
    if (used[0] and used[1]) or used[2]:
        raise Unsupported("uses both the sequence output and a final state (or the cell state)")
    seq = not used[1]
    params = {"hidden_size": hidden, "bidirectional": dirs == 2, "return_sequences": seq}
    out = ctx.emit(kind, [x], params, weights)
    t = x.shape[0]
    if seq:  # Y: [T, D, B, H] (layout 0) or [B, T, D, H]
        y = reshape_to(ctx, out, [ctx.batch, t, dirs, hidden], 0)
        return [Act(y.ref, y.shape, y.dtype, (1, 2, 0, 3) if layout == 0 else None)]
    h = reshape_to(ctx, out, [ctx.batch, dirs, hidden], 0)  # Y_h: [D, B, H] or [B, D, H]
    return [np.zeros(0), Act(h.ref, h.shape, h.dtype, (1, 0, 2) if layout == 0 else None)]


@converter("LSTM")
def lstm(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    _check_rnn(attrs, ins, 5)
    return _rnn(ctx, attrs, ins, "lstm")


@converter("GRU")
def gru(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    _check_rnn(attrs, ins, 5)
    if not attrs.get("linear_before_reset", 0):
        raise Unsupported("GRU with linear_before_reset=0 (Keras reset_after=False)")
    return [*_rnn(ctx, attrs, ins, "gru")]
