"""Response models shared by the CLI's --json output and the HTTP API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from probes.checks.parity import ParityReport
from probes.export.checks import ExportReport
from probes.importers.parity import ThreeWayReport
from probes.measure.environment import Environment
from probes.protocol import Framework, ProbeResult
from recommender.knowledge.capabilities import MergedCell
from recommender.questionnaire import Profile


class ModelSummary(BaseModel):
    name: str
    description: str
    task: str
    input_shapes: dict[str, list[int]]
    params: int
    flops: int
    sizes: list[str]


class ModelList(BaseModel):
    models: list[ModelSummary]


class ParitySummary(BaseModel):
    passed: bool
    reports: list[ParityReport]
    imports: list[ThreeWayReport] = Field(
        default_factory=list, description="Three-way parity of imported .onnx files."
    )


class ProbeRow(BaseModel):
    framework: Framework
    workload: str
    batch: int
    settings: str
    result: ProbeResult
    round: int = Field(default=1, description="Paired round (torch and TF alternate).")


class Comparison(BaseModel):
    workload: str
    batch: int
    faster: Framework | None = Field(description="None: a tie within the interval, or no result.")
    ratio: float | None = Field(default=None, description="Slower over faster, paired.")
    lo: float | None = Field(default=None, description="90% interval of torch/TF, low end.")
    hi: float | None = Field(default=None, description="90% interval of torch/TF, high end.")
    rounds: int = Field(default=0, description="Paired rounds the ratio is built from.")
    contended_rounds: int = Field(default=0, description="Of those, rounds with contention.")
    note: str


class ProbeReport(BaseModel):
    model: str
    input_shapes: dict[str, list[int]]
    environment: Environment
    machine_peak_gflops: float | None
    rows: list[ProbeRow]
    comparisons: list[Comparison]


class DeployReport(BaseModel):
    """``fwadvisor deploy``: this model's exports, and every deployment target's cell."""

    model: str
    environment: Environment
    exports: ExportReport
    targets: list[MergedCell]


class AskResult(BaseModel):
    """``fwadvisor ask``: every question answered (defaults filled in) and the profile."""

    answers: dict[str, Any]
    profile: Profile
