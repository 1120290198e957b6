"""The job store: SQLAlchemy Core over SQLite (default) or PostgreSQL (by URL).

Every state change is one conditional UPDATE, so several web processes and workers
(on one machine or many) can share it: a job is claimed by the worker whose UPDATE
moved it from ``queued`` to ``running``, and a worker's later writes name the attempt
they belong to ("fencing"), so a worker that was presumed dead cannot overwrite the
retry's result.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from service.jobs.engine import JobStoreDamaged, make_engine

log = logging.getLogger("fwadvisor.jobs")

TERMINAL = ("succeeded", "failed", "cancelled")
MAX_EVENTS = 200  # per job; older progress lines are dropped

meta = sa.MetaData()
jobs = sa.Table(
    "jobs",
    meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("result", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("worker", sa.String(120)),
    sa.Column("heartbeat_at", sa.Float),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("idempotency_key", sa.String(200)),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("owner", "idempotency_key", name="jobs_idempotency"),
)
events = sa.Table(
    "job_events",
    meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(32), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)
#: the web page's instant (predict and cached) answers, for its history page
answers = sa.Table(
    "answers",
    meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=False),
)
workers = sa.Table(
    "workers",
    meta,
    sa.Column("id", sa.String(120), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("seen_at", sa.Float, nullable=False),
    sa.Column("job_id", sa.String(32)),
)
rate_hits = sa.Table(
    "rate_hits",
    meta,
    sa.Column("owner", sa.String(64), primary_key=True),
    sa.Column("window", sa.Integer, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request."""


@dataclass(frozen=True)
class Attempt:
    """A worker's claim on one attempt of a job: the fencing token of its writes."""

    job_id: str
    worker: str
    number: int


