"""Harness overhead: time per timed iteration spent outside the measured call.

For each target step duration, a busy-wait step of that length runs through
``probes.measure.timing.timed_loop``. Overhead per iteration = (loop wall time - sum of the
recorded step times) / iterations. Each recorded time also holds one clock read, which
is reported separately. Target: < 1% of any latency >= 100 us.

Run: .venv/bin/python benchmarks/harness_overhead.py
"""

from __future__ import annotations

import statistics
import time

from probes.measure.timing import MeasureConfig, timed_loop


def busy(duration_s: float):  # type: ignore[no-untyped-def]
    def step() -> None:
        end = time.perf_counter() + duration_s
        while time.perf_counter() < end:
            pass

    return step


def clock_cost(n: int = 200_000) -> float:
    clock = time.perf_counter
    t0 = clock()
    for _ in range(n):
        clock()
    return (clock() - t0) / n


def outside_per_iter(step, n1: int, n2: int) -> float:  # type: ignore[no-untyped-def]
    """Differencing two loop lengths cancels fixed costs (the gc.collect() before the loop)."""

    def run(n: int) -> tuple[float, float]:
        cfg = MeasureConfig(min_time_s=0.0, min_iters=n, max_iters=n)
        t0 = time.perf_counter()
        times = timed_loop(step, cfg)
        return time.perf_counter() - t0, sum(times)

    (w1, s1), (w2, s2) = run(n1), run(n2)
    return ((w2 - w1) - (s2 - s1)) / (n2 - n1)


def main() -> None:
    print(f"perf_counter() call: {clock_cost() * 1e9:.0f} ns")
    noop = [outside_per_iter(lambda: None, 500_000, 1_000_000) for _ in range(5)]
    const = statistics.median(noop)
    print(
        f"overhead outside the call, no-op step (median of 5, 0.5M vs 1M iterations): "
        f"{const * 1e9:.0f} ns per iteration (range {min(noop) * 1e9:.0f}-"
        f"{max(noop) * 1e9:.0f} ns)\n"
    )
    print("| step | share of step from the no-op overhead | direct estimate (median of 5) |")
    print("|---:|---:|---:|")
    for target in (10e-6, 100e-6, 1e-3):
        n = max(200, int(0.5 / target))
        direct = statistics.median(outside_per_iter(busy(target), n, 2 * n) for _ in range(5))
        print(
            f"| {target * 1e6:.0f} us | {100 * const / target:.3f}% | "
            f"{direct * 1e9:+.0f} ns (busy-wait jitter dominates) |"
        )


if __name__ == "__main__":
    main()
