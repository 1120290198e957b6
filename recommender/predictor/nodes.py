"""A spec's nodes as the per-operator predictor sees them: a kernel key and the
amounts a kernel's cost grows with (FLOPs, bytes moved, sequential steps), per call.

Framework-free and numpy-free: from the spec analysis alone, so calibration cells and
user models go through the same function and cannot drift apart.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from probes.spec import SpecGraph
from probes.spec.analysis import DTYPE_BYTES

COMPUTE_OPS = frozenset({"conv2d", "conv1d", "dense"})
#: Ops a graph compiler fuses into the compute op before them (epilogue fusion).
FUSABLE_OPS = frozenset(
    {
        "batch_norm",
        "relu",
        "relu6",
        "gelu",
        "silu",
        "sigmoid",
        "tanh",
        "hardswish",
        "add",
        "multiply",
        "dropout",
    }
)
RECURRENT_OPS = frozenset({"lstm", "gru"})
#: Lookups read the rows they gather, not their whole table: a bert_tiny vocabulary of
#: 15 MiB priced as read whole made TF's embedding 2.9 ms of a 1.3 ms model. Per call,
#: an embedding reads one row per token of every sample; a position table one row per
#: position, shared by the batch.
GATHER_ROWS_PER_SAMPLE = frozenset({"embedding"})
GATHER_ROWS_SHARED = frozenset({"position_embedding"})


@dataclass(frozen=True)
class NodeCost:
    """One node at one batch: what its kernel is and how much it does."""

    id: str
    key: str  # kernel key: the op, with conv2d split into conv2d / conv2d_k1 / conv2d_dw
    op: str
    flops: float  # per call (x batch)
    bytes: float  # inputs + output + weights, per call
    steps: float  # sequential steps (recurrent: time steps x directions), else 0
    weight_bytes: float
    out_bytes: float  # per sample
    fusable: bool  # an elementwise op right after a compute op (or a fused chain)
    batch: int = 1


def kernel_key(op: str, params: object, in_channels: int) -> str:
    if op != "conv2d":
        return op
    groups = getattr(params, "groups", 1)
    kernel = getattr(params, "kernel", 3)
    if groups > 1 and groups == in_channels:
        return "conv2d_dw"
    ks = kernel if isinstance(kernel, list) else [kernel]
    return "conv2d_k1" if all(k == 1 for k in ks) else "conv2d"


#: (id of the graph, batch) -> (the graph, its costs): a predict-mode request prices the
#: same memoised graph again and again (2.7 of a 10 ms mobilenet_v2 request). The graph
#: is kept with its entry, so its id cannot be reused while the entry lives. The lock:
#: gthread web workers price in several threads, and an eviction between another
#: thread's lookup and its move_to_end would raise.
_MEMO: OrderedDict[tuple[int, int], tuple[SpecGraph, tuple[NodeCost, ...]]] = OrderedDict()
_MEMO_SIZE = 256
_MEMO_LOCK = threading.Lock()


def node_costs(graph: SpecGraph, batch: int) -> list[NodeCost]:
    """Every node of ``graph`` at ``batch``, in topological order."""
    key = (id(graph), batch)
    with _MEMO_LOCK:
        hit = _MEMO.get(key)
        if hit is not None and hit[0] is graph:
            _MEMO.move_to_end(key)
            return list(hit[1])
    costs = _node_costs(graph, batch)
    with _MEMO_LOCK:
        _MEMO[key] = (graph, tuple(costs))
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return costs


def _node_costs(graph: SpecGraph, batch: int) -> list[NodeCost]:
    out: list[NodeCost] = []
    fused_ok: set[str] = set()
    for n in graph.nodes:
        ins = graph.inputs_of(n)
        weights = n.impl.weights(n.params, ins)
        wbytes = 4.0 * sum(w.size for w in weights.values())
        out_bytes = float(n.out.size * DTYPE_BYTES[n.out.dtype])
        act = sum(t.size * DTYPE_BYTES[t.dtype] for t in ins) + out_bytes
        steps = 0.0
        if n.op in RECURRENT_OPS:
            steps = float(ins[0].shape[0] * (2 if getattr(n.params, "bidirectional", False) else 1))
        fusable = n.op in FUSABLE_OPS and bool(n.inputs) and n.inputs[0] in fused_ok
        if n.op in COMPUTE_OPS or fusable:
            fused_ok.add(n.id)
        out.append(
            NodeCost(
                id=n.id,
                key=kernel_key(n.op, n.params, ins[0].shape[0] if ins and ins[0].shape else 0),
                op=n.op,
                flops=2.0 * n.impl.macs(n.params, ins, n.out) * batch,
                bytes=act * batch + _touched(n.op, wbytes, out_bytes, batch),
                steps=steps,
                weight_bytes=wbytes,
                out_bytes=out_bytes,
                fusable=fusable,
                batch=batch,
            )
        )
    return out


def _touched(op: str, weight_bytes: float, out_bytes: float, batch: int) -> float:
    """The weight bytes one call reads (``GATHER_ROWS_*``: only the gathered rows)."""
    if op in GATHER_ROWS_PER_SAMPLE:
        return min(weight_bytes, out_bytes * batch)
    if op in GATHER_ROWS_SHARED:
        return min(weight_bytes, out_bytes)
    return weight_bytes
