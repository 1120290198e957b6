"""Response models shared by the CLI's --json output and (later) the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel

from probes.parity import ParityReport


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
