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

from probes.checks.parity_rules import adam_excused, without_dropout
from probes.payloads import ArrayDiff, ForwardData, TrainStepData
from probes.protocol import (
    FRAMEWORKS,
    ForwardWorkload,
    ProbeRequest,
    ProbeResult,
    TrainStepWorkload,
)
from probes.runners.base import ProbeRunner
from probes.spec import ModelSpec, build_graph
from probes.weights import (
    flatten_weights,
    init_weights,
    load_npz,
    make_inputs,
    make_targets,
    save_npz,
    unflatten_weights,
)

RTOL = 1e-4


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
    notes: list[str] = []
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


ParityData = ForwardData | TrainStepData


def _payload(r: ProbeResult, mode: str) -> ParityData | None:
    return r.payload(ForwardData) if mode == "forward" else r.payload(TrainStepData)


def _failure(r: ProbeResult, mode: str) -> str | None:
    if r.status != "ok":
        return f"{r.status}: {r.reason}"
    return None if _payload(r, mode) else f"the worker returned no {mode} result"


def _compare_adam(
    ref: dict[str, np.ndarray],
    other: dict[str, np.ndarray],
    before: dict[str, np.ndarray],
    lr: float,
    rtol: float,
    notes: list[str],
) -> list[ArrayDiff]:
    """Updated weights after one Adam step, ill-conditioned elements excused
    (``parity_rules``)."""
    out, excused_total = [], 0
    for k in sorted(ref):
        b = other.get(k, np.array([np.nan]))
        mask = adam_excused(ref[k], b, before.get(k, np.array([np.nan])), lr)
        excused_total += int(mask.sum())
        if mask.any():
            a, b = ref[k].copy(), b.copy()
            a[mask] = b[mask] = 0.0
        else:
            a = ref[k]
        out.append(compare(k, a, b, rtol))
    if excused_total:
        notes.append(
            f"adam: {excused_total} weight element(s) with a gradient near eps were not "
            "compared (their first update is ill-conditioned: any value in [-lr, lr] fits)"
        )
    return out


def _compare(
    io: Path,
    data: dict[str, ParityData],
    rtol: float,
    adam_before: dict[str, np.ndarray] | None,
    lr: float,
    notes: list[str],
) -> tuple[list[ArrayDiff], dict[str, float], dict[str, str]]:
    """Compare what both workers wrote: outputs, or the loss and the updated weights
    (after an Adam step, with its ill-conditioned elements excused)."""
    failures: dict[str, str] = {}
    files = {
        fw: d.outputs_file if isinstance(d, ForwardData) else d.weights_file
        for fw, d in data.items()
    }
    ref, other = (load_npz(io / files[fw]) for fw in FRAMEWORKS)
    if adam_before is not None:
        compared = _compare_adam(ref, other, adam_before, lr, rtol, notes)
    else:
        compared = [compare(k, ref[k], other.get(k, np.array([np.nan]))) for k in sorted(ref)]
    loss = {fw: d.loss for fw, d in data.items() if isinstance(d, TrainStepData)}
    if loss:
        lt, lf = (loss[fw] for fw in FRAMEWORKS)
        compared.insert(0, compare("loss", np.array([lt]), np.array([lf]), rtol))
        missing = set(unflatten_weights(other)) ^ set(unflatten_weights(ref))
        if missing:
            failures["weights"] = f"weights present on one side only: {sorted(missing)}"
    return compared, loss, failures


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
    notes: list[str] = []
    if mode == "train_step":
        spec, dropouts = without_dropout(spec)
        if dropouts:
            notes.append(
                f"dropout disabled (rate 0) in {dropouts} node(s) for the comparison: "
                "each framework draws its own random masks"
            )
    graph = build_graph(spec)
    arrays = make_inputs(graph, batch, seed)
    if mode == "train_step":
        targets = make_targets(graph, batch, seed)
        arrays.update({f"target__{out}": t for out, t in targets.items()})
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
        failures = {fw: why for fw, r in results.items() if (why := _failure(r, mode))}
        compared: list[ArrayDiff] = []
        loss: dict[str, float] = {}
        if not failures:
            data = {fw: d for fw, r in results.items() if (d := _payload(r, mode))}
            adam = mode == "train_step" and optimizer == "adam"
            before = flatten_weights(init_weights(graph, seed)) if adam else None
            compared, loss, failures = _compare(Path(tmp), data, rtol, before, lr, notes)
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
        notes=notes,
        wall_s=time.perf_counter() - start,
    )
