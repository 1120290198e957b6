"""Per-spec results computed once: a spec's hash, graph and analysis.

A web process answers the same few specs (zoo models at a few sizes) thousands of
times; building the graph and analysing it were about 4 ms of a 10 ms predict-mode
request. Results are keyed by ``spec_hash`` (what computes: inputs, nodes, outputs),
kept for the most recent ``SIZE`` specs, and shared: treat them as read-only.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from probes.spec.analysis import SpecAnalysis, analyze
from probes.spec.graph import SpecGraph, build_graph
from probes.spec.model import ModelSpec

T = TypeVar("T")
SIZE = 128


def spec_hash(spec: ModelSpec) -> str:
    """Hash of what computes: inputs, nodes, outputs and the weights' digest (not name,
    description, sizes or where the weights file lives)."""
    body = spec.model_dump(mode="json", include={"inputs", "nodes", "outputs"})
    if spec.weights is not None:
        body["weights"] = spec.weights.sha256
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


class SpecMemo(Generic[T]):
    """``make(spec)`` once per spec hash, for the ``SIZE`` most recent hashes
    (thread-safe; two threads may both compute a missing entry, one result is kept)."""

    def __init__(self, make: Callable[[ModelSpec], T]) -> None:
        self.make = make
        self.items: OrderedDict[str, T] = OrderedDict()
        self.lock = threading.Lock()

    def __call__(self, spec: ModelSpec, key: str | None = None) -> T:
        key = key or spec_hash(spec)
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = self.make(spec)
        with self.lock:
            self.items[key] = value
            while len(self.items) > SIZE:
                self.items.popitem(last=False)
        return value


def _analyzed(spec: ModelSpec) -> tuple[SpecGraph, SpecAnalysis]:
    graph = build_graph(spec)
    return graph, analyze(graph)


#: ``analyzed(spec)``: the spec's graph and its analysis, built once per spec.
analyzed: SpecMemo[tuple[SpecGraph, SpecAnalysis]] = SpecMemo(_analyzed)
