"""Scale-out on existing engines, against real servers (slow): a zoo run whose probes
are Ray tasks on a local Ray instance, and one whose Optuna studies live in a real
PostgreSQL started here from Debian's binaries."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.config import Settings
from recommender.zoo import ZooRunner, run_zoo
from recommender.zoo_models import ZooConfig
from tests.conftest import ZOO, zoo_spec
from tests.test_web import _free_port

pytestmark = pytest.mark.slow
PG_BIN = Path("/usr/lib/postgresql/15/bin")
CFG = dict(trials=1, profiles=["server-gpu"], size="small")


def test_zoo_on_a_local_ray_instance(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from probes.ray_runner import RESOURCE, RayRunner

    runner = RayRunner(timeout_s=300)  # starts a local instance with one probe slot
    try:
        assert ray.available_resources().get(RESOURCE) == 1.0
        settings = Settings(data_dir=tmp_path / "var", zoo_dir=ZOO)
        cfg = ZooConfig(**CFG, executor="ray")
        run = run_zoo([zoo_spec("mlp")], ZooRunner(cfg, settings, tmp_path / "z", runner), print)
        (o,) = run.models
        assert o.status == "done", o.reason
        assert all(r.tuned_ms for r in o.frameworks), o.failures
        # the probes really ran as Ray tasks (in a Ray worker process, not here)
        tasks = ray.util.state.list_tasks(filters=[("name", "=", "_run_probe")], limit=1000)
        assert len(tasks) >= 4
    finally:
        ray.shutdown()


@pytest.fixture()
def postgres(tmp_path: Path) -> Iterator[str]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip("Debian's postgresql is not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg")
    data, sock = tmp_path / "pg", tmp_path / "sock"
    sock.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as 'postgres'
        shutil.chown(tmp_path, "postgres")
        shutil.chown(sock, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [*run_as, str(PG_BIN / "initdb"), "-D", str(data), "-U", "advisor", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run_as,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(tmp_path / "pg.log"),
            "-o",
            f"-p {port} -k {sock} -h 127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [
                *run_as,
                str(PG_BIN.parent / "bin" / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "advisor",
                "studies",
            ],
            check=True,
        )
        yield f"postgresql+psycopg://advisor@127.0.0.1:{port}/studies"
    finally:
        subprocess.run(
            [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )


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
