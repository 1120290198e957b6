"""The web page's instant answers (predict and cached modes), kept in the job store's
``answers`` table so that the history page lists them beside the jobs. Only the newest
``KEEP`` are kept; a measure-mode answer is a job and is kept as one."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import sqlalchemy as sa

from service.jobs.store import JobStore, answers

KEEP = 500


def record(store: JobStore, request: dict[str, Any], result_json: str) -> str:
    """Store one answer (the request as posted, the recommendation as JSON); its id."""
    answer_id = uuid.uuid4().hex
    row = {"id": answer_id, "created_at": time.time(), "request": json.dumps(request)}
    with store.engine.begin() as c:
        c.execute(answers.insert().values(**row, result=result_json))
        oldest_kept = (
            sa.select(answers.c.created_at)
            .order_by(answers.c.created_at.desc())
            .offset(KEEP - 1)
            .limit(1)
            .scalar_subquery()
        )
        c.execute(answers.delete().where(answers.c.created_at < oldest_kept))
    return answer_id


def recent(store: JobStore, limit: int) -> list[dict[str, Any]]:
    q = answers.select().order_by(answers.c.created_at.desc()).limit(limit)
    with store.engine.connect() as c:
        return [dict(r) for r in c.execute(q).mappings()]


def get(store: JobStore, answer_id: str) -> dict[str, Any] | None:
    with store.engine.connect() as c:
        row = c.execute(answers.select().where(answers.c.id == answer_id)).mappings().first()
    return dict(row) if row else None
