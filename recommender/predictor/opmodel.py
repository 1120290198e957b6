"""A model's latency from per-operator kernel models: the sum over its nodes.

``latency = call + sum_nodes kernel(node)``, where an elementwise node right after a
conv or dense (or after such a fused node) pays ``fusion x`` its kernel. A kernel key
the calibration did not measure is priced by a related key (``FALLBACK``), or from
the dense FLOP price and the relu byte price. The log sigma adds each key's share of
the time times its sigma: errors within a key are taken as shared, across keys as
independent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from recommender.predictor.nodes import NodeCost
from recommender.predictor.opfit import ConfigModel, kernel_time, kernel_times

FALLBACK = {
    "conv2d_k1": "conv2d",
    "conv2d_dw": "conv2d",
    "conv1d": "conv2d",
    "multiply": "add",
    "concat": "add",
    "batch_norm": "relu",
    "relu6": "relu",
    "gelu": "relu",
    "silu": "relu",
    "sigmoid": "relu",
    "tanh": "relu",
    "hardswish": "relu",
    "leaky_relu": "relu",
    "prelu": "relu",
    "upsample2d": "relu",
    "permute": "relu",
    "avg_pool2d": "max_pool2d",
    "max_pool2d": "avg_pool2d",
    "adaptive_avg_pool2d": "global_avg_pool",
    "mean": "global_avg_pool",
    "global_avg_pool": "mean",
    "global_max_pool": "global_avg_pool",
    "group_norm": "layer_norm",
    "instance_norm": "layer_norm",
    "reshape": "flatten",
    "dropout": "flatten",
    "softmax": "layer_norm",
    "layer_norm": "softmax",
    "lstm": "gru",
    "gru": "lstm",
    "position_embedding": "add",
    "class_token": "add",  # a copy of the input plus one row; concat is not timed itself
}
FALLBACK_SIGMA = 0.7  # ln: a key priced by a related key
GENERIC_SIGMA = 1.0  # ln: priced from the dense and relu prices
FLOOR_SIGMA = 0.08  # ln: what no per-operator sum explains (launch order, caches)


@dataclass
class Priced:
    """A model's predicted latency and where it came from."""

    latency_s: float
    log_sigma: float
    by_key: dict[str, float] = field(default_factory=dict)
    unmeasured: list[str] = field(default_factory=list)  # keys priced by a fallback


def _resolve(model: ConfigModel, key: str) -> tuple[str | None, float]:
    if key in model.kernels:
        return key, model.kernels[key].sigma
    alt = FALLBACK.get(key)
    if alt in model.kernels:
        return alt, max(model.kernels[alt].sigma, FALLBACK_SIGMA)
    return None, GENERIC_SIGMA


def _generic(model: ConfigModel, c: NodeCost) -> float:
    flop_price = model.kernels["dense"].coef[1] if "dense" in model.kernels else 1e-10
    byte_price = model.kernels["relu"].coef[2] if "relu" in model.kernels else 1e-10
    return model.dispatch_s + c.flops * flop_price + c.bytes * byte_price


def node_time(model: ConfigModel, c: NodeCost) -> float:
    """One node's kernel time (dispatch included), before fusion."""
    key, _ = _resolve(model, c.key)
    return kernel_time(model.kernels[key], c) if key else _generic(model, c)


def price(model: ConfigModel, costs: list[NodeCost]) -> Priced:
    groups: dict[str | None, list[int]] = {}
    sigma_of: dict[str, float] = {}
    unmeasured: set[str] = set()
    for i, c in enumerate(costs):
        key, sigma = _resolve(model, c.key)
        groups.setdefault(key, []).append(i)
        sigma_of[c.key] = sigma
        if key != c.key:
            unmeasured.add(c.key)
    times = [0.0] * len(costs)
    for key, idx in groups.items():
        if key is None:
            got = [_generic(model, costs[i]) for i in idx]
        else:
            got = kernel_times(model.kernels[key], [costs[i] for i in idx]).tolist()
        for i, t in zip(idx, got, strict=True):
            times[i] = t * (model.fusion if costs[i].fusable else 1.0)
    by_key: dict[str, float] = {}
    for c, t in zip(costs, times, strict=True):
        by_key[c.key] = by_key.get(c.key, 0.0) + t
    total = model.call_s + sum(by_key.values())
    var = sum((t / total * sigma_of[k]) ** 2 for k, t in by_key.items())
    return Priced(
        latency_s=total,
        log_sigma=math.sqrt(var + FLOOR_SIGMA**2),
        by_key=by_key,
        unmeasured=sorted(unmeasured),
    )
