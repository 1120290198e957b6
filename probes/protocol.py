"""JSON protocol between the parent and ``python -m probes.worker``.

Arrays (inputs, outputs, weights) travel as ``.npz`` files in ``io_dir``; the JSON
stays small. The parent never imports a framework: it only reads the arrays back.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from probes.spec import ModelSpec

Framework = Literal["torch", "tensorflow"]
FRAMEWORKS: tuple[Framework, ...] = ("torch", "tensorflow")
Status = Literal["ok", "failed", "timeout", "oom", "crashed", "unsupported"]


class ForwardWorkload(BaseModel):
    """Eval-mode forward pass on ``inputs.npz``; writes ``outputs_<framework>.npz``."""

    kind: Literal["forward"] = "forward"


class TrainStepWorkload(BaseModel):
    """One step of mean-squared-error against ``targets`` in ``inputs.npz``.

    Writes the loss and the updated trainable weights (neutral layout).
    """

    kind: Literal["train_step"] = "train_step"
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.01, gt=0)


Workload = Annotated[ForwardWorkload | TrainStepWorkload, Field(discriminator="kind")]


class ProbeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: ModelSpec
    framework: Framework
    workload: Workload
    seed: int = 0
    io_dir: str = Field(description="Directory holding inputs.npz; outputs are written here.")
    threads: int | None = Field(default=None, gt=0)


class ProbeResult(BaseModel):
    status: Status
    framework: Framework
    reason: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    wall_s: float | None = None
