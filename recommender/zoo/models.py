"""What a zoo run records: per model, per framework, per profile; and the run."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, Field

from probes.export.checks import ExportCheck
from probes.measure.environment import Environment
from probes.settings import Device
from probes.tune.models import Verdict

PROFILES = ("mobile", "server-gpu", "research", "browser")


class ZooConfig(BaseModel):
    trials: int = Field(default=4, ge=1, description="Probe-running trials per study.")
    profiles: list[str] = Field(default_factory=lambda: list(PROFILES))
    size: str | None = Field(default=None, description="Input-size preset, e.g. 'small'.")
    storage: str | None = Field(default=None, description="Optuna storage URL.")
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    device: Device = Field(
        default="cpu", description="Where the tuning probes run (cuda: one GPU per Ray task)."
    )

    def fingerprint(self) -> str:
        """What makes a finished model's result reusable by a rerun. The device joins the
        key only when it is not the CPU, so records written before it existed stay valid."""
        key: list[object] = [self.trials, sorted(self.profiles), self.size]
        if self.device != "cpu":
            key.append(self.device)
        body = json.dumps(key)
        return hashlib.sha256(body.encode()).hexdigest()[:12]


class Point(BaseModel):
    latency_ms: float
    memory_mb: float | None
    settings: str


class FrameworkRow(BaseModel):
    framework: str
    default_ms: float | None = Field(description="Batch 1, default settings: median.")
    tuned_ms: float | None = Field(description="Batch 1, best tuned settings: median.")
    tuned_iqr_ms: float | None
    tuned_settings: str | None
    speedup: float | None = Field(description="Default / tuned latency at batch 1.")
    throughput_batch: int | None
    throughput_sps: float | None = Field(description="Samples/s at the largest batch, tuned.")
    throughput_iqr_sps: float | None
    peak_memory_mb: float | None = Field(description="Peak RSS above baseline, tuned b1.")
    efficiency: float | None = Field(description="Achieved GFLOP/s / machine peak, largest batch.")
    trials: list[Point] = Field(default_factory=list, description="Every batch-1 trial.")
    pareto: list[Point] = Field(default_factory=list, description="Latency/memory front, b1.")
    start_trials: int | None = Field(
        default=None,
        description="Batch-1 trials that measured a starting point (the default settings, "
        "informed and warm starts); None in records written before it was counted.",
    )
    explored_trials: int | None = Field(
        default=None,
        description="Batch-1 trials that measured a point the sampler chose (0: tuning "
        "never searched beyond its starting points).",
    )


class ProfileVerdict(BaseModel):
    profile: str
    choice: str
    leaning: str | None
    confidence: float
    margin: float
    utilities: dict[str, float]
    summary: str
    vetoes: list[str] = Field(default_factory=list)
    caveats: list[str] = Field(
        default_factory=list, description="The recommendation's caveats, e.g. GPU not measured."
    )
    assumed: dict[str, str] = Field(
        default_factory=dict, description="The configuration each framework is assumed to run."
    )
    latency_ratio: list[float] | None = Field(
        default=None, description="torch/TF latency of those configurations: [ratio, lo, hi]."
    )
    speed_compared: bool = Field(
        default=True, description="False: the machine was too busy for a speed comparison."
    )


class ModelOutcome(BaseModel):
    model: str
    status: Literal["done", "failed"]
    reason: str | None = Field(default=None, description="Why it failed, when it did.")
    fingerprint: str
    params: int | None = None
    flops: int | None = None
    frameworks: list[FrameworkRow] = Field(default_factory=list)
    naive: Verdict | None = Field(default=None, description="Batch 1, default vs default.")
    tuned: Verdict | None = Field(default=None, description="Batch 1, tuned vs tuned.")
    flipped: bool = False
    exports: list[ExportCheck] = Field(default_factory=list)
    verdicts: list[ProfileVerdict] = Field(default_factory=list)
    failures: list[str] = Field(
        default_factory=list,
        description="Every failed tuning probe: '<framework> b<batch>: <reason> (<n> of <m> "
        "trials)', one line per distinct reason, even when other trials succeeded.",
    )
    machine_peak_gflops: float | None = Field(
        default=None, description="The machine peak this record's efficiencies used."
    )
    wall_s: float = 0.0


class ZooRun(BaseModel):
    config: ZooConfig
    environment: Environment
    machine_peak_gflops: float | None
    models: list[ModelOutcome]
    not_run: dict[str, str] = Field(default_factory=dict, description="Model -> why not.")
    warnings: list[str] = Field(
        default_factory=list, description="Run-level caveats, e.g. a trial budget too small."
    )
    wall_s: float
