"""Warm workers: a probe process per (framework, device, process-level settings) that
stays alive across trials, builds and confirmation rounds, so that tuning pays the
spawn and the framework import once, not per probe. Each probe runs in a child forked
from the worker (`probes.worker.serve`), so no probe sees another's leftovers and
memory peaks are a fresh process's.

`WarmRunner` sends every workload but a cold start and a calibration (`FRESH_KINDS`)
to a warm worker of the request's `WorkerKey`, and those two to a fresh process. A
warm worker that crashes, hangs or passes the memory limit fails that probe with the
fresh runner's status and reason and is killed; the next probe of its key starts a new
one. Workers live in one pool per
parent process (`POOL`), at most `MAX_PER_FRAMEWORK` per framework (the least
recently used idle one is closed first), and end with the parent: at exit, when their
stdin closes, or within a second of the parent's death (`probes.worker.serve`).
When warm workers fail to start, probes run in fresh processes.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time

from probes.frameworks.facts import uses_compiler
from probes.protocol import ProbeRequest, ProbeResult
from probes.runners.base import ProbeRunner
from probes.runners.local import CANCELLED, LIVE, SubprocessRunner
from probes.runners.warm_worker import WarmWorker
from probes.settings import WorkerKey, worker_key

LOG = logging.getLogger(__name__)
#: Workloads that always get a new process: a cold start measures the process start
#: itself, and a calibration is one long probe that has nothing to save. Everything else
#: (timing, exports, parity, convergence, custom ops) runs in a child forked from a warm
#: worker, which leaves the worker as it was (an export's converters and runtimes load
#: in the child only; PyTorch's compiler, which exports trace with, is imported in the
#: worker once, ahead: `probes.worker.preload`).
FRESH_KINDS = frozenset({"cold", "calibrate"})
MAX_PER_FRAMEWORK = 2
#: After this many warm workers in a row failed to start, this process runs fresh ones.
START_FAILURES = 2
#: Statuses after which a worker is kept: anything else may have left it damaged.
HEALTHY = frozenset({"ok", "unsupported"})
WARM_COMMAND = [sys.executable, "-m", "probes.worker.serve"]


class WarmPool:
    """The live warm workers of this process, bounded per framework, LRU among idle."""

    def __init__(self, command: list[str] | None = None, per_framework: int = MAX_PER_FRAMEWORK):
        self.command = command or WARM_COMMAND
        self.per_framework = per_framework
        self._idle: list[WarmWorker] = []  # least recently used first
        self._busy: list[WarmWorker] = []
        self._lock = threading.Lock()
        self.failed_starts = 0
        self.disabled: str | None = None
        #: Frameworks whose compiler a worker failed to import ahead: their probes then
        #: import it in the child, as before, instead of restarting workers each time.
        self.no_preload: set[str] = set()
        self.started = 0

    def checkout(self, key: WorkerKey) -> WarmWorker | None:
        """An idle live worker of ``key``, now busy; None if there is none."""
        with self._lock:
            for w in [w for w in self._idle if not w.alive()]:  # died while idle
                self._idle.remove(w)
                w.kill()
            match = next((w for w in reversed(self._idle) if w.key == key), None)
            if match is not None:
                self._idle.remove(match)
                self._busy.append(match)
            return match

    def _make_room(self, framework: str) -> bool:
        """Close idle workers of ``framework`` until one more fits; False if all are busy."""
        same = [w for w in self._idle + self._busy if w.key.framework == framework]
        idle = [w for w in self._idle if w.key.framework == framework]
        while len(same) >= self.per_framework and idle:
            victim = idle.pop(0)
            self._idle.remove(victim)
            same.remove(victim)
            victim.close()
        return len(same) < self.per_framework

    def spawn(
        self, key: WorkerKey, env: dict[str, str], timeout_s: float, limit: int | None
    ) -> WarmWorker | str:
        """A new busy worker of ``key``, ready; or why there is none."""
        with self._lock:
            if self.disabled:
                return self.disabled
            if not self._make_room(key.framework):
                return f"{self.per_framework} {key.framework} warm workers are busy"
        worker = WarmWorker(key, self.command, env)
        why = worker.start(timeout_s, limit)
        with self._lock:
            if why is not None:
                self.failed_starts += 1
                if self.failed_starts >= START_FAILURES:
                    self.disabled = f"warm workers disabled: {why}"
                    LOG.warning("%s; probes run in fresh processes", why)
                return why
            self.failed_starts = 0
            self.started += 1
            self._busy.append(worker)
        return worker

    def checkin(self, worker: WarmWorker, keep: bool) -> None:
        """Back to the idle list (most recent), or killed when not ``keep``."""
        with self._lock:
            if worker in self._busy:
                self._busy.remove(worker)
            if keep and worker.alive():
                self._idle.append(worker)
                return
        worker.kill()

    def live(self) -> list[WarmWorker]:
        with self._lock:
            return [*self._idle, *self._busy]

    def close_all(self) -> None:
        with self._lock:
            workers, self._idle, self._busy = [*self._idle, *self._busy], [], []
        for w in workers:
            w.close()


#: This process's warm workers (shared by every WarmRunner, so that a job worker running
#: many jobs still keeps at most MAX_PER_FRAMEWORK per framework alive).
POOL = WarmPool()
atexit.register(POOL.close_all)


class WarmRunner:
    """Probes in warm workers; cold starts, calibrations and any fallback in fresh
    processes.
    Limits are the fresh runner's: ``fresh.timeout_s`` and ``fresh.memory_mb``."""

    def __init__(self, fresh: SubprocessRunner | None = None, pool: WarmPool | None = None):
        self.fresh = fresh or SubprocessRunner()
        self.pool = pool or POOL

    def run(self, request: ProbeRequest) -> ProbeResult:
        if request.workload.kind in FRESH_KINDS or self.pool.disabled:
            return self.fresh.run(request)
        if LIVE.closed:
            return ProbeResult(status="failed", framework=request.framework, reason=CANCELLED)
        timeout = min(self.fresh.timeout_s, request.limits.timeout_s)
        caps = [m for m in (self.fresh.memory_mb, request.limits.memory_mb) if m]
        limit = min(caps) * 2**20 if caps else None
        start, asked = time.perf_counter(), time.time()
        worker = self._ready_worker(request, timeout, limit, start)
        if isinstance(worker, str):
            LOG.info("fresh process instead of a warm worker: %s", worker)
            return self.fresh.run(request)
        left = timeout - (time.perf_counter() - start)
        # From the request on: a worker's start or compiler import counts as this
        # probe's spawn, as a fresh process's would.
        request = request.model_copy(update={"spawn_time": asked})
        # a probe without the compiler would not have its import in a fresh process
        discount = 0 if uses_compiler(request) else worker.compiler_bytes or 0
        result = worker.ask(request, left, limit, discount)
        self.pool.checkin(worker, keep=result.status in HEALTHY and not LIVE.closed)
        if LIVE.closed and result.status != "ok":
            result = ProbeResult(status="failed", framework=request.framework, reason=CANCELLED)
        if result.status == "timeout":
            result.reason = f"no result within {timeout:g} s; process group killed"
        result.wall_s = time.perf_counter() - start
        if result.measurement is not None:
            result.measurement.runtime["process"] = f"warm (probe {worker.served})"
        return result

    def _ready_worker(
        self, request: ProbeRequest, timeout: float, limit: int | None, start: float
    ) -> WarmWorker | str:
        """A worker of the request's key, with its compiler imported if the probe uses
        it; else why there is none (the probe then runs in a fresh process)."""
        key = worker_key(request.effective_settings(), request.device)
        worker = self.pool.checkout(key) or self.pool.spawn(key, self.fresh._env(), timeout, limit)
        if isinstance(worker, str):
            return worker
        wanted = uses_compiler(request) and request.framework not in self.pool.no_preload
        if worker.compiler_bytes is None and wanted:
            why = worker.preload_compiler(timeout - (time.perf_counter() - start), limit)
            if why is not None:
                self.pool.no_preload.add(request.framework)
                self.pool.checkin(worker, keep=False)
                return why
        return worker


def local_runner(
    timeout_s: float = 600.0, *, fresh: bool = False, memory_mb: int | None = None
) -> ProbeRunner:
    """The local runner: warm workers (the default), or a fresh process per probe
    (``fresh``: ``--fresh-processes``, ``FWADVISOR_FRESH_PROCESSES=1``)."""
    runner = SubprocessRunner(timeout_s=timeout_s, memory_mb=memory_mb)
    return runner if fresh else WarmRunner(runner)
