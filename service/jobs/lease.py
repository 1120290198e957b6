"""The worker's side of the job store: claiming, heartbeats, progress, results, and
reaping jobs whose worker died. Every write names its ``Attempt`` (fencing)."""

from __future__ import annotations

import time

import sqlalchemy as sa

from service.jobs.store import MAX_EVENTS, TERMINAL, Attempt, JobStore, events, jobs, workers


class WorkerStore(JobStore):
    def claim(self, worker: str) -> Attempt | None:
        """The oldest queued job, now running on ``worker``; None if there is none."""
        with self.engine.connect() as c:
            ids = c.execute(
                sa.select(jobs.c.id)
                .where(jobs.c.status == "queued")
                .order_by(jobs.c.created_at)
                .limit(5)
            ).scalars()
            candidates = list(ids)
        now = time.time()
        for job_id in candidates:  # another worker may win a race: try the next
            with self._tx() as c:
                moved = c.execute(
                    jobs.update()
                    .where(jobs.c.id == job_id, jobs.c.status == "queued")
                    .values(
                        status="running",
                        worker=worker,
                        attempts=jobs.c.attempts + 1,
                        started_at=now,
                        heartbeat_at=now,
                    )
                ).rowcount
                if moved:
                    n = c.execute(
                        sa.select(jobs.c.attempts).where(jobs.c.id == job_id)
                    ).scalar_one()
                    self._event(c, job_id, f"started on {worker} (attempt {n})")
                    return Attempt(job_id, worker, int(n))
        return None

    def heartbeat(self, a: Attempt) -> tuple[bool, bool]:
        """(still ours, cancel requested). Not ours: the job was reaped or finished."""
        with self._tx() as c:
            ours = c.execute(jobs.update().where(self._mine(a)).values(heartbeat_at=time.time()))
            if not ours.rowcount:
                return False, False
            flag = c.execute(sa.select(jobs.c.cancel_requested).where(jobs.c.id == a.job_id))
            return True, bool(flag.scalar_one())

    def progress(self, a: Attempt, message: str) -> bool:
        """Record a progress line; False if the attempt is no longer ours."""
        with self._tx() as c:
            ours = c.execute(jobs.update().where(self._mine(a)).values(heartbeat_at=time.time()))
            if ours.rowcount:
                self._event(c, a.job_id, message)
                stale = (
                    sa.select(events.c.seq)
                    .where(events.c.job_id == a.job_id)
                    .order_by(events.c.seq.desc())
                    .offset(MAX_EVENTS)
                    .limit(1)
                )
                cut = c.execute(stale).scalar()
                if cut is not None:
                    c.execute(
                        events.delete().where(events.c.job_id == a.job_id, events.c.seq <= cut)
                    )
            return bool(ours.rowcount)

    def finish(
        self, a: Attempt, status: str, *, result: str | None = None, error: str | None = None
    ) -> bool:
        """Final state of this attempt; False (nothing written) if no longer ours."""
        assert status in TERMINAL
        with self._tx() as c:
            done = c.execute(
                jobs.update()
                .where(self._mine(a))
                .values(status=status, result=result, error=error, finished_at=time.time())
            ).rowcount
            if done:
                self._event(c, a.job_id, status + (f": {error}" if error else ""))
            return bool(done)

    def release(self, a: Attempt, why: str) -> bool:
        """Back to the queue without spending an attempt (the worker is shutting down)."""
        with self._tx() as c:
            done = c.execute(
                jobs.update()
                .where(self._mine(a))
                .values(status="queued", worker=None, attempts=jobs.c.attempts - 1)
            ).rowcount
            if done:
                self._event(c, a.job_id, f"requeued: {why}")
            return bool(done)

    def seen(self, worker: str, host: str, pid: int, job_id: str | None) -> None:
        now = time.time()
        with self._tx() as c:
            upd = workers.update().where(workers.c.id == worker)
            if not c.execute(upd.values(seen_at=now, job_id=job_id)).rowcount:
                c.execute(
                    workers.insert().values(
                        id=worker, host=host, pid=pid, started_at=now, seen_at=now, job_id=job_id
                    )
                )

    def gone(self, worker: str) -> None:
        with self._tx() as c:
            c.execute(workers.delete().where(workers.c.id == worker))
