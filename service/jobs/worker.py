"""``fwadvisor worker``: runs queued jobs one at a time, with heartbeats.

- One probe at a time per machine: a worker holds ``<data_dir>/probe.lock`` (flock)
  while it runs a job, so two workers on one machine never measure concurrently.
- A heartbeat thread keeps the attempt alive, notices a cancel request (then kills the
  job's probe process groups) and notices when the attempt was reaped.
- Every worker also reaps: a running job whose heartbeat stopped (its worker was
  SIGKILLed, its machine died) is retried while attempts remain, else failed.
- SIGTERM/SIGINT: stop taking jobs; a running job's probes are killed and the job goes
  back to the queue without spending an attempt.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from probes.errors import AdvisorError, brief
from probes.runners.local import LIVE
from probes.tune.owner import owner_scope
from service.jobs.execute import execute
from service.jobs.lease import WorkerStore
from service.jobs.requests import JobCreate
from service.jobs.store import Attempt
from service.settings import ServiceSettings

log = logging.getLogger("fwadvisor.worker")


class JobStopped(Exception):
    """Raised from the progress callback once the job must stop."""


@contextlib.contextmanager
def machine_lock(path: Path) -> Iterator[bool]:
    """Non-blocking flock: yields whether this process holds the machine's probe lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class _Attempt(threading.Thread):
    """Heartbeat of one running attempt; flags why it must stop, if it must."""

    def __init__(self, worker: JobWorker, a: Attempt) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{a.job_id[:8]}")
        self.worker, self.a = worker, a
        self.done = threading.Event()
        self.stop_reason: str | None = None  # "cancelled", "lost" or "shutdown"

    def halt(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        LIVE.kill_all()

    def run(self) -> None:
        w = self.worker
        while not self.done.wait(w.settings.heartbeat_s):
            try:
                ours, cancel = w.store.heartbeat(self.a)
                w.store.seen(w.id, w.host, os.getpid(), self.a.job_id)
            except Exception:  # the database may blip; the stale timeout is the judge
                log.exception("heartbeat failed")
                continue
            if not ours:
                self.halt("lost")
            elif cancel:
                self.halt("cancelled")
            if w.shutdown.is_set():
                self.halt("shutdown")

    def say(self, message: str) -> None:
        if self.stop_reason is not None:
            raise JobStopped(self.stop_reason)
        if not self.worker.store.progress(self.a, message):
            self.halt("lost")
            raise JobStopped("lost")


class JobWorker:
    def __init__(self, settings: ServiceSettings, store: WorkerStore | None = None) -> None:
        self.settings = settings
        self.store = store or WorkerStore(settings.job_db_url())
        self.host = socket.gethostname()
        self.id = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.shutdown = threading.Event()
        self.current: _Attempt | None = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        self.shutdown.set()
        if self.current is not None:
            self.current.halt("shutdown")

    def run(self, max_jobs: int | None = None, exit_when_idle: bool = False) -> int:
        """Serve the queue until SIGTERM (or ``max_jobs`` jobs, or an empty queue with
        ``exit_when_idle``). Returns the number of jobs run."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
        ran = 0
        lock = self.settings.data_dir / "probe.lock"
        try:
            while not self.shutdown.is_set() and (max_jobs is None or ran < max_jobs):
                self.store.reap(self.settings.stale_after_s)
                self.store.seen(self.id, self.host, os.getpid(), None)
                with machine_lock(lock) as held:
                    a = self.store.claim(self.id) if held else None
                    if a is not None:
                        self.run_attempt(a)
                        ran += 1
                        continue
                if exit_when_idle and held:
                    break
                self.shutdown.wait(self.settings.poll_s)
        finally:
            with contextlib.suppress(Exception):
                self.store.gone(self.id)
        return ran

    def run_attempt(self, a: Attempt) -> None:
        hb = _Attempt(self, a)
        self.current = hb
        hb.start()
        try:
            self._execute(a, hb)
        finally:
            hb.done.set()
            hb.join()
            self.current = None
            LIVE.reopen()

    def _execute(self, a: Attempt, hb: _Attempt) -> None:
        row = self.store.get(a.job_id)
        assert row is not None
        error: str | None = None
        result: str | None = None
        try:
            req = JobCreate.model_validate_json(row["request"]).root
            with owner_scope(a.job_id, a.number):  # a retry fails this attempt's trials
                result = execute(req, self.settings, hb.say).model_dump_json()
        except JobStopped:
            pass
        except AdvisorError as e:
            error = e.message
        except Exception as e:
            log.exception("job %s failed", a.job_id)
            error = f"internal error: {brief(e)}"
        self._settle(a, hb, result, error)

    def _settle(self, a: Attempt, hb: _Attempt, result: str | None, error: str | None) -> None:
        reason = hb.stop_reason
        if reason == "lost":
            log.warning("job %s: attempt %d was reaped; result dropped", a.job_id, a.number)
        elif reason == "shutdown":
            self.store.release(a, f"worker {self.id} stopped")
        elif reason == "cancelled":
            self.store.finish(a, "cancelled", error="cancelled while running; probes killed")
        elif error is not None:
            self.store.finish(a, "failed", error=error)
        else:
            self.store.finish(a, "succeeded", result=result)
