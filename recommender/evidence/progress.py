"""Progress that tells the time: the step, probes done of those planned, elapsed, and an
estimate of the time left (the mean probe time so far times the probes still planned)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from probes.protocol import ProbeRequest, ProbeResult
from probes.runners.base import ProbeRunner

Say = Callable[[str], None]


@dataclass
class WorkClock:
    planned: int
    done: int = 0
    spent_s: float = 0.0
    start: float = field(default_factory=time.monotonic)

    def eta_s(self) -> float | None:
        if self.done == 0:
            return None
        return self.spent_s / self.done * max(0, self.planned - self.done)

    def status(self) -> str:
        elapsed = _clock(time.monotonic() - self.start)
        eta = self.eta_s()
        left = f", about {_clock(eta)} left" if eta is not None else ""
        return f"{self.done}/{max(self.planned, self.done)} probes, {elapsed} elapsed{left}"


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}"


@dataclass
class ClockedRunner:
    """A runner that counts its probes and their wall time on a ``WorkClock``."""

    inner: ProbeRunner
    clock: WorkClock

    def run(self, request: ProbeRequest) -> ProbeResult:
        t0 = time.monotonic()
        try:
            return self.inner.run(request)
        finally:
            self.clock.done += 1
            self.clock.spent_s += time.monotonic() - t0


class ProgressLine(str):
    """A progress message that is also structured: a plain ``str`` to whoever just logs
    it (job events, plain terminals), the step and counts to a progress bar."""

    step: str
    done: int
    planned: int
    eta_s: float | None

    def __new__(cls, text: str, step: str, clock: WorkClock) -> ProgressLine:
        line = super().__new__(cls, text)
        line.step, line.done = step, clock.done
        line.planned, line.eta_s = max(clock.planned, clock.done), clock.eta_s()
        return line


def stepped(say: Say, clock: WorkClock, step: str) -> Say:
    """``say`` with the step and the clock's status on every line."""
    return lambda msg: say(ProgressLine(f"[{step}] {msg} ({clock.status()})", step, clock))
