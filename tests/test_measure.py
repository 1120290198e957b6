"""The timing method: warm-up, stopping rule, statistics, GC suspension."""

from __future__ import annotations

import gc
from types import SimpleNamespace

import pytest

from probes.measure.timing import MeasureConfig, measure, summarize, timed_loop, warm_up

FAST = MeasureConfig(min_time_s=0.0, min_iters=25, max_warmup_s=1.0)


def test_stops_on_min_iters_and_min_time() -> None:
    calls = []
    t = measure(lambda: calls.append(1), FAST)
    assert t.iterations == 25 and t.warmup_stable
    assert len(calls) == 1 + t.warmup_iters + t.iterations  # first call counted apart


def test_max_iters_caps_loop() -> None:
    times = timed_loop(lambda: None, MeasureConfig(min_time_s=100, min_iters=1, max_iters=50))
    assert len(times) == 50


def test_gc_suspended_during_timed_loop_and_restored() -> None:
    seen = []
    timed_loop(lambda: seen.append(gc.isenabled()), FAST)
    assert seen and not any(seen) and gc.isenabled()


def test_unstable_warmup_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake clock makes the drift exact: each call takes 1% longer than the last, so
    # consecutive window medians always differ by more than the 1% tolerance. (Real
    # timing of a growing loop flaked under CI load.)
    now = [0.0]
    cost = [1e-3]
    monkeypatch.setattr("probes.measure.timing.time", SimpleNamespace(perf_counter=lambda: now[0]))

    def drifting() -> None:
        now[0] += cost[0]
        cost[0] *= 1.01

    times, stable = warm_up(drifting, MeasureConfig(max_warmup_iters=30, warmup_tolerance=0.01))
    assert len(times) == 30 and not stable
    steady = warm_up(lambda: now.__setitem__(0, now[0] + 1e-3), MeasureConfig(max_warmup_iters=30))
    assert steady[1] and len(steady[0]) == 10


def test_stop_above_skips_timed_loop() -> None:
    calls = []
    slow = MeasureConfig(min_time_s=0.0, min_iters=1000, stop_above_s=1e-9)
    t = measure(lambda: calls.append(1), slow)
    assert t.stopped_early and t.iterations == slow.warmup_window
    assert len(calls) == 1 + t.warmup_iters  # no timed loop ran
    fast = measure(lambda: None, FAST.model_copy(update={"stop_above_s": 10.0}))
    assert not fast.stopped_early and fast.iterations == 25


def test_statistics_and_noise_flag() -> None:
    quiet = summarize([1.0] * 50 + [1.05] * 50, first_call_s=3.0, warmup=(5, True))
    assert quiet.median_s in (1.0, 1.025, 1.05) and not quiet.noisy
    assert quiet.compile_s == 3.0 - quiet.median_s
    noisy = summarize([1.0, 1.0, 2.0, 2.0], first_call_s=1.0, warmup=(5, True))
    assert noisy.noisy and noisy.p99_s <= 2.0 and noisy.min_s == 1.0
