"""One warm worker process (``python -m probes.worker.serve``), seen from the parent:
start it, ask it one probe at a time, kill it. Its failures map to the same
`ProbeResult` statuses and reasons as a fresh process's (`probes.runners.local`)."""

from __future__ import annotations

import collections
import contextlib
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO

from probes.protocol import ProbeRequest, ProbeResult
from probes.runners.local import LIVE, SubprocessRunner, _GroupWatch, _kill_group, _tail
from probes.settings import WorkerKey

STDERR_LINES = 400  # stderr lines kept per request, for a failure's reason
EXIT_WAIT_S = 5.0


class WarmWorker:
    """A worker process fixed to ``key``, in its own process group. Not thread-safe:
    the pool hands it to one request at a time."""

    def __init__(self, key: WorkerKey, command: list[str], env: dict[str, str]) -> None:
        self.key = key
        self.served = 0
        #: RSS its compiler import added (`preload_compiler`); None until it ran
        self.compiler_bytes: int | None = None
        self.proc = subprocess.Popen(
            [*command, key.model_dump_json()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,
            env=env,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._err: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._pump(self.proc.stdout, self._lines.put)
        self._err_pump = self._pump(self.proc.stderr, self._err.append)

    def _pump(self, stream: IO[str], sink: Callable[[str], None]) -> threading.Thread:
        def run() -> None:
            with contextlib.suppress(OSError, ValueError):
                for line in stream:
                    sink(line)
            if stream is self.proc.stdout:
                self._lines.put(None)

        thread = threading.Thread(target=run, daemon=True, name=f"warm-{self.proc.pid}")
        thread.start()
        return thread

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _next(self, timeout_s: float) -> str | None:
        """The next stdout line; None at end of file; ``queue.Empty`` past the timeout."""
        return self._lines.get(timeout=max(timeout_s, 0.001))

    def _stderr(self) -> str:
        return _tail("".join(self._err))

    def _reply(self, timeout_s: float, limit: int | None) -> dict[str, object] | None:
        """The next line as a JSON object, under a memory watch; None if none came."""
        watch = _GroupWatch(self.proc, limit)
        watch.start()
        try:
            line = self._next(timeout_s)
            reply = json.loads(line) if line is not None else None
        except (queue.Empty, ValueError):
            reply = None
        finally:
            watch.done.set()
            watch.join()
        return reply if isinstance(reply, dict) and not watch.tripped else None

    def start(self, timeout_s: float, limit: int | None) -> str | None:
        """Wait for the framework import; None when ready, else why not (worker killed)."""
        reply = self._reply(timeout_s, limit)
        if reply is not None and reply.get("ready") is True:
            return None
        self.kill()
        return f"warm worker for {self.key} did not start: {reply!r}; stderr: {self._stderr()}"

    def preload_compiler(self, timeout_s: float, limit: int | None) -> str | None:
        """Have the worker import its framework's compiler (`probes.worker.preload`);
        None when done, else why not (worker killed)."""
        if not LIVE.add(self.pid):  # a cancelled job kills the import too
            _kill_group(self.pid)
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"preload": "compiler"}) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # the worker is gone: no reply comes
        try:
            reply = self._reply(timeout_s, limit)
        finally:
            LIVE.discard(self.pid)
        got = reply.get("preloaded_bytes") if reply is not None else None
        if isinstance(got, int) and not isinstance(got, bool):
            self.compiler_bytes = got
            return None
        self.kill()
        why = f"did not import its compiler: {reply!r}; stderr: {self._stderr()}"
        return f"warm worker for {self.key} {why}"

    def ask(
        self, request: ProbeRequest, timeout_s: float, limit: int | None, discount: int = 0
    ) -> ProbeResult:
        """Run one probe. On a crash, hang (past ``timeout_s``) or the group passing
        ``limit`` bytes, the group is killed and the result says so, as for a fresh
        process; the caller then drops this worker. ``discount``: bytes the child shares
        with the worker that a fresh process would not have (the compiler's import, for
        a probe that does not use it), taken off the RSS the limit is checked against."""
        fw, started = request.framework, time.perf_counter()
        self._err.clear()
        watch = _GroupWatch(self.proc, limit, skip_leader=True, discount=discount)
        watch.start()
        if not LIVE.add(self.pid):
            _kill_group(self.pid)
        line, timed_out = None, False
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(request.model_dump_json() + "\n")
            self.proc.stdin.flush()
            line = self._next(timeout_s)
        except queue.Empty:
            timed_out = True
        except OSError:  # the worker is gone: its exit status says why
            line = None
        finally:
            watch.done.set()
            LIVE.discard(self.pid)
            watch.join()
        self.served += 1
        if line is not None and not watch.tripped:
            result = SubprocessRunner._result(fw, 0, line, self._stderr(), timeout_s, watch, False)
        else:
            self.kill()
            code = self._exit_code()
            self._err_pump.join(EXIT_WAIT_S)  # the last of stderr, for the reason
            result = SubprocessRunner._result(
                fw, code, "", self._stderr(), timeout_s, watch, timed_out
            )
        result.wall_s = time.perf_counter() - started
        result.peak_group_rss_bytes = watch.peak or None
        return result

    def _exit_code(self) -> int:
        try:
            return self.proc.wait(EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            return -9

    def kill(self) -> None:
        """Kill the whole group now (the worker and anything it started)."""
        _kill_group(self.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(EXIT_WAIT_S)
        self._close_pipes()

    def close(self, wait_s: float = 2.0) -> None:
        """Ask the worker to finish (end of its stdin), then kill what is left."""
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(wait_s)
        self.kill()

    def _close_pipes(self) -> None:
        for stream in (self.proc.stdin,):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()
