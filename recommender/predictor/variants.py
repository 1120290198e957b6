"""Generated variants of the zoo for the predictor's evaluation: each family at other
widths (every conv filter count, dense width, recurrent and embedding size scaled)
and other resolutions (image and sequence inputs resized). A variant stays in its
family, so leave-one-family-out holds every variant of a model out with it.
"""

from __future__ import annotations

from typing import Any

from probes.errors import SpecError
from probes.spec import ModelSpec, build_graph

WIDTH_KEYS = ("filters", "units", "hidden_size", "embedding_dim")


def _scaled(n: int, k: float, multiple: int = 1) -> int:
    return max(multiple, round(n * k / multiple) * multiple)


def widened(spec: ModelSpec, k: float) -> ModelSpec:
    """Every width scaled by ``k`` (the output layer keeps its size); depthwise groups
    follow their channels, attention keeps its head count."""
    last = set(spec.outputs)
    heads = [n.params.get("num_heads", 1) for n in spec.nodes if n.op == "self_attention"]
    multiple = max(heads, default=1)
    nodes = []
    for n in spec.nodes:
        p: dict[str, Any] = dict(n.params)
        if n.id not in last:
            for key in WIDTH_KEYS:
                if key in p:
                    p[key] = _scaled(p[key], k, multiple if key == "embedding_dim" else 1)
            if p.get("groups", 1) > 1 and n.params.get("groups") == n.params.get("filters"):
                p["groups"] = p["filters"]
        nodes.append(n.model_copy(update={"params": p}))
    return spec.model_copy(update={"name": f"{spec.name}_w{k:g}", "nodes": nodes, "sizes": {}})


def resized(spec: ModelSpec, k: float) -> ModelSpec:
    """Spatial (rank 3: C, H, W) or time (rank 1 tokens; rank 2: T, F) axes scaled by ``k``."""
    inputs = []
    for i in spec.inputs:
        shape = list(i.shape)
        users = {n.op for n in spec.nodes if i.name in n.inputs}
        if len(shape) == 3:
            shape = [shape[0], _scaled(shape[1], k, 8), _scaled(shape[2], k, 8)]
        elif len(shape) == 2 and "conv1d" in users:  # [C, L]
            shape = [shape[0], _scaled(shape[1], k, 8)]
        elif len(shape) == 2 or (len(shape) == 1 and i.dtype == "int64"):  # [T, F], tokens
            shape = [_scaled(shape[0], k, 4), *shape[1:]]
        inputs.append(i.model_copy(update={"shape": shape}))
    return spec.model_copy(update={"name": f"{spec.name}_r{k:g}", "inputs": inputs, "sizes": {}})


def variants(
    spec: ModelSpec, widths: tuple[float, ...], scales: tuple[float, ...]
) -> list[ModelSpec]:
    """The valid variants of ``spec`` (one that does not validate is left out)."""
    out = []
    for v in [*(widened(spec, k) for k in widths), *(resized(spec, k) for k in scales)]:
        try:
            build_graph(v)
        except SpecError:
            continue
        if v.inputs != spec.inputs or v.nodes != spec.nodes:
            out.append(v)
    return out
