"""PyTorch side of the worker: forward and training step on the built SpecModule."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from probes import build_torch
from probes.spec import SpecGraph
from probes.weights import NeutralWeights


def configure(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def _as_tuple(out: Any) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def forward(
    graph: SpecGraph, weights: NeutralWeights, inputs: list[np.ndarray]
) -> list[np.ndarray]:
    model = build_torch.build(graph, weights)
    with torch.inference_mode():
        outs = _as_tuple(model(*[torch.from_numpy(x) for x in inputs]))
    return [o.numpy() for o in outs]


def train_step(
    graph: SpecGraph,
    weights: NeutralWeights,
    inputs: list[np.ndarray],
    targets: list[np.ndarray],
    workload: Any,
    names: dict[str, list[str]],
) -> tuple[float, NeutralWeights]:
    model = build_torch.build(graph, weights).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (
        torch.optim.SGD(params, lr=workload.lr)
        if workload.optimizer == "sgd"
        else torch.optim.Adam(params, lr=workload.lr)
    )
    opt.zero_grad()
    outs = _as_tuple(model(*[torch.from_numpy(x) for x in inputs]))
    loss = sum(
        torch.mean((o - torch.from_numpy(t)) ** 2) for o, t in zip(outs, targets, strict=True)
    )
    loss.backward()  # type: ignore[union-attr]
    opt.step()
    return float(loss), build_torch.dump_weights(model, names)
