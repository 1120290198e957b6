"""The timing method, framework-free: warm up until stable, then time until both a
minimum time and a minimum iteration count are reached, with GC suspended.

``step`` must return only after its result is materialised (the backends convert the
output to numpy on CPU, or synchronise the CUDA stream), so the clock never stops early.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, Field

NOISY_IQR = 0.10


class MeasureConfig(BaseModel):
    min_time_s: float = Field(default=1.0, ge=0)
    min_iters: int = Field(default=10, ge=1)
    max_iters: int = Field(default=100_000, ge=1)
    max_time_s: float = Field(default=30.0, gt=0, description="Stop measuring after this.")
    warmup_window: int = Field(default=5, ge=2)
    warmup_tolerance: float = Field(default=0.05, gt=0, description="Window-median change.")
    max_warmup_s: float = Field(default=10.0, ge=0)
    max_warmup_iters: int = Field(default=500, ge=0)
    stop_above_s: float | None = Field(
        default=None,
        gt=0,
        description="Tuning's early stop: if the warm-up median exceeds this, skip the timed "
        "loop and report the warm-up statistics (stopped_early=True).",
    )


class Timing(BaseModel):
    """Per-iteration wall times of the steady state, in seconds."""

    first_call_s: float = Field(description="First call: includes tracing/compilation.")
    warmup_iters: int
    warmup_stable: bool = Field(description="False if warm-up hit its cap unstable.")
    iterations: int
    median_s: float
    mean_s: float
    p90_s: float
    p99_s: float
    min_s: float
    iqr_s: float
    total_s: float
    noisy: bool = Field(description=f"IQR/median > {NOISY_IQR:.0%}")
    stopped_early: bool = Field(default=False, description="From warm-up only (tuning).")

    @property
    def compile_s(self) -> float:
        """First-call overhead beyond a steady-state call (compile/trace time)."""
        return max(0.0, self.first_call_s - self.median_s)


def _window_median(times: list[float], n: int) -> float:
    return statistics.median(times[-n:])


def warm_up(step: Callable[[], object], cfg: MeasureConfig) -> tuple[list[float], bool]:
    """Run windows of ``warmup_window`` calls until two consecutive window medians agree.

    Returns every warm-up time and whether it stabilised."""
    times: list[float] = []
    w, start, prev = cfg.warmup_window, time.perf_counter(), None
    while len(times) < cfg.max_warmup_iters:
        for _ in range(w):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        med = _window_median(times, w)
        if prev is not None and abs(med - prev) <= cfg.warmup_tolerance * prev:
            return times, True
        prev = med
        if time.perf_counter() - start >= cfg.max_warmup_s:
            break
    return times, False


def timed_loop(step: Callable[[], object], cfg: MeasureConfig) -> list[float]:
    """Steady-state per-call times, with the garbage collector suspended."""
    times: list[float] = []
    append, clock = times.append, time.perf_counter
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        start = clock()
        while True:
            t0 = clock()
            step()
            t1 = clock()
            append(t1 - t0)
            n, elapsed = len(times), t1 - start
            if (n >= cfg.min_iters and elapsed >= cfg.min_time_s) or n >= cfg.max_iters:
                break
            if elapsed >= cfg.max_time_s and n >= 3:
                break
    finally:
        if was_enabled:
            gc.enable()
    return times


def summarize(times: list[float], first_call_s: float, warmup: tuple[int, bool]) -> Timing:
    arr = np.asarray(times)
    q25, med, q75, p90, p99 = np.percentile(arr, [25, 50, 75, 90, 99])
    return Timing(
        first_call_s=first_call_s,
        warmup_iters=warmup[0],
        warmup_stable=warmup[1],
        iterations=len(times),
        median_s=float(med),
        mean_s=float(arr.mean()),
        p90_s=float(p90),
        p99_s=float(p99),
        min_s=float(arr.min()),
        iqr_s=float(q75 - q25),
        total_s=float(arr.sum()),
        noisy=bool(med > 0 and (q75 - q25) / med > NOISY_IQR),
    )


def first_call(step: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def measure(
    step: Callable[[], object], cfg: MeasureConfig, first_call_s: float | None = None
) -> Timing:
    """Full method. Pass ``first_call_s`` if the caller already made (and timed) the first
    call, e.g. inside a separate memory pass."""
    first = first_call(step) if first_call_s is None else first_call_s
    warm, stable = warm_up(step, cfg)
    if warm and cfg.stop_above_s is not None:
        tail = warm[-cfg.warmup_window :]
        if statistics.median(tail) > cfg.stop_above_s:
            return summarize(tail, first, (len(warm), stable)).model_copy(
                update={"stopped_early": True}
            )
    return summarize(timed_loop(step, cfg), first, (len(warm), stable))
