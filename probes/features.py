"""Framework-free features of a spec: op-family mix, size, compute. Used to find
similar models (tuning warm starts) and as predictor inputs (recommender)."""

from __future__ import annotations

import math

from probes.spec import SpecGraph, analyze

FAMILIES = {
    "conv": ("conv1d", "conv2d"),
    "dense": ("dense",),
    "recurrent": ("lstm", "gru"),
    "attention": ("self_attention",),
    "norm": ("batch_norm", "layer_norm", "group_norm", "instance_norm"),
    "pool": (
        "max_pool2d",
        "avg_pool2d",
        "adaptive_avg_pool2d",
        "global_avg_pool",
        "global_max_pool",
        "mean",
    ),
    "embedding": ("embedding", "position_embedding", "class_token"),
}


def spec_features(graph: SpecGraph) -> dict[str, float]:
    """Per-family share of the FLOPs, share of nodes, and log10 size/compute."""
    a = analyze(graph)
    total_flops = max(a.flops, 1)
    n_nodes = max(len(a.nodes), 1)
    out: dict[str, float] = {}
    for fam, ops in FAMILIES.items():
        rows = [n for n in a.nodes if n.op in ops]
        out[f"flops_{fam}"] = sum(n.flops for n in rows) / total_flops
        out[f"nodes_{fam}"] = len(rows) / n_nodes
    out["log10_params"] = math.log10(max(a.params, 1))
    out["log10_flops"] = math.log10(total_flops)
    out["log10_input"] = math.log10(max(sum(math.prod(s) for s in a.input_shapes.values()), 1))
    return out


def distance(a: dict[str, float], b: dict[str, float]) -> float:
    """Euclidean, with the log features scaled down so op mix dominates."""
    total = 0.0
    for k in a.keys() & b.keys():
        w = 0.25 if k.startswith("log10") else 1.0
        total += (w * (a[k] - b[k])) ** 2
    return math.sqrt(total)
