"""What an export module hands back to the worker: the artifact and how to run it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Run = Callable[[], list[np.ndarray]]


@dataclass
class Exported:
    tool: str  # converter and version, e.g. "torch.onnx (dynamo) 2.13.0"
    runtime: str  # what ran the artifact, e.g. "onnxruntime 1.32.0"
    path: Path  # the artifact: a file or a directory
    export_s: float  # conversion wall time
    load_s: float  # artifact load / session creation
    run: Run  # one inference on the probe inputs, materialised as numpy
    notes: list[str]
    feed: list[np.ndarray] = field(default_factory=list)  # what ``run`` feeds, in order
    names: list[str] = field(default_factory=list)  # the spec's input names


def timed(make: Callable[[], Any]) -> tuple[Any, float]:
    """``make()`` and its wall time."""
    t0 = time.perf_counter()
    value = make()
    return value, time.perf_counter() - t0


def size_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
