"""Numerical parity between the PyTorch and Keras builds of one spec.

Each framework runs in its own worker process; the parent (this module) imports
neither, reads the arrays back and compares them.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from probes.protocol import (
    FRAMEWORKS,
    ForwardWorkload,
    ProbeRequest,
    ProbeResult,
    TrainStepWorkload,
)
from probes.runners.local import ProbeRunner
from probes.spec import ModelSpec, build_graph
from probes.weights import load_npz, make_inputs, save_npz, unflatten_weights

RTOL = 1e-4


class ArrayDiff(BaseModel):
    name: str
    max_abs_diff: float
    max_abs_value: float
    tolerance: float
    passed: bool


class ParityReport(BaseModel):
    model: str
    mode: Literal["forward", "train_step"]
    batch: int
    input_shapes: dict[str, list[int]]
    passed: bool
    max_abs_diff: float | None
    max_rel_diff: float | None
    compared: list[ArrayDiff]
    loss: dict[str, float] = {}
    failures: dict[str, str] = {}
    wall_s: float


def compare(name: str, a: np.ndarray, b: np.ndarray, rtol: float = RTOL) -> ArrayDiff:
    """max|a-b| <= rtol * max(1, max|a|, max|b|); shape mismatch fails outright."""
    if a.shape != b.shape:
        return ArrayDiff(
            name=f"{name} (shapes {a.shape} vs {b.shape})",
            max_abs_diff=float("inf"),
            max_abs_value=0.0,
            tolerance=0.0,
            passed=False,
        )
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    scale = float(max(np.abs(a64).max(initial=0.0), np.abs(b64).max(initial=0.0)))
    diff = float(np.abs(a64 - b64).max(initial=0.0))
    tol = rtol * max(1.0, scale)
    return ArrayDiff(
        name=name,
        max_abs_diff=diff,
        max_abs_value=scale,
        tolerance=tol,
        passed=bool(np.isfinite(diff) and diff <= tol),
    )


def _run_both(runner: ProbeRunner, requests: list[ProbeRequest]) -> dict[str, ProbeResult]:
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        results = list(pool.map(runner.run, requests))
    return {r.framework: r for r in results}


def check_parity(
    spec: ModelSpec,
    runner: ProbeRunner,
    *,
    batch: int = 2,
    seed: int = 0,
    mode: Literal["forward", "train_step"] = "forward",
    optimizer: Literal["sgd", "adam"] = "sgd",
    lr: float = 0.01,
    rtol: float = RTOL,
) -> ParityReport:
    """Run ``spec`` in both frameworks on the same inputs and weights; compare in the parent.

    ``train_step`` compares the loss and every updated trainable weight after one step
    of MSE against random targets. With SGD and ``lr=1`` the weight check is a gradient
    check to the same tolerance.
    """
    start = time.perf_counter()
    graph = build_graph(spec)
    arrays = make_inputs(graph, batch, seed)
    if mode == "train_step":
        rng = np.random.default_rng([seed, 0x7A6])
        for out in spec.outputs:
            shape = (batch, *graph.tensors[out].shape)
            arrays[f"target__{out}"] = rng.standard_normal(shape).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="fwadvisor-parity-") as tmp:
        save_npz(Path(tmp) / "inputs.npz", arrays)
        workload = (
            ForwardWorkload()
            if mode == "forward"
            else TrainStepWorkload(optimizer=optimizer, lr=lr)
        )
        reqs = [
            ProbeRequest(spec=spec, framework=fw, workload=workload, seed=seed, io_dir=tmp)
            for fw in FRAMEWORKS
        ]
        results = _run_both(runner, reqs)
        failures = {fw: f"{r.status}: {r.reason}" for fw, r in results.items() if r.status != "ok"}
        compared: list[ArrayDiff] = []
        loss: dict[str, float] = {}
        if not failures:
            key = "outputs_file" if mode == "forward" else "weights_file"
            got = {fw: load_npz(Path(tmp) / str(results[fw].data[key])) for fw in FRAMEWORKS}
            ref, other = got["torch"], got["tensorflow"]
            compared = [compare(k, ref[k], other.get(k, np.array([np.nan]))) for k in sorted(ref)]
            if mode == "train_step":
                loss = {fw: float(results[fw].data["loss"]) for fw in FRAMEWORKS}
                lt, lf = loss["torch"], loss["tensorflow"]
                compared.insert(0, compare("loss", np.array([lt]), np.array([lf]), rtol))
                missing = set(unflatten_weights(other)) ^ set(unflatten_weights(ref))
                if missing:
                    failures["weights"] = f"weights present on one side only: {sorted(missing)}"
    worst_abs = max((c.max_abs_diff for c in compared), default=None)
    worst_rel = max((c.max_abs_diff / max(1.0, c.max_abs_value) for c in compared), default=None)
    return ParityReport(
        model=spec.name,
        mode=mode,
        batch=batch,
        input_shapes={i.name: list(i.shape) for i in spec.inputs},
        passed=not failures and bool(compared) and all(c.passed for c in compared),
        max_abs_diff=worst_abs,
        max_rel_diff=worst_rel,
        compared=compared,
        loss=loss,
        failures=failures,
        wall_s=time.perf_counter() - start,
    )
