"""Warm probe worker: ``python -m probes.worker.serve KEY`` imports one framework once,
with the process-level settings in ``KEY`` (a `WorkerKey` as JSON), then answers probe
requests until its stdin closes: one `ProbeRequest` (JSON) per line in, one
`ProbeResult` (JSON) per line out. Logs go to stderr.

Its first line out is ``{"ready": ...}`` once the framework is imported. Before each
probe the kernel's peak-RSS mark (VmHWM) is reset, so memory is measured per probe;
after it the backend releases what the probe left (compiled graphs, the Keras
session), the garbage is collected and freed heap is returned to the system.
The parent (`probes.runners.warm`) kills the worker on a crash, hang or overuse.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import sys
import threading
import time
from typing import TextIO

from probes.frameworks import Backend
from probes.measure.memory import reset_peak_rss
from probes.protocol import ProbeRequest, ProbeResult
from probes.runners.lifeline import PARENT_ENV
from probes.settings import WorkerKey, worker_key
from probes.worker.probe import _failure, _measure, import_framework

PARENT_POLL_S = 1.0


def _watch_parent() -> None:
    """Exit when the parent is gone (its pid is no longer our parent's). Polling, not
    PR_SET_PDEATHSIG: that signal fires when the *thread* that spawned us exits, and a
    warm worker outlives the request, and so the thread, that started it."""
    expected = os.environ.get(PARENT_ENV)
    if not expected:
        return

    def watch() -> None:
        while True:
            if os.getppid() != int(expected):
                os._exit(1)
            time.sleep(PARENT_POLL_S)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _trim() -> None:
    """Give freed heap back to the system (glibc), so the next baseline is comparable."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _send(out: TextIO, line: str) -> None:
    out.write(line + "\n")
    out.flush()


def answer(line: str, key: WorkerKey, backend: Backend) -> ProbeResult:
    """One request line -> its result; never raises."""
    main_start, start = time.time(), time.perf_counter()
    try:
        req = ProbeRequest.model_validate_json(line)
    except ValueError as e:
        return ProbeResult(status="failed", framework=key.framework, reason=f"bad request: {e}")
    wanted = worker_key(req.effective_settings(), req.device)
    if wanted != key:
        reason = f"this warm worker is fixed to {key}, not {wanted}"
        return ProbeResult(status="failed", framework=req.framework, reason=reason)
    reset_peak_rss()
    try:
        result = _measure(req, main_start)
    except Exception as e:
        result = _failure(req, e)
    result.wall_s = time.perf_counter() - start
    return result


def main() -> int:
    _watch_parent()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr
    key = WorkerKey.model_validate_json(sys.argv[1])
    t0 = time.perf_counter()
    backend = import_framework(key.framework, key.settings())
    _send(out, json.dumps({"ready": True, "import_s": time.perf_counter() - t0}))
    for line in sys.stdin:
        if not line.strip():
            continue
        result = answer(line, key, backend)
        with contextlib.suppress(Exception):
            backend.release()
        gc.collect()
        _trim()
        try:
            _send(out, result.model_dump_json())
        except BrokenPipeError:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
