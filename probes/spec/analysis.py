"""Framework-free analytics: per-node shapes, parameters, FLOPs; limits before any build."""

from __future__ import annotations

from pydantic import BaseModel, Field

from probes.errors import LimitExceededError
from probes.spec.graph import SpecGraph

DTYPE_BYTES = {"float32": 4, "int64": 8}


class NodeStats(BaseModel):
    id: str
    op: str
    inputs: list[str]
    output_shape: list[int] = Field(description="Per-sample, batch excluded, channels-first.")
    params: int
    flops: int = Field(description="Per sample: 2 x multiply-accumulates.")


class SpecAnalysis(BaseModel):
    name: str
    input_shapes: dict[str, list[int]]
    nodes: list[NodeStats]
    params: int = Field(description="Trainable parameters.")
    buffers: int = Field(description="Non-trainable weights (e.g. batch-norm running stats).")
    flops: int = Field(description="Per sample: 2 x multiply-accumulates, summed over nodes.")
    weight_bytes: int
    activation_bytes_per_sample: int = Field(
        description="Sum of every node's output size: an upper bound (no buffer reuse)."
    )


class Limits(BaseModel):
    """Refuse specs that would not fit before spending a process on them."""

    max_nodes: int = 2000
    max_params: int = 500_000_000
    max_activation_bytes: int = 8 * 2**30


def analyze(graph: SpecGraph) -> SpecAnalysis:
    rows: list[NodeStats] = []
    params = buffers = flops = act = 0
    for n in graph.nodes:
        ins = graph.inputs_of(n)
        weights = n.impl.weights(n.params, ins)
        p = sum(w.size for w in weights.values() if w.trainable)
        b = sum(w.size for w in weights.values() if not w.trainable)
        f = 2 * n.impl.macs(n.params, ins, n.out)
        rows.append(
            NodeStats(
                id=n.id,
                op=n.op,
                inputs=list(n.inputs),
                output_shape=list(n.out.shape),
                params=p,
                flops=f,
            )
        )
        params, buffers, flops = params + p, buffers + b, flops + f
        act += n.out.size * DTYPE_BYTES[n.out.dtype]
    return SpecAnalysis(
        name=graph.spec.name,
        input_shapes={i.name: list(i.shape) for i in graph.spec.inputs},
        nodes=rows,
        params=params,
        buffers=buffers,
        flops=flops,
        weight_bytes=4 * (params + buffers),
        activation_bytes_per_sample=act,
    )


def check_limits(analysis: SpecAnalysis, batch: int, limits: Limits) -> None:
    """Raise LimitExceededError, with the estimate, if the spec is over any limit."""
    if len(analysis.nodes) > limits.max_nodes:
        raise LimitExceededError(
            f"spec has {len(analysis.nodes)} nodes; the limit is {limits.max_nodes}"
        )
    if analysis.params > limits.max_params:
        raise LimitExceededError(
            f"spec has {analysis.params:,} parameters; the limit is {limits.max_params:,}"
        )
    need = analysis.activation_bytes_per_sample * batch
    if need > limits.max_activation_bytes:
        raise LimitExceededError(
            f"activation memory estimate at batch {batch} is {need / 2**20:,.1f} MiB; "
            f"the limit is {limits.max_activation_bytes / 2**20:,.1f} MiB"
        )
