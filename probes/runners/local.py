"""Runs probe workers in isolated subprocesses. Never raises for a probe failure."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

from pydantic import ValidationError

from probes.measure.memory import group_rss_bytes, rss_bytes
from probes.protocol import ProbeRequest, ProbeResult
from probes.runners.lifeline import child_env

STDERR_TAIL = 2000
MEMORY_POLL_S = 0.05  # with a memory limit; one /proc scan costs ~0.8 ms
PEAK_POLL_S = 0.25  # without one: only to report the group's peak


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= STDERR_TAIL else "..." + text[-STDERR_TAIL:]


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class _GroupWatch(threading.Thread):
    """Samples the process group's total RSS; kills the group past ``limit`` bytes.
    With ``skip_leader`` the group leader counts only its growth during the watch: it
    is a warm worker, whose probe runs in a forked child that already counts (copy on
    write) every page the leader had."""

    def __init__(
        self,
        proc: subprocess.Popen[str],
        limit: int | None,
        skip_leader: bool = False,
        discount: int = 0,
    ) -> None:
        super().__init__(daemon=True, name="probe-memory-watch")
        self.proc, self.limit = proc, limit
        self.discount = discount  # bytes the probe's child shares but a fresh one lacks
        self.skip = proc.pid if skip_leader else None
        self.leader_start = rss_bytes(proc.pid) if skip_leader else 0
        self.peak = 0
        self.tripped = False
        self.done = threading.Event()

    def run(self) -> None:
        interval = MEMORY_POLL_S if self.limit is not None else PEAK_POLL_S
        while not self.done.wait(interval) and self.proc.poll() is None:
            rss = group_rss_bytes(self.proc.pid, self.skip)
            if self.skip is not None:
                rss += max(0, rss_bytes(self.skip) - self.leader_start)
            rss = max(0, rss - self.discount)
            self.peak = max(self.peak, rss)
            if self.limit is not None and rss > self.limit:
                self.tripped = True
                _kill_group(self.proc.pid)
                return


class ProbeGroups:
    """The process groups of the probes running in this process, so that cancelling a
    job can kill them; once killed, new probes are refused until ``reopen``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pgids: set[int] = set()
        self.closed = False

    def add(self, pgid: int) -> bool:
        with self._lock:
            if not self.closed:
                self._pgids.add(pgid)
            return not self.closed

    def discard(self, pgid: int) -> None:
        with self._lock:
            self._pgids.discard(pgid)

    def kill_all(self) -> int:
        with self._lock:
            self.closed = True
            pgids = list(self._pgids)
        for pgid in pgids:
            _kill_group(pgid)
        return len(pgids)

    def reopen(self) -> None:
        with self._lock:
            self.closed = False


#: this process's live probes (a job worker runs one job at a time)
LIVE = ProbeGroups()
CANCELLED = "cancelled: its job was cancelled; process group killed"


class SubprocessRunner:
    """One fresh ``python -m probes.worker.probe`` per request, in its own process group.

    The request's limits apply (capped by this runner's ``timeout_s``/``memory_mb``).
    On timeout or over the memory limit the whole group is killed, so no grandchild
    (compiler, thread-pool helper) outlives the probe.
    """

    def __init__(
        self,
        timeout_s: float = 600.0,
        command: list[str] | None = None,
        memory_mb: int | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.command = command or [sys.executable, "-m", "probes.worker.probe"]

    def _env(self) -> dict[str, str]:
        env = child_env(dict(os.environ))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("KERAS_BACKEND", "tensorflow")
        return env

    def run(self, request: ProbeRequest) -> ProbeResult:
        fw = request.framework
        timeout = min(self.timeout_s, request.limits.timeout_s)
        caps = [m for m in (self.memory_mb, request.limits.memory_mb) if m]
        limit = min(caps) * 2**20 if caps else None
        if LIVE.closed:
            return ProbeResult(status="failed", framework=fw, reason=CANCELLED)
        request = request.model_copy(update={"spawn_time": time.time()})
        start = time.perf_counter()
        proc = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=self._env(),
        )
        if not LIVE.add(proc.pid):
            _kill_group(proc.pid)
        watch = _GroupWatch(proc, limit)
        watch.start()
        timed_out = False
        try:
            out, err = proc.communicate(request.model_dump_json(), timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid)
            out, err = proc.communicate()
        finally:
            watch.done.set()
            _kill_group(proc.pid)  # reap any helper the worker left behind
            LIVE.discard(proc.pid)
            watch.join()
        result = self._result(fw, proc.returncode, out, err, timeout, watch, timed_out)
        if LIVE.closed and result.status != "ok":
            result = ProbeResult(status="failed", framework=fw, reason=CANCELLED)
        result.wall_s = time.perf_counter() - start
        result.peak_group_rss_bytes = watch.peak or None
        return result

    @staticmethod
    def _result(
        fw: str, code: int, out: str, err: str, timeout: float, watch: _GroupWatch, timed_out: bool
    ) -> ProbeResult:
        def res(status: str, reason: str) -> ProbeResult:
            return ProbeResult.model_validate({"status": status, "framework": fw, "reason": reason})

        if watch.tripped and watch.limit is not None:
            return res(
                "oom",
                f"process group RSS {watch.peak / 2**20:,.0f} MiB exceeded the "
                f"{watch.limit / 2**20:,.0f} MiB limit; group killed",
            )
        if timed_out:
            return res("timeout", f"no result within {timeout:g} s; process group killed")
        if code < 0:
            sig = signal.Signals(-code).name
            hint = " (likely the kernel OOM killer)" if sig == "SIGKILL" else ""
            return res("crashed", f"worker killed by {sig}{hint}; stderr: {_tail(err)}")
        line = out.strip().splitlines()[-1] if out.strip() else ""
        try:
            result = ProbeResult.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValidationError):
            return res("failed", f"worker exit {code} without a valid result; stderr: {_tail(err)}")
        if result.status == "failed" and not result.reason:
            result.reason = _tail(err)
        return result
