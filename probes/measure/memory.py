"""Resident memory: sampled in a thread inside the worker, and per process group from
the parent (to enforce the probe's memory limit). Linux /proc; no extra dependency."""

from __future__ import annotations

import os
import resource
import threading
from pathlib import Path
from types import TracebackType

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int | str = "self") -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return 0


def maxrss_bytes() -> int:
    """Lifetime peak RSS of this process (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss_bytes() -> int:
    """This process's peak RSS since it started or since ``reset_peak_rss`` (``VmHWM``);
    ``ru_maxrss`` where ``/proc/self/status`` has no ``VmHWM`` (it cannot be reset)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return maxrss_bytes()


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux: "5" to ``/proc/self/clear_refs``), so
    a warm worker reports each probe's own peak; False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def group_rss_bytes(pgid: int, skip: int | None = None) -> int:
    """Sum of RSS over every live process in process group ``pgid`` but ``skip``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == str(skip):
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            total += rss_bytes(entry.name)
    return total


class PeakSampler:
    """Samples this process's RSS every ``interval_s`` in a daemon thread; keeps the peak."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
