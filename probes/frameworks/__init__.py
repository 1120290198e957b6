"""Per-framework backends. Each module imports its framework; load them only in workers.

Both backends implement `Backend`. The worker loads one with importlib, so the protocol
documents the contract, and mypy checks each module against it
(`tests/test_backends_protocol.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from probes.spec import SpecGraph
from probes.weights import NeutralWeights

Step = Callable[[], object]


class Backend(Protocol):
    def configure(self, settings: Any, device: str = "cpu") -> dict[str, str]: ...

    def infer_step(
        self,
        graph: SpecGraph,
        weights: NeutralWeights,
        arrays: list[np.ndarray],
        s: Any,
        device: str,
    ) -> Step: ...

    def train_step_fn(
        self,
        graph: SpecGraph,
        weights: NeutralWeights,
        arrays: list[np.ndarray],
        targets: list[np.ndarray],
        workload: Any,
        s: Any,
        device: str,
    ) -> Step: ...

    def peak_step(self, n: int, device: str) -> Step: ...

    def reset_device_peak(self, device: str) -> None: ...

    def device_peak_bytes(self, device: str) -> int | None: ...

    def forward(
        self, graph: SpecGraph, weights: NeutralWeights, inputs: list[np.ndarray]
    ) -> list[np.ndarray]: ...

    def train_step(
        self,
        graph: SpecGraph,
        weights: NeutralWeights,
        inputs: list[np.ndarray],
        targets: list[np.ndarray],
        workload: Any,
        names: dict[str, list[str]],
    ) -> tuple[float, NeutralWeights]: ...

    def compile_check(
        self, graph: SpecGraph, weights: NeutralWeights, arrays: list[np.ndarray], full: bool
    ) -> list[dict[str, Any]]: ...

    def custom_grads(
        self, prog: Any, arrays: Any, upstream: np.ndarray, mode: str
    ) -> list[np.ndarray]: ...

    def fit(
        self,
        graph: SpecGraph,
        weights: NeutralWeights,
        data: dict[str, np.ndarray],
        w: Any,
        s: Any,
        device: str,
        task: str,
    ) -> list[dict[str, float]]: ...
