"""Warm probe worker: ``python -m probes.worker.serve KEY`` imports one framework once,
with the process-level settings in ``KEY`` (a `WorkerKey` as JSON), then answers probe
requests until its stdin closes: one `ProbeRequest` (JSON) per line in, one
`ProbeResult` (JSON) per line out. Logs go to stderr. One other line comes in:
``{"preload": "compiler"}`` imports the framework's compiler here, before the next
fork, and is answered with what that cost (`probes.worker.preload`).

Its first line out is ``{"ready": ...}`` once the framework is imported. Each probe
runs in a child forked from the worker (a zygote): it starts with the framework
imported, but with none of the state an earlier probe would leave behind (allocator
caches, compiled graphs, the Keras session, thread pools), and its peak RSS is
counted above the same post-import baseline as a fresh process's. Without the fork, a
second probe in the same process read its peak above memory the first had kept, at a
twentieth of a fresh process's figure. The worker itself never runs an op, so no
framework thread pool exists when it forks. A child that dies without a result takes
the worker down the same way, so the parent (`probes.runners.warm`) reports the
crash with a fresh process's status; the parent also kills the group on a hang or
overuse.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import NoReturn, TextIO

from probes.measure.file_pages import Range, map_pages, resident_file_ranges
from probes.measure.memory import reset_peak_rss
from probes.protocol import ProbeRequest, ProbeResult
from probes.runners.lifeline import PARENT_ENV, kill_me_with_parent
from probes.settings import WorkerKey, worker_key
from probes.worker.preload import import_compiler
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


def _send(out: TextIO, line: str) -> None:
    out.write(line + "\n")
    out.flush()


def answer(line: str, key: WorkerKey) -> ProbeResult:
    """One request line -> its result, measured in this process; never raises."""
    main_start, start = time.time(), time.perf_counter()
    try:
        req = ProbeRequest.model_validate_json(line)
    except ValueError as e:
        return ProbeResult(status="failed", framework=key.framework, reason=f"bad request: {e}")
    wanted = worker_key(req.effective_settings(), req.device)
    if wanted != key:
        reason = f"this warm worker is fixed to {key}, not {wanted}"
        return ProbeResult(status="failed", framework=req.framework, reason=reason)
    reset_peak_rss()  # the child's mark starts at the fork's RSS; reset in case not
    try:
        result = _measure(req, main_start)
    except Exception as e:
        result = _failure(req, e)
    result.wall_s = time.perf_counter() - start
    return result


def _child(line: str, key: WorkerKey, zygote: int, out_fd: int, pages: list[Range]) -> NoReturn:
    code = 1
    try:
        kill_me_with_parent(zygote)
        map_pages(pages)  # the worker's file pages, so RSS starts where a fresh one's does
        with os.fdopen(os.dup(out_fd), "wb") as out:
            out.write(answer(line, key).model_dump_json().encode())
        code = 0
    finally:
        os._exit(code)


def answer_in_child(line: str, key: WorkerKey, pages: list[Range]) -> str:
    """``answer`` in a forked child; its result as JSON. A child that dies without one
    (a signal, the kernel's OOM killer) ends this worker the same way. The result comes
    back in an anonymous in-memory file read after the child exits, not a pipe read to
    its end: a process the probe started (a compiler's worker pool) could hold a pipe
    open past it, and a named file would be left behind when the group is killed."""
    zygote = os.getpid()
    out_fd = os.memfd_create("fwadvisor-probe-result")  # close-on-exec by default
    try:
        pid = os.fork()
        if pid == 0:
            _child(line, key, zygote, out_fd, pages)
        _, status = os.waitpid(pid, 0)
        os.lseek(out_fd, 0, os.SEEK_SET)
        with os.fdopen(os.dup(out_fd), "rb") as result:
            text = result.read().decode()
    finally:
        os.close(out_fd)
    if text:
        return text
    if os.WIFSIGNALED(status):
        os.kill(zygote, os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) or 1)


def _is_preload(line: str) -> bool:
    try:
        message = json.loads(line)
    except ValueError:
        return False  # a request line `answer` will reject
    return isinstance(message, dict) and message.get("preload") == "compiler"


def _preload(key: WorkerKey) -> dict[str, object]:
    """Import the compiler in this worker, before any fork (`probes.worker.preload`)."""
    try:
        return {**import_compiler(key.framework)}
    except Exception as e:  # a broken compiler install: the probes will say so
        return {"error": f"{type(e).__name__}: {e}"}


def main() -> int:
    _watch_parent()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr
    key = WorkerKey.model_validate_json(sys.argv[1])
    t0 = time.perf_counter()
    import_framework(key.framework, key.settings())
    pages = resident_file_ranges()
    if map_pages(pages[:1]):
        print("this kernel cannot map file pages ahead (MADV_POPULATE_READ)", file=sys.stderr)
        return 1  # children would read more memory than fresh processes: use those
    _send(out, json.dumps({"ready": True, "import_s": time.perf_counter() - t0}))
    for line in sys.stdin:
        if not line.strip():
            continue
        if _is_preload(line):
            _send(out, json.dumps(_preload(key)))
            pages = resident_file_ranges()  # children map the compiler's files too
            continue
        result = answer_in_child(line, key, pages)
        try:
            _send(out, result)
        except BrokenPipeError:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
