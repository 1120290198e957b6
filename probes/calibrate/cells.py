"""What a calibration worker is asked and answers: typed, framework-free.

A cell is a tiny spec (one op on an input, or a short chain) at one batch. A worker
runs every cell of one (framework, settings) configuration in one process and appends
each finished cell to ``cells.jsonl`` in its ``io_dir`` as it goes, so the parent can
show progress and keep what finished if the worker dies.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from probes.spec import ModelSpec

CELLS_FILE = "cells.jsonl"


class CalibCell(BaseModel):
    id: str = Field(description="Stable across runs: the resume key within a configuration.")
    group: str = Field(description="Progress and model group, e.g. 'conv2d' or 'chain'.")
    spec: ModelSpec
    batch: int = Field(default=1, gt=0)


class CalibrateWorkload(BaseModel):
    """Time each cell with the probes' timing method at a short ``min_time_s``."""

    kind: Literal["calibrate"] = "calibrate"
    cells: list[CalibCell] = Field(min_length=1)
    min_time_s: float = Field(default=0.08, gt=0)
    min_iters: int = Field(default=8, ge=1)


class CellResult(BaseModel):
    """One timed cell (or why it could not run)."""

    id: str
    group: str
    batch: int
    status: Literal["ok", "failed", "unsupported"] = "ok"
    median_s: float | None = None
    iqr_s: float | None = None
    q25_s: float | None = Field(
        default=None, description="Lower quartile: on a busy machine, closer to the kernel."
    )
    min_s: float | None = None
    cpu_share: float | None = Field(
        default=None, description="Of the last timed loop (see probes/measure/contention.py)."
    )
    iterations: int = 0
    build_s: float = Field(default=0.0, description="Build and first call (trace, compile).")
    reason: str | None = None
