"""SubprocessRunner maps every way a worker can end to a status, and leaves no orphans."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from probes.errors import UnsupportedError
from probes.payloads import ForwardData
from probes.protocol import ForwardWorkload, ProbeLimits, ProbeRequest
from probes.runners.local import SubprocessRunner
from probes.worker.probe import _failure
from tests.conftest import zoo_spec

FAKES = {
    "echo": """
        import json, sys
        req = json.loads(sys.stdin.read())
        data = {"kind": "forward", "outputs_file": "echo.npz"}
        print(json.dumps({"status": "ok", "framework": req["framework"], "data": data}))
    """,
    "crash": """
        import os, signal
        os.kill(os.getpid(), signal.SIGSEGV)
    """,
    "garbage": """
        import sys
        print("this is not json"); print("boom", file=sys.stderr); sys.exit(3)
    """,
    "hog": """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open(sys.argv[1], "w").write(str(child.pid))
        hoard = []
        while True:
            hoard.append(bytearray(16 * 2**20))  # touched pages: real RSS
            time.sleep(0.01)
    """,
    "hang": """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open(sys.argv[1], "w").write(str(child.pid))
        time.sleep(600)
    """,
}


def fake(tmp_path: Path, kind: str, *extra: str) -> SubprocessRunner:
    script = tmp_path / f"{kind}.py"
    script.write_text(textwrap.dedent(FAKES[kind]))
    return SubprocessRunner(timeout_s=3, command=[sys.executable, str(script), *extra])


def request(tmp_path: Path) -> ProbeRequest:
    return ProbeRequest(
        spec=zoo_spec("mlp"), framework="torch", workload=ForwardWorkload(), io_dir=str(tmp_path)
    )


def test_ok(tmp_path: Path) -> None:
    r = fake(tmp_path, "echo").run(request(tmp_path))
    assert r.status == "ok" and r.data == ForwardData(outputs_file="echo.npz")
    assert r.wall_s is not None


def test_crash_reports_signal(tmp_path: Path) -> None:
    r = fake(tmp_path, "crash").run(request(tmp_path))
    assert r.status == "crashed" and "SIGSEGV" in (r.reason or "")


def test_garbage_is_failed_with_stderr_tail(tmp_path: Path) -> None:
    r = fake(tmp_path, "garbage").run(request(tmp_path))
    assert r.status == "failed" and "exit 3" in (r.reason or "") and "boom" in (r.reason or "")


def test_timeout_kills_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    r = fake(tmp_path, "hang", str(pidfile)).run(request(tmp_path))
    assert r.status == "timeout"
    assert not alive(int(pidfile.read_text()))  # the grandchild died with its group


def alive(pid: int, wait_s: float = 5.0) -> bool:
    """True if ``pid`` still runs (a zombie awaiting a reaper counts as dead)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.05)
    return True


def test_bad_spec_in_real_worker_is_failed_not_raised(tmp_path: Path) -> None:
    spec = zoo_spec("mlp")
    (tmp_path / "inputs.npz").write_bytes(b"not an npz")
    r = SubprocessRunner(timeout_s=120).run(
        ProbeRequest(spec=spec, framework="torch", workload=ForwardWorkload(), io_dir=str(tmp_path))
    )
    assert r.status == "failed" and r.reason


def test_memory_limit_kills_group_as_oom(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    runner = fake(tmp_path, "hog", str(pidfile))
    runner.timeout_s, runner.memory_mb = 60, 200
    r = runner.run(request(tmp_path))
    assert r.status == "oom" and "exceeded the 200 MiB limit" in (r.reason or "")
    assert r.peak_group_rss_bytes and r.peak_group_rss_bytes > 200 * 2**20
    assert not alive(int(pidfile.read_text()))


def test_request_limits_apply(tmp_path: Path) -> None:
    req = request(tmp_path).model_copy(update={"limits": ProbeLimits(timeout_s=1)})
    runner = fake(tmp_path, "hang", str(tmp_path / "pid"))
    runner.timeout_s = 60
    r = runner.run(req)
    assert r.status == "timeout" and "1 s" in (r.reason or "")


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (MemoryError(), "oom"),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB"), "oom"),
        (UnsupportedError("no CUDA"), "unsupported"),
        (NotImplementedError("op x"), "unsupported"),
        (ValueError("boom"), "failed"),
    ],
)
def test_worker_maps_exceptions_to_status(tmp_path: Path, exc: Exception, status: str) -> None:
    assert _failure(request(tmp_path), exc).status == status
