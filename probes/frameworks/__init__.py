"""Per-framework backends. Each module imports its framework; load them only in workers.

Both backends implement `Backend`: each backend module ends with a small class that
exposes its functions and a module-level ``BACKEND: Backend``, so mypy checks every
signature against the protocol. The worker loads the module with importlib and takes
``module.BACKEND`` (`probes.worker.probe.import_backend`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from probes.payloads import CompileCheck
from probes.protocol import ConvergenceWorkload, TrainStepWorkload, TrainWorkload
from probes.settings import Device, FrameworkSettings
from probes.spec import SpecGraph
from probes.spec.ops_custom import CustomProgram
from probes.weights import NeutralWeights

Step = Callable[[], object]
#: A workload that names an optimizer (and its learning rate; momentum where it has one).
Optimized = TrainWorkload | TrainStepWorkload | ConvergenceWorkload
#: Validation predictions are computed in chunks of this many rows.
EVAL_BATCH = 256


@dataclass(frozen=True)
class Trainer:
    """A backend's half of the convergence run; `probes.worker.training.fit` owns the loop.

    Built by `Backend.trainer` from the model, the data (``data.npz``) and the workload.
    """

    #: One optimizer step on the training rows ``idx`` (a full batch); returns its loss.
    step: Callable[[np.ndarray], float]
    #: Predictions for all validation rows: float32, neutral layout.
    predict: Callable[[], np.ndarray]
    #: Entered around each epoch's steps, before the clock starts (train mode, device).
    epoch: Callable[[], AbstractContextManager[object]] = nullcontext


class Backend(Protocol):
    def configure(
        self, settings: FrameworkSettings | None, device: Device = "cpu"
    ) -> dict[str, str]: ...

    def infer_step(
        self,
        graph: SpecGraph,
        weights: NeutralWeights,
        arrays: list[np.ndarray],
        s: FrameworkSettings,
        device: Device,
    ) -> Step: ...

    def train_step_fn(
        self,
        graph: SpecGraph,
        weights: NeutralWeights,
        arrays: list[np.ndarray],
        targets: list[np.ndarray],
        workload: TrainWorkload,
        s: FrameworkSettings,
        device: Device,
    ) -> Step: ...

    def peak_step(self, n: int, device: Device) -> Step: ...

    def reset_device_peak(self, device: Device) -> None: ...

    def device_peak_bytes(self, device: Device) -> int | None: ...

    def forward(
        self, graph: SpecGraph, weights: NeutralWeights, inputs: list[np.ndarray]
    ) -> list[np.ndarray]: ...

    def train_step(
        self,
        graph: SpecGraph,
        weights: NeutralWeights,
        inputs: list[np.ndarray],
        targets: list[np.ndarray],
        workload: TrainStepWorkload,
        names: dict[str, list[str]],
    ) -> tuple[float, NeutralWeights]: ...

    def compile_check(
        self, graph: SpecGraph, weights: NeutralWeights, arrays: list[np.ndarray], full: bool
    ) -> list[CompileCheck]: ...

    def custom_grads(
        self, prog: CustomProgram, arrays: Sequence[np.ndarray], upstream: np.ndarray, mode: str
    ) -> list[np.ndarray]: ...

    def trainer(
        self,
        graph: SpecGraph,
        weights: NeutralWeights,
        data: dict[str, np.ndarray],
        w: ConvergenceWorkload,
        s: FrameworkSettings,
        device: Device,
    ) -> Trainer: ...
