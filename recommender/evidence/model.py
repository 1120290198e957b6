"""What a recommendation is scored on: per-framework evidence with its uncertainty.

Gathered in measure, cached or predict mode (``recommender/evidence/gatherer.py``),
scored by ``recommender/score.py``, resampled by ``recommender/resample.py``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from probes.protocol import Framework


class Quantity(BaseModel):
    """A measured (or predicted) positive quantity with its log-space uncertainty."""

    value: float = Field(gt=0)
    sigma: float = Field(ge=0, description="Relative (log-space) standard deviation.")
    shared_sigma: float = Field(
        default=0.0,
        ge=0,
        description="Part of the error common to both frameworks' same quantity (a "
        "predictor misjudging the model, or the machine drifting between rounds, moves "
        "both). It moves absolute values (vetoes), not the ratio between frameworks.",
    )
    source: str = Field(description="tuned / measured / predicted / cached, and settings.")


class ConfigOption(BaseModel):
    """One measured configuration of a framework."""

    label: str
    origin: str = Field(description="default, fastest in search, lowest memory, …")
    infer: Quantity | None = None
    memory: Quantity | None = None
    contended_rounds: int = 0
    speed_unknown: bool = Field(
        default=False,
        description="The machine was busy in the paired rounds: latency is a common "
        "centre with a wide sigma, not a ranking (recommender/evidence/configs.py).",
    )


class TargetEvidence(BaseModel):
    target: str
    verdict: str  # verified / failed / static
    level: str
    status: str  # maturity of the deciding (or best static) route
    tool: str
    viable: bool = Field(description="Some route exists that is not archived/unsupported.")
    summary: str


class FrameworkEvidence(BaseModel):
    framework: Framework
    infer: Quantity | None = None
    train: Quantity | None = None
    memory: Quantity | None = Field(default=None, description="Peak bytes above baseline.")
    targets: dict[str, TargetEvidence] = Field(default_factory=dict)
    custom_ops: float = Field(ge=0, le=1, description="Custom-op support score.")
    custom_ops_why: str
    ecosystem: dict[str, float] = Field(description="Factor -> score in [0, 1].")
    failures: list[str] = Field(default_factory=list)
    options: list[ConfigOption] = Field(
        default_factory=list,
        description="Measured configurations (measure mode); the profile picks one.",
    )
    config: str | None = Field(default=None, description="The configuration assumed.")


class Evidence(BaseModel):
    model: str
    mode: Literal["measure", "cached", "predict"]
    frameworks: dict[Framework, FrameworkEvidence]
    caveats: list[str] = Field(default_factory=list)
    links: list[str] = Field(default_factory=list, description="Where the results live.")
