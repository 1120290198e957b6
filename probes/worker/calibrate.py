"""Calibration in a probe worker: time every single-op cell of one configuration.

One process per (framework, settings): the framework is imported once, and each cell
builds its tiny graph, makes the first call (trace, compile), then runs the probes'
timing method at a short minimum time. Each finished cell is appended to
``cells.jsonl`` in the request's ``io_dir`` at once (progress and resume); the result
carries them all in ``data["cells"]``.
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from probes.calibrate.cells import CELLS_FILE, CalibCell, CalibrateWorkload, CellResult
from probes.errors import AdvisorError, UnsupportedError
from probes.frameworks import Backend, Step
from probes.measure.contention import ContentionMeter
from probes.measure.timing import MeasureConfig, first_call, timed_loop, warm_up
from probes.payloads import CalibrateData
from probes.protocol import ProbeRequest, ProbeResult
from probes.spec import build_graph
from probes.weights import init_weights, make_inputs

RETRIES = 2  # a contended cell's timed loop is run again, at most this often


def _method(w: CalibrateWorkload) -> MeasureConfig:
    return MeasureConfig(
        min_time_s=w.min_time_s,
        min_iters=w.min_iters,
        max_time_s=max(1.0, 10 * w.min_time_s),
        warmup_window=3,
        max_warmup_s=max(0.2, 3 * w.min_time_s),
        max_warmup_iters=60,
    )


def _reset_compilers() -> None:
    """A compiled callable per cell would hit the compiler's recompile limit (torch
    dynamo falls back to eager after 8): drop them. Then collect this cell's garbage and
    freeze what is left, so that the timing method's ``gc.collect()`` before each timed
    loop scans one cell's objects, not the framework's (0.7 s a call in TensorFlow)."""
    dynamo: Any = sys.modules.get("torch._dynamo")
    if dynamo is not None:
        dynamo.reset()
    gc.collect()
    gc.freeze()


def time_cell(
    req: ProbeRequest, backend: Backend, cell: CalibCell, cfg: MeasureConfig
) -> CellResult:
    base = {"id": cell.id, "group": cell.group, "batch": cell.batch}
    try:
        graph = build_graph(cell.spec)
        t0 = time.perf_counter()
        arrays = list(make_inputs(graph, cell.batch, req.seed).values())
        step = backend.infer_step(
            graph, init_weights(graph, req.seed), arrays, req.effective_settings(), req.device
        )
        first_call(step)
        build_s = time.perf_counter() - t0
        warm_up(step, cfg)
        times, share = _timed(step, cfg)
    except (UnsupportedError, NotImplementedError) as e:
        return CellResult(**base, status="unsupported", reason=str(e)[:300])
    except (AdvisorError, RuntimeError, ValueError, TypeError) as e:
        return CellResult(**base, status="failed", reason=f"{type(e).__name__}: {e}"[:300])
    finally:
        _reset_compilers()
    q25, med, q75 = np.percentile(times, [25, 50, 75])
    return CellResult(
        **base,
        median_s=float(med),
        iqr_s=float(q75 - q25),
        q25_s=float(q25),
        min_s=min(times),
        cpu_share=share,
        iterations=len(times),
        build_s=build_s,
    )


def _timed(step: Step, cfg: MeasureConfig) -> tuple[list[float], float | None]:
    """The timed loop, again (at most ``RETRIES`` more times) while the machine was
    contended; every call is kept (the cell uses its fastest and its quartiles)."""
    times: list[float] = []
    share = None
    for _ in range(1 + RETRIES):
        with ContentionMeter() as meter:
            times += timed_loop(step, cfg)
        c = meter.result
        share = c.cpu_share if c else None
        if c is None or not c.flagged:
            break
    return times, share


def run_calibrate(req: ProbeRequest, backend: Backend) -> ProbeResult:
    w = req.workload
    assert isinstance(w, CalibrateWorkload)
    cfg = _method(w)
    out = Path(req.io_dir) / CELLS_FILE if req.io_dir else None
    gc.collect()
    gc.freeze()
    done: list[CellResult] = []
    for cell in w.cells:
        r = time_cell(req, backend, cell, cfg)
        done.append(r)
        if out is not None:
            with out.open("a") as f:
                f.write(r.model_dump_json() + "\n")
    return ProbeResult(status="ok", framework=req.framework, data=CalibrateData(cells=done))
