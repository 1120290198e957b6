"""Pydantic models of tuning: its configuration and its report (shared by CLI and API)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from probes.protocol import ProbeResult
from probes.tune.confirm import Confirmation
from probes.tune.space import Objective


class TuneConfig(BaseModel):
    objective: Objective = "latency"
    workload: Literal["infer", "train"] = "infer"
    batch: int = Field(default=1, gt=0, description="Latency/pareto objectives.")
    batches: list[int] = Field(
        default=[1, 8, 32], min_length=1, description="Searched by the throughput objective."
    )
    n_trials: int | None = Field(default=20, gt=0, description="Trials that run a probe.")
    timeout_s: float | None = Field(default=None, gt=0)
    sampler: Literal["tpe", "tpe-multivariate", "random", "nsga2"] = "tpe"
    seed: int | None = 0
    memory_budget_mb: float | None = Field(default=None, gt=0)
    latency_slo_ms: float | None = Field(default=None, gt=0)
    prune_factor: float | None = Field(
        default=1.5, gt=1, description="Stop a trial whose warm-up is this much slower."
    )
    warm_start: bool = True
    informed_starts: bool = Field(
        default=True,
        description="Right after the defaults, try the largest batch (throughput) and bf16 "
        "(when the CPU has native bf16).",
    )
    confirm_rounds: int = Field(
        default=3,
        ge=0,
        description="Paired rounds (torch, TF, torch, TF …) over each framework's default "
        "and best that decide the verdicts; 0: compare the searches' own figures.",
    )
    heartbeat_s: int = Field(default=10, gt=0)
    grace_s: int = Field(default=60, gt=0, description="A RUNNING trial older is stale.")


class TrialSummary(BaseModel):
    number: int
    state: str
    params: dict[str, Any]
    values: list[float] | None
    source: str | None = Field(description="default, warm-start, or None (sampler).")
    reason: str | None
    settings: str | None
    batch: int | None
    median_s: float | None
    throughput_sps: float | None
    peak_rss_bytes: int | None
    feasible: bool
    contended: bool = Field(default=False, description="Timed while the machine was busy.")


class FrameworkTuning(BaseModel):
    framework: str
    study_name: str
    search_space: dict[str, list[Any]]
    space_size: int
    counts: dict[str, int]
    default: TrialSummary | None
    best: TrialSummary | None
    best_result: ProbeResult | None = Field(description="The best trial's full probe result.")
    speedup: float | None = Field(description="Tuned over default on the objective (>1 = better).")
    pareto: list[TrialSummary]
    history: list[TrialSummary]


class Verdict(BaseModel):
    winner: str | None
    ratio: float | None = Field(description="Slower over faster (>= 1).")
    note: str
    paired: bool = Field(
        default=False, description="Decided from interleaved paired rounds, not two searches."
    )
    lo: float | None = Field(default=None, description="90% interval of torch/TF time, low.")
    hi: float | None = Field(default=None, description="90% interval of torch/TF time, high.")
    contended_rounds: int = Field(default=0, description="Paired rounds with a contended probe.")


class TuneReport(BaseModel):
    model: str
    objective: Objective
    workload: str
    config: TuneConfig
    storage: str
    frameworks: list[FrameworkTuning]
    naive: Verdict = Field(description="Default settings against default settings.")
    tuned: Verdict = Field(description="Each framework at its best.")
    flipped: bool = Field(description="Tuning changed the winner.")
    confirmation: Confirmation | None = Field(
        default=None, description="The paired rounds behind the verdicts."
    )
