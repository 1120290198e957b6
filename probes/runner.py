"""Runs probe workers in isolated subprocesses. Never raises for a probe failure."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import Protocol

from pydantic import ValidationError

from probes.protocol import ProbeRequest, ProbeResult

STDERR_TAIL = 2000


class ProbeRunner(Protocol):
    def run(self, request: ProbeRequest) -> ProbeResult: ...


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= STDERR_TAIL else "..." + text[-STDERR_TAIL:]


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class SubprocessRunner:
    """One fresh ``python -m probes.worker`` per request, in its own process group.

    On timeout the whole group is killed, so no grandchild (compiler, thread pool
    helper) outlives the probe.
    """

    def __init__(self, timeout_s: float = 600.0, command: list[str] | None = None) -> None:
        self.timeout_s = timeout_s
        self.command = command or [sys.executable, "-m", "probes.worker"]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("KERAS_BACKEND", "tensorflow")
        return env

    def run(self, request: ProbeRequest) -> ProbeResult:
        fw = request.framework
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
        try:
            out, err = proc.communicate(request.model_dump_json(), timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            return ProbeResult(
                status="timeout",
                framework=fw,
                reason=f"no result within {self.timeout_s:g} s; process group killed",
                wall_s=time.perf_counter() - start,
            )
        finally:
            _kill_group(proc)  # reap any helper the worker left behind
        wall = time.perf_counter() - start
        if proc.returncode < 0:
            sig = signal.Signals(-proc.returncode).name
            return ProbeResult(
                status="crashed",
                framework=fw,
                wall_s=wall,
                reason=f"worker killed by {sig}; stderr: {_tail(err)}",
            )
        line = out.strip().splitlines()[-1] if out.strip() else ""
        try:
            result = ProbeResult.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValidationError):
            return ProbeResult(
                status="failed",
                framework=fw,
                wall_s=wall,
                reason=f"worker exit {proc.returncode} without a valid result; "
                f"stderr: {_tail(err)}",
            )
        if result.status == "failed" and not result.reason:
            result.reason = _tail(err)
        result.wall_s = wall
        return result
