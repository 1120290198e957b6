"""Scale-out on existing engines, against real servers (slow): a zoo run whose probes
are Ray tasks on a local Ray instance, and one whose Optuna studies live in a real
PostgreSQL started here from Debian's binaries (``make test-slow`` installs Debian's
``postgresql`` when it is missing)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.config import Settings
from recommender.zoo.models import ZooConfig
from recommender.zoo.run import ZooRunner, run_zoo
from tests.conftest import ZOO, zoo_spec
from tests.test_web import _free_port

pytestmark = pytest.mark.slow
CFG = dict(trials=1, profiles=["server-gpu"], size="small")


def pg_bin() -> Path | None:
    """The folder of the server binaries (initdb, pg_ctl): ``pg_config --bindir`` when
    it has them (it comes from libpq-dev, whose version may differ from the server's),
    else the newest ``/usr/lib/postgresql/<version>/bin``."""
    found: list[Path] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            found.append(Path(out.stdout.strip()))

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", p.parent.name)) or (0,)

    found += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    return next((b for b in found if (b / "initdb").exists() and (b / "pg_ctl").exists()), None)


def traversable(path: Path) -> bool:
    """Can any user reach ``path`` (every folder up to / is o+x)?"""
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))


def server_dir() -> Path:
    """A fresh folder the 'postgres' user can reach: pytest's own tmp_path is under
    /tmp/pytest-of-<user>, mode 0700, so a server running as 'postgres' could not."""
    bases = [Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")]
    base = next((b for b in bases if b.is_dir() and traversable(b)), None)
    if base is None:
        pytest.skip("no temporary folder every user can reach")
    return Path(tempfile.mkdtemp(prefix="fwadvisor-pg-", dir=base))


def test_zoo_on_a_local_ray_instance(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from probes.runners.ray import RESOURCE, RayRunner

    runner = RayRunner(timeout_s=300)  # starts a local instance with one probe slot
    submitted: list[object] = []
    task = runner.task

    class Counting:  # every probe goes to Ray as a task (ray.util.state needs a dashboard)
        def remote(self, *args: object) -> object:
            submitted.append(task.remote(*args))
            return submitted[-1]

    runner.task = Counting()
    try:
        assert ray.available_resources().get(RESOURCE) == 1.0
        settings = Settings(data_dir=tmp_path / "var", zoo_dir=ZOO)
        cfg = ZooConfig(**CFG, executor="ray")
        run = run_zoo([zoo_spec("mlp")], ZooRunner(cfg, settings, tmp_path / "z", runner), print)
        (o,) = run.models
        assert o.status == "done", o.reason
        assert all(r.tuned_ms for r in o.frameworks), o.failures
        # the probes really ran as Ray tasks, and every one of them has finished
        assert len(submitted) >= 4
        ready, pending = ray.wait(submitted, num_returns=len(submitted), timeout=0)
        assert len(ready) == len(submitted) and not pending
        for _ in range(100):  # the slot is free again (the resource view lags a little)
            if ray.available_resources().get(RESOURCE) == 1.0:
                break
            time.sleep(0.2)
        assert ray.available_resources().get(RESOURCE) == 1.0
    finally:
        ray.shutdown()


def _run(cmd: list[str]) -> None:
    """Run a set-up command; on failure, fail with its output (not a bare exit code)."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr or done.stdout}")


@pytest.fixture()
def postgres() -> Iterator[str]:
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("Debian's postgresql is not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg")
    root = server_dir()
    data, sock, log = root / "pg", root / "sock", root / "pg.log"
    sock.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as 'postgres'
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    try:
        _run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "advisor", "--auth=trust"])
        _run(
            [
                *run_as,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-w",
                "-l",
                str(log),
                "-o",
                f"-p {port} -k {sock} -h 127.0.0.1",
                "start",
            ]
        )
        _run(
            [
                *run_as,
                str(bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "advisor",
                "studies",
            ]
        )
        yield f"postgresql+psycopg://advisor@127.0.0.1:{port}/studies"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
            )
        shutil.rmtree(root, ignore_errors=True)


def test_zoo_with_postgresql_studies(tmp_path: Path, postgres: str) -> None:
    import optuna

    settings = Settings(data_dir=tmp_path / "var", zoo_dir=ZOO)
    cfg = ZooConfig(**CFG, storage=postgres)
    run = run_zoo([zoo_spec("mlp")], ZooRunner(cfg, settings, tmp_path / "z"), print)
    assert run.models[0].status == "done", run.models[0].reason
    studies = optuna.get_all_study_summaries(storage=postgres)
    names = {s.study_name for s in studies}
    assert any("-torch-infer-latency-b1-" in n for n in names)
    assert any("-tensorflow-infer-latency-b32-" in n for n in names)
    assert all(s.n_trials >= 1 for s in studies)
    # a second machine (here: a second runner with its own data dir) continues the same
    # studies from PostgreSQL instead of starting over
    other = Settings(data_dir=tmp_path / "var2", zoo_dir=ZOO)
    again = run_zoo([zoo_spec("mlp")], ZooRunner(cfg, other, tmp_path / "z2"), print)
    assert again.models[0].status == "done"
    after = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage=postgres)}
    assert after == {s.study_name: s.n_trials for s in studies}  # nothing re-run