class JobStore:
    def __init__(self, url: str, *, tolerate_damage: bool = False) -> None:
        """``tolerate_damage`` (the web app): open it anyway, so /v1/ready can say what
        is wrong (503) instead of the server failing to start."""
        self.damage: str | None = None
        try:
            self.engine = make_engine(url, meta)
        except JobStoreDamaged as e:
            if not tolerate_damage:
                raise
            log.error("%s", e.message)
            self.damage = e.message
            self.engine = sa.create_engine(url, pool_pre_ping=True)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def ping(self) -> None:
        """Raises unless the jobs table can be read on a new connection. (``SELECT 1``
        reads no page, and a pooled SQLite connection answers from its cache, so both
        succeeded on a file that had become garbage.)"""
        path = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if path and path != ":memory:":  # WAL readers may never look at the main file
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
                head = f.read(16)
                if head and head != b"SQLite format 3\x00":
                    raise JobStoreDamaged(f"the job store {path} is damaged (not a database)")
        fresh = sa.create_engine(self.engine.url, poolclass=sa.pool.NullPool)
        try:
            with fresh.connect() as conn:
                conn.execute(sa.select(jobs.c.id).limit(1))
        finally:
            fresh.dispose()

    # -- creation and reads ------------------------------------------------------------
    def replay(self, owner: str, key: str, request_hash: str) -> dict[str, Any] | None:
        """The job that ``owner`` already created with Idempotency-Key ``key``, if any
        (IdempotencyConflict if that job's request differs)."""
        found = self._by_key(owner, key)
        return None if found is None else self._replay(found, request_hash)

    def create(
        self,
        kind: str,
        request: dict[str, Any],
        *,
        owner: str,
        request_hash: str,
        max_attempts: int,
        idempotency_key: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """(the job, whether it is new). A repeated Idempotency-Key returns the first
        job if the request is the same, else raises IdempotencyConflict."""
        if idempotency_key:
            found = self._by_key(owner, idempotency_key)
            if found is not None:
                return self._replay(found, request_hash), False
        job_id = uuid.uuid4().hex
        row: dict[str, Any] = {
            "id": job_id,
            "kind": kind,
            "status": "queued",
            "request": json.dumps(request),
            "attempts": 0,
            "max_attempts": max_attempts,
            "cancel_requested": False,
            "created_at": time.time(),
            "owner": owner,
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
        }
        try:
            with self._tx() as c:
                c.execute(jobs.insert().values(**row))
                self._event(c, job_id, "queued")
        except sa.exc.IntegrityError:
            found = self._by_key(owner, idempotency_key or "")
            if found is None:
                raise
            return self._replay(found, request_hash), False
        job = self.get(job_id)
        assert job is not None
        return job, True

    @staticmethod
    def _replay(found: dict[str, Any], request_hash: str) -> dict[str, Any]:
        if found["request_hash"] != request_hash:
            raise IdempotencyConflict(found["id"])
        return found

    def _by_key(self, owner: str, key: str) -> dict[str, Any] | None:
        q = jobs.select().where(jobs.c.owner == owner, jobs.c.idempotency_key == key)
        with self.engine.connect() as c:
            row = c.execute(q).mappings().first()
        return dict(row) if row else None

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            row = c.execute(jobs.select().where(jobs.c.id == job_id)).mappings().first()
        return dict(row) if row else None

    def recent(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        q = jobs.select().order_by(jobs.c.created_at.desc()).limit(limit)
        if status:
            q = q.where(jobs.c.status == status)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def events(self, job_id: str, limit: int = MAX_EVENTS) -> list[tuple[float, str]]:
        q = (
            sa.select(events.c.at, events.c.message)
            .where(events.c.job_id == job_id)
            .order_by(events.c.seq.desc())
            .limit(limit)
        )
        with self.engine.connect() as c:
            return [(r.at, r.message) for r in c.execute(q)][::-1]

    @staticmethod
    def _event(c: Connection, job_id: str, message: str) -> None:
        c.execute(events.insert().values(job_id=job_id, at=time.time(), message=message[:2000]))

    def _mine(self, a: Attempt) -> Any:
        return sa.and_(
            jobs.c.id == a.job_id,
            jobs.c.worker == a.worker,
            jobs.c.attempts == a.number,
            jobs.c.status == "running",
        )

    def reap(self, stale_after_s: float) -> list[str]:
        """Running jobs whose heartbeat stopped: retried while attempts remain, else
        failed, with the reason. Returns the ids touched."""
        now = time.time()
        with self.engine.connect() as c:
            lost = c.execute(
                jobs.select().where(
                    jobs.c.status == "running", jobs.c.heartbeat_at < now - stale_after_s
                )
            ).mappings()
            rows = [dict(r) for r in lost]
        touched = []
        for r in rows:
            silent = now - (r["heartbeat_at"] or now)
            why = f"worker {r['worker']} lost: no heartbeat for {silent:.0f} s"
            if r["cancel_requested"]:
                values = {"status": "cancelled", "error": why, "finished_at": now}
                note = f"cancelled ({why})"
            elif r["attempts"] < r["max_attempts"]:
                values = {"status": "queued", "worker": None}
                note = f"{why}; retrying (attempt {r['attempts'] + 1} of {r['max_attempts']})"
            else:
                values = {"status": "failed", "finished_at": now}
                values["error"] = f"{why} on attempt {r['attempts']} of {r['max_attempts']}"
                note = f"failed: {values['error']}"
            a = Attempt(r["id"], r["worker"], r["attempts"])
            with self._tx() as c:
                if c.execute(jobs.update().where(self._mine(a)).values(**values)).rowcount:
                    self._event(c, r["id"], note)
                    touched.append(r["id"])
        return touched

    # -- cancellation ------------------------------------------------------------------
    def cancel(self, job_id: str) -> tuple[dict[str, Any] | None, bool]:
        """(the job after, whether the cancel applied). Queued: cancelled now. Running:
        flagged; its worker kills the probes and marks it. Finished (even if it finished
        just now, after the caller read it): unchanged, and False (the caller answers
        409). Both branches are conditional UPDATEs, so no read-then-write race."""
        now = time.time()
        with self._tx() as c:
            done = c.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.status == "queued")
                .values(status="cancelled", finished_at=now, error="cancelled before it started")
            ).rowcount
            if done:
                self._event(c, job_id, "cancelled before it started")
            else:
                done = c.execute(
                    jobs.update()
                    .where(jobs.c.id == job_id, jobs.c.status == "running")
                    .values(cancel_requested=True)
                ).rowcount
                if done:
                    self._event(c, job_id, "cancel requested; stopping its probes")
        return self.get(job_id), bool(done)

    def workers_seen(self, within_s: float) -> int:
        q = sa.select(sa.func.count()).where(workers.c.seen_at >= time.time() - within_s)
        with self.engine.connect() as c:
            return int(c.execute(q).scalar_one())

    def hit(self, owner: str, window: int) -> int:
        """Count one more request by ``owner`` in ``window``; the count so far."""
        key = sa.and_(rate_hits.c.owner == owner, rate_hits.c.window == window)
        for _ in range(3):
            try:
                with self._tx() as c:
                    if not c.execute(
                        rate_hits.update().where(key).values(count=rate_hits.c.count + 1)
                    ).rowcount:
                        c.execute(rate_hits.insert().values(owner=owner, window=window, count=1))
                    c.execute(rate_hits.delete().where(rate_hits.c.window < window - 1))
                    return int(c.execute(sa.select(rate_hits.c.count).where(key)).scalar_one())
            except sa.exc.IntegrityError:  # a concurrent first hit: update instead
                continue
        raise RuntimeError("rate counter contention")
