"""Tie a child process's life to its parent's (Linux), so that killing a job worker,
even with SIGKILL, also ends the probes it started instead of leaving them measuring
on the machine that the retry will measure on."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
PARENT_ENV = "FWADVISOR_PARENT_PID"


def die_with_parent() -> None:
    """Ask the kernel for SIGKILL when the parent exits; exit now if it already has.

    The parent's pid comes from ``FWADVISOR_PARENT_PID`` (set by the spawner), which
    closes the race where the parent dies before the request is made. No-op elsewhere
    than Linux, or when the variable is unset."""
    expected = os.environ.get(PARENT_ENV)
    if not expected or not sys.platform.startswith("linux"):
        return
    kill_me_with_parent(int(expected))


def kill_me_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent (pid ``parent``) exits; exit now if it has."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus this process's pid as the parent to die with."""
    return {**env, PARENT_ENV: str(os.getpid())}
