"""Damaged stores (issue 19): the results store is a cache, so a damaged file is moved
aside and rebuilt with a warning; a damaged job store is a clear error, and the web
app's /v1/ready fails instead of the server failing to start."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from probes.store import ResultStore
from service.app import create_app
from service.cli.main import main
from service.jobs.engine import JobStoreDamaged
from service.jobs.store import JobStore
from service.settings import ServiceSettings
from tests.conftest import ZOO

GARBAGE = bytes(range(256)) * 64  # not a database


def _aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.damaged-*"))


def test_a_damaged_results_store_is_moved_aside_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "results.sqlite"
    path.write_bytes(GARBAGE)
    with caplog.at_level(logging.WARNING, "fwadvisor.store"):
        store = ResultStore(path)
    assert store.get("anything") is None and store.query() == []
    assert [p.read_bytes() for p in _aside(path)] == [GARBAGE]  # kept for a post-mortem
    assert "damaged" in caplog.text and "moved it to" in caplog.text


def test_damage_found_after_opening_is_handled_too(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    store = ResultStore(path)
    path.write_bytes(GARBAGE)  # damaged while in use
    assert store.get("k") is None and len(_aside(path)) == 1


def test_a_row_that_does_not_parse_is_a_miss(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "results.sqlite"
    ResultStore(path)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO results VALUES ('k','h','m','torch','{}','{}','e',1,'{not json')")
    store = ResultStore(path)
    assert store.get("k") is None and store.query() == []


@pytest.mark.parametrize("argv", [["recommend", "mlp", "--mode", "cached", "--json"]])
def test_the_cli_rebuilds_a_damaged_results_store(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FWADVISOR_DATA_DIR", str(tmp_path))
    (tmp_path / "results.sqlite").write_bytes(GARBAGE)
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["mode"] == "cached" and "Traceback" not in err
    assert len(_aside(tmp_path / "results.sqlite")) == 1


def test_a_damaged_job_store_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "jobs.sqlite").write_bytes(GARBAGE)
    url = ServiceSettings(data_dir=tmp_path).job_db_url()
    with pytest.raises(JobStoreDamaged, match=r"is damaged .* not replaced"):
        JobStore(url)
    assert (tmp_path / "jobs.sqlite").read_bytes() == GARBAGE  # never replaced
    monkeypatch.setenv("FWADVISOR_DATA_DIR", str(tmp_path))
    assert main(["worker", "--drain", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and json.loads(err)["error"]["code"] == "job_store_damaged"


@pytest.mark.parametrize("when", ["before start", "while serving"])
def test_ready_fails_on_a_damaged_job_store(tmp_path: Path, when: str) -> None:
    path = tmp_path / "jobs.sqlite"
    if when == "before start":
        path.write_bytes(GARBAGE)
    app = create_app(ServiceSettings(data_dir=tmp_path, zoo_dir=ZOO, worker_seen_s=86400))
    client = app.test_client()
    if when == "while serving":
        assert client.get("/v1/jobs").status_code == 200
        path.write_bytes(GARBAGE)
    ready = client.get("/v1/ready")
    assert ready.status_code == 503 and ready.json is not None
    assert ready.json["ready"] is False and ready.json["database"] != "ok"
    if when == "before start":  # (while serving, SQLite may still answer from its WAL)
        jobs = client.get("/v1/jobs")
        assert jobs.status_code == 503 and jobs.mimetype == "application/problem+json"
    assert client.get("/v1/health").status_code == 200  # alive, not ready


DISK_FULL = """
import json, resource, sys
sys.path.insert(0, {root!r})
from service.app import create_app
from service.settings import ServiceSettings
from tests.conftest import ZOO
app = create_app(ServiceSettings(data_dir={data!r}, zoo_dir=ZOO, rate_limit_per_minute=0))
client = app.test_client()
client.get("/v1/jobs")
# the disk is full from here on: no file of this process may grow past 256 KiB
resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.RLIM_INFINITY))
statuses = []
for i in range(120):
    body = {{"kind": "probe", "spec": {{"name": "m", "description": "x" * 8000,
        "inputs": [{{"name": "v", "shape": [4]}}],
        "nodes": [{{"id": "o", "op": "dense", "inputs": ["v"], "params": {{"units": 2}}}}],
        "outputs": ["o"]}}}}
    r = client.post("/v1/jobs", json=body)
    statuses.append((r.status_code, r.mimetype))
listed = client.get("/v1/jobs?limit=200")
print(json.dumps({{"posts": statuses, "list": listed.status_code,
                  "listed": len(listed.json["jobs"]) if listed.status_code == 200 else None}}))
"""


def test_a_full_disk_is_a_503_problem_and_loses_nothing_stored(tmp_path: Path) -> None:
    """A file-size limit stands in for a full disk (a tmpfs needs root): job creations
    that cannot be written are 503 problems, never 500s, and every job that was
    accepted (201) is still listed."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    script = DISK_FULL.format(root=str(ROOT), data=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    codes = [s for s, _ in got["posts"]]
    assert 201 in codes and 503 in codes, codes  # some fitted, then the disk was full
    assert all(s in (201, 503) for s in codes), codes
    assert all(m == "application/problem+json" for s, m in got["posts"] if s == 503)
    assert got["list"] == 200 and got["listed"] == codes.count(201)
