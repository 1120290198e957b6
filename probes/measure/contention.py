"""Did the probe get the machine? A contention reading around the timed part of a probe.

The main signal is the scheduler's own account (``/proc/self/task/*/schedstat``): for
every thread of the process, the time it ran and the time it sat *runnable* on a run
queue, waiting for a core that someone else held. A thread that sleeps (waiting on a
lock, or an idle worker thread) adds to neither, so a small model that leaves intra-op
threads idle is not mistaken for a starved one. ``cpu_share`` = run / (run + wait).

A thread can also wait behind its own process's threads (an intra-op pool as wide as the
machine, plus the Python thread and a memory sampler): that wait is the run as the user
would get it, not contention. So the wait counts only when *other* processes used the CPU
meanwhile: machine-wide busy time from ``/proc/stat`` minus the probe's own run time,
as a share of all cores (``others_share``). Without that reading, every wait counts.

Two machine-wide readings complete it: steal time from ``/proc/stat`` (a hypervisor
taking the core) and CPU pressure from ``/proc/pressure/cpu`` where the kernel has PSI.
Each reading is optional: a file that is missing or unreadable leaves its field None and
never fails the probe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

MIN_CPU_SHARE = 0.85  # below: the probe's threads waited > 15% of their runnable time
MAX_STEAL_SHARE = 0.05
#: Others' CPU as a share of the machine above which a wait is blamed on them (the kernel
#: and idle daemons of a quiet machine use 1-3%; one spinning process on 2 cores is 50%).
MIN_OTHERS_SHARE = 0.10
PROC = Path("/proc")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # jiffies/s


class Contention(BaseModel):
    """What the probe's process got of the machine while it was timed."""

    cpu_share: float = Field(
        ge=0, le=1, description="Run time / (run + run-queue wait) of the process's threads."
    )
    flagged: bool = Field(description="True: the timing was taken on a contended machine.")
    runqueue_wait_s: float | None = Field(default=None, ge=0)
    steal_share: float | None = Field(default=None, ge=0, le=1)
    others_share: float | None = Field(
        default=None, ge=0, le=1, description="CPU used by other processes / all cores."
    )
    cpu_pressure_pct: float | None = Field(
        default=None, ge=0, description="/proc/pressure/cpu 'some' avg10 at the end."
    )
    load_per_core: float | None = Field(default=None, ge=0, description="1-min load / cores.")
    reasons: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Snapshot:
    run_ns: int | None
    wait_ns: int | None
    steal: int | None
    total: int | None
    busy: int | None = None  # jiffies of all CPUs not idle and not waiting on I/O


def _schedstat(proc: Path) -> tuple[int, int] | None:
    """(run ns, run-queue wait ns) summed over the process's threads."""
    run = wait = 0
    try:
        tasks = list((proc / "self" / "task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            fields = (task / "schedstat").read_text().split()
            run, wait = run + int(fields[0]), wait + int(fields[1])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended between the listing and the read
    return run, wait


def _cpu_jiffies(proc: Path) -> tuple[int, int, int] | None:
    """(steal, total, busy) jiffies of all CPUs."""
    try:
        first = (proc / "stat").read_text().split("\n", 1)[0].split()
        vals = [int(v) for v in first[1:]]
    except (OSError, ValueError):
        return None
    steal = vals[7] if len(vals) > 7 else 0
    total = sum(vals[:8])
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    return steal, total, total - idle - steal


def _cpu_pressure(proc: Path) -> float | None:
    try:
        line = (proc / "pressure" / "cpu").read_text().split("\n", 1)[0]
        return float(dict(kv.split("=") for kv in line.split()[1:])["avg10"])
    except (OSError, ValueError, KeyError):
        return None


def snapshot(proc: Path = PROC) -> Snapshot:
    sched, jiffies = _schedstat(proc), _cpu_jiffies(proc)
    return Snapshot(
        run_ns=sched[0] if sched else None,
        wait_ns=sched[1] if sched else None,
        steal=jiffies[0] if jiffies else None,
        total=jiffies[1] if jiffies else None,
        busy=jiffies[2] if jiffies else None,
    )


def _delta(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else max(0, after - before)


def _shares(before: Snapshot, after: Snapshot) -> tuple[float | None, float | None]:
    """(steal, others) as shares of all CPUs' time between the snapshots."""
    total = _delta(before.total, after.total)
    if not total:
        return None, None
    steal = _delta(before.steal, after.steal)
    busy, run = _delta(before.busy, after.busy), _delta(before.run_ns, after.run_ns)
    others = None
    if busy is not None and run is not None:
        own = run / 1e9 * CLK_TCK  # the probe's own run time, in jiffies
        others = min(1.0, max(0.0, (busy - own) / total))
    return (None if steal is None else min(1.0, steal / total)), others


def reading(
    before: Snapshot, after: Snapshot, pressure: float | None, load: float | None
) -> Contention:
    """The contention between two snapshots (pure: the tests feed it made-up numbers)."""
    share, wait_s = 1.0, None
    run, wait = _delta(before.run_ns, after.run_ns), _delta(before.wait_ns, after.wait_ns)
    if run is not None and wait is not None:
        share = run / (run + wait) if run + wait > 0 else 1.0
        wait_s = wait / 1e9
    steal, others = _shares(before, after)
    reasons = []
    if share < MIN_CPU_SHARE and (others is None or others > MIN_OTHERS_SHARE):
        reasons.append(
            f"the probe's threads waited for a core {1 - share:.0%} of the time"
            + (f" while other processes used {others:.0%} of the CPU" if others else "")
        )
    if steal is not None and steal > MAX_STEAL_SHARE:
        reasons.append(f"the hypervisor stole {steal:.0%} of the CPU time")
    return Contention(
        cpu_share=share,
        flagged=bool(reasons),
        runqueue_wait_s=wait_s,
        steal_share=steal,
        others_share=others,
        cpu_pressure_pct=pressure,
        load_per_core=load,
        reasons=reasons,
    )


class ContentionMeter:
    """``with ContentionMeter() as m: ...`` then ``m.result``."""

    def __init__(self, proc: Path = PROC) -> None:
        self.proc = proc
        self.result: Contention | None = None

    def __enter__(self) -> ContentionMeter:
        self._before = snapshot(self.proc)
        return self

    def __exit__(self, *exc: object) -> None:
        after = snapshot(self.proc)
        try:
            load: float | None = os.getloadavg()[0] / (os.cpu_count() or 1)
        except OSError:
            load = None
        self.result = reading(self._before, after, _cpu_pressure(self.proc), load)
