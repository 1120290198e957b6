"""Job store and worker logic, in process: claiming, fencing, reaping, cancel, shutdown.

The job's work is replaced by a fake that reports progress; the real probes run in
test_durability.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from probes.runners.local import LIVE
from service.jobs.lease import WorkerStore
from service.jobs.worker import JobWorker, machine_lock
from service.settings import ServiceSettings
from tests.conftest import ZOO

REQ = {"kind": "probe", "model": "mlp"}


class Done(BaseModel):
    steps: int


@pytest.fixture()
def settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        data_dir=tmp_path, zoo_dir=ZOO, heartbeat_s=0.05, stale_after_s=0.3, poll_s=0.05
    )


@pytest.fixture()
def store(settings: ServiceSettings) -> WorkerStore:
    return WorkerStore(settings.job_db_url())


def queue(store: WorkerStore, max_attempts: int = 2, **kw: Any) -> str:
    job, new = store.create(
        "probe", REQ, owner="t", request_hash="h", max_attempts=max_attempts, **kw
    )
    assert new
    return str(job["id"])


def fake_execute(steps: int, pause: float = 0.0, fail: Exception | None = None) -> Any:
    def run(_req: Any, _settings: Any, say: Any) -> BaseModel:
        for i in range(steps):
            say(f"step {i + 1}/{steps}")
            time.sleep(pause)
        if fail is not None:
            raise fail
        return Done(steps=steps)

    return run


def messages(store: WorkerStore, job_id: str) -> list[str]:
    return [m for _, m in store.events(job_id)]


def test_claim_is_exclusive_and_oldest_first(store: WorkerStore) -> None:
    first, second = queue(store), queue(store)
    a = store.claim("w1")
    b = store.claim("w2")
    assert a is not None and b is not None and (a.job_id, b.job_id) == (first, second)
    assert store.claim("w3") is None
    assert a.number == 1 and store.get(first)["worker"] == "w1"  # type: ignore[index]


def test_fencing_rejects_a_stale_attempt(store: WorkerStore) -> None:
    jid = queue(store)
    a = store.claim("w1")
    assert a is not None
    time.sleep(0.05)
    assert store.reap(0.01) == [jid]  # w1 presumed dead: back to the queue
    b = store.claim("w2")
    assert b is not None and b.number == 2
    assert store.heartbeat(a) == (False, False)
    assert not store.progress(a, "late")
    assert not store.finish(a, "succeeded", result="{}")  # w1 cannot overwrite w2's run
    assert store.finish(b, "succeeded", result='{"ok": 1}')
    assert store.get(jid)["result"] == '{"ok": 1}'  # type: ignore[index]


def test_reap_fails_after_the_last_attempt(store: WorkerStore) -> None:
    jid = queue(store, max_attempts=1)
    assert store.claim("w1") is not None
    time.sleep(0.05)
    store.reap(0.01)
    row = store.get(jid)
    assert row is not None and row["status"] == "failed"
    assert "worker w1 lost: no heartbeat" in row["error"] and "attempt 1 of 1" in row["error"]


def test_idempotency_key(store: WorkerStore) -> None:
    a, new = store.create(
        "probe", REQ, owner="o", request_hash="h1", max_attempts=1, idempotency_key="k"
    )
    b, again = store.create(
        "probe", REQ, owner="o", request_hash="h1", max_attempts=1, idempotency_key="k"
    )
    assert new and not again and a["id"] == b["id"]
    c, other_owner = store.create(
        "probe", REQ, owner="p", request_hash="h1", max_attempts=1, idempotency_key="k"
    )
    assert other_owner and c["id"] != a["id"]  # keys are per client
    from service.jobs.store import IdempotencyConflict

    with pytest.raises(IdempotencyConflict):
        store.create(
            "probe", REQ, owner="o", request_hash="h2", max_attempts=1, idempotency_key="k"
        )


def test_progress_log_is_capped(store: WorkerStore) -> None:
    jid = queue(store)
    a = store.claim("w")
    assert a is not None
    for i in range(260):
        store.progress(a, f"line {i}")
    lines = messages(store, jid)
    assert len(lines) == 200 and lines[-1] == "line 259"


def test_worker_runs_a_job(
    settings: ServiceSettings, store: WorkerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.jobs.worker.execute", fake_execute(3))
    jid = queue(store)
    assert JobWorker(settings, store).run(max_jobs=1) == 1
    row = store.get(jid)
    assert row is not None and row["status"] == "succeeded" and row["result"] == '{"steps":3}'
    assert messages(store, jid)[-4:] == ["step 1/3", "step 2/3", "step 3/3", "succeeded"]
    assert store.workers_seen(60) == 0  # deregistered on exit


def test_worker_records_failures(
    settings: ServiceSettings, store: WorkerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.jobs.worker.execute", fake_execute(1, fail=KeyError("boom")))
    jid = queue(store)
    JobWorker(settings, store).run(max_jobs=1)
    row = store.get(jid)
    assert row is not None and row["status"] == "failed"
    assert row["error"].startswith("internal error: KeyError")


def test_cancel_while_running_kills_probes(
    settings: ServiceSettings, store: WorkerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    killed: list[int] = []

    def kill_all() -> int:
        killed.append(1)
        return 0

    monkeypatch.setattr(LIVE, "kill_all", kill_all)
    monkeypatch.setattr("service.jobs.worker.execute", fake_execute(100, pause=0.02))
    jid = queue(store)
    w = JobWorker(settings, store)
    t = threading.Thread(target=w.run, kwargs={"max_jobs": 1})
    t.start()
    while store.get(jid)["status"] != "running":  # type: ignore[index]
        time.sleep(0.01)
    after, applied = store.cancel(jid)
    assert applied and after is not None and after["status"] == "running"
    t.join(10)
    row = store.get(jid)
    assert row is not None and row["status"] == "cancelled" and killed
    assert "probes killed" in row["error"]
    assert store.cancel(jid) == (row, False)  # finished: the cancel does not apply


def test_shutdown_requeues_without_spending_an_attempt(
    settings: ServiceSettings, store: WorkerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.jobs.worker.execute", fake_execute(100, pause=0.02))
    jid = queue(store)
    w = JobWorker(settings, store)
    t = threading.Thread(target=w.run)
    t.start()
    while store.get(jid)["status"] != "running":  # type: ignore[index]
        time.sleep(0.01)
    w._on_signal(15, None)
    t.join(10)
    row = store.get(jid)
    assert row is not None and row["status"] == "queued" and row["attempts"] == 0
    assert any(m.startswith("requeued: worker") for m in messages(store, jid))


def test_one_job_at_a_time_per_machine(tmp_path: Path) -> None:
    lock = tmp_path / "probe.lock"
    with machine_lock(lock) as first:
        assert first
        # flock is per open file description: a second open, as another worker has
        with machine_lock(lock) as second:
            assert not second
    with machine_lock(lock) as again:
        assert again


def test_cancel_of_a_queued_job(store: WorkerStore) -> None:
    jid = queue(store)
    row, applied = store.cancel(jid)
    assert applied and row is not None and row["status"] == "cancelled"
    assert store.claim("w") is None


def test_cancel_does_not_apply_to_a_job_that_just_finished(store: WorkerStore) -> None:
    """The API reads the job running; the worker finishes it; then the cancel runs."""
    jid = queue(store)
    a = store.claim("w")
    assert a is not None and store.finish(a, "succeeded", result="{}")
    row, applied = store.cancel(jid)
    assert not applied and row is not None
    assert row["status"] == "succeeded" and not row["cancel_requested"]
    assert "cancel requested; stopping its probes" not in messages(store, jid)
    row, applied = store.cancel("no-such-job")
    assert row is None and not applied
