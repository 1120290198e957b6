"""Fault suite (issue 19, slow): the job worker killed at several points of a tune job,
through the real server. Every fault must end with nothing lost (the job succeeds),
nothing stuck (no RUNNING trial left) and a reason on every failure."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.test_durability import Server, _children, _post, _until


def _trials(data: Path) -> list[optuna.trial.FrozenTrial]:
    url = f"sqlite:///{data.resolve()}/optuna.sqlite3"
    if not (data / "optuna.sqlite3").exists():
        return []
    storage = optuna.storages.RDBStorage(url)
    return [
        t
        for s in optuna.get_all_study_summaries(storage)
        for t in optuna.load_study(study_name=s.study_name, storage=storage).get_trials()
    ]


def _kill_worker(server: Server, jid: str, when: str, data: Path) -> None:
    def ready() -> dict[str, object] | None:
        j = server.job(jid)
        if j["status"] != "running" or not j["worker"]:
            return None
        pid = int(str(j["worker"]).split(":")[1])
        if when == "claimed":
            return j
        if when == "mid-trial" and any(t.state == TrialState.RUNNING for t in _trials(data)):
            return j if _children(pid) else None
        return None

    job = _until(f"the worker {when}", ready, 120)
    os.kill(int(str(job["worker"]).split(":")[1]), signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["claimed", "mid-trial"])
def test_a_tune_job_survives_its_worker_killed(tmp_path: Path, when: str) -> None:
    server = Server(tmp_path)
    server.start()
    try:
        body = {
            "kind": "tune",
            "model": "mlp",
            "size": "small",
            "trials": 2,
            "framework": "torch",
            "min_time_s": 0.1,
        }
        jid = _post(server.base + "/v1/jobs", body)["id"]
        _kill_worker(server, jid, when, tmp_path)
        done = _until(
            "the retry's end",
            lambda: (j := server.job(jid))["status"] in ("succeeded", "failed") and j,
            600,
        )
    finally:
        server.stop()
    trials = _trials(tmp_path)
    seen = [
        (t.number, t.state.name, t.user_attrs.get("source"), t.user_attrs.get("reason"))
        for t in trials
    ]
    assert done["status"] == "succeeded" and done["attempts"] == 2, (done, seen)
    assert not [t for t in trials if t.state == TrialState.RUNNING], seen
    assert all(t.user_attrs.get("reason") for t in trials if t.state == TrialState.FAIL), seen
    torch = done["result"]["frameworks"][0]
    assert torch["default"] is not None and torch["default"]["state"] == "COMPLETE", seen
