"""What a worker reports besides a measurement: one pydantic model per workload.

``ProbeResult.data`` is one of these, told apart by ``kind`` (the workload's kind), so a
result read back from JSON (a worker's stdout, the results store) is typed again. This
module sits below ``probes.protocol`` and imports nothing of it, so the protocol, the
workers and the parent-side checks can all import it without a cycle.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from probes.calibrate.cells import CellResult
from probes.measure.timing import Timing
from probes.spec.custom_grad import GradCheckReport
from probes.spec.ops_custom import CustomMode

ExportTarget = Literal["native", "onnx", "litert", "aot", "executorch", "tfjs"]
EXPORT_TARGETS: tuple[ExportTarget, ...] = ("native", "onnx", "litert", "aot", "executorch", "tfjs")


class ForwardData(BaseModel):
    """Parity forward pass: the outputs were written to ``io_dir/outputs_file``."""

    kind: Literal["forward"] = "forward"
    outputs_file: str


class TrainStepData(BaseModel):
    """Parity training step: its loss; the updated weights are in ``io_dir/weights_file``."""

    kind: Literal["train_step"] = "train_step"
    loss: float
    weights_file: str


class EpochStats(BaseModel):
    epoch: int
    train_loss: float
    val_metric: float
    train_time_s: float = Field(description="Cumulative training time (evaluation excluded).")


class ConvergenceData(BaseModel):
    """One framework's training curve, one entry per epoch."""

    kind: Literal["convergence"] = "convergence"
    epochs: list[EpochStats]


class ArrayDiff(BaseModel):
    name: str
    max_abs_diff: float
    max_abs_value: float
    tolerance: float
    passed: bool


class ExportData(BaseModel):
    """What the worker measured for one export."""

    kind: Literal["export"] = "export"
    target: ExportTarget
    tool: str
    runtime: str
    artifact: str
    size_bytes: int
    export_s: float
    load_s: float
    batch: int
    max_abs_diff: float | None
    tolerance: float | None
    outputs: list[ArrayDiff]
    latency: Timing | None = Field(description="In the target runtime; None if not verified.")
    notes: list[str] = Field(default_factory=list)


class CompileCheck(BaseModel):
    name: str
    ok: bool
    detail: str = ""
    graphs: int | None = None
    graph_breaks: int | None = None
    time_s: float | None = None


class ModeCost(BaseModel):
    mode: CustomMode
    infer: Timing | None = None
    train: Timing | None = None
    infer_reason: str | None = None
    train_reason: str | None = Field(default=None, description="Why training cannot run.")
    compile: list[CompileCheck] = Field(default_factory=list)


class CustomOpData(BaseModel):
    """What the worker measured for the custom-op probe."""

    kind: Literal["custom_op"] = "custom_op"
    nodes: list[str]
    batch: int
    modes: list[ModeCost]
    grads: dict[str, GradCheckReport]


class CalibrateData(BaseModel):
    """Every timed cell of one calibration configuration (``probes/calibrate``)."""

    kind: Literal["calibrate"] = "calibrate"
    cells: list[CellResult]


Payload = Annotated[
    ForwardData | TrainStepData | ConvergenceData | ExportData | CustomOpData | CalibrateData,
    Field(discriminator="kind"),
]

#: Results stored before payloads had a ``kind``: a key only that payload has.
_LEGACY_KEYS = {
    "outputs_file": "forward",
    "weights_file": "train_step",
    "epochs": "convergence",
    "tool": "export",
    "modes": "custom_op",
}


def legacy_payload(data: Any) -> Any:
    """An untagged payload (stored by an older version) with its ``kind`` added; ``{}``
    (what a measurement carried) becomes None. Anything else is returned unchanged."""
    if not isinstance(data, dict) or "kind" in data:
        return data
    if not data:
        return None
    kind = next((k for key, k in _LEGACY_KEYS.items() if key in data), None)
    return {**data, "kind": kind} if kind else data
