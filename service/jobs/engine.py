"""The job store's engine: SQLite pragmas, lenient text, schema creation, and the
one error a damaged SQLite file gives (``JobStoreDamaged``)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from probes.errors import AdvisorError
from probes.store import is_damaged


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # SQLite stores whatever bytes it is given as TEXT; reading bytes that are not
    # UTF-8 must not fail the whole query (every job list would 500)
    dbapi_conn.text_factory = _lenient_text
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class JobStoreDamaged(AdvisorError):
    """The job store's file is not a database (any more). Unlike the results store it
    is not a cache (it holds the jobs and their results), so it is never replaced."""

    code = "job_store_damaged"


def _damaged(e: sa.exc.DBAPIError, url: str) -> JobStoreDamaged | None:
    orig = e.orig
    if not isinstance(orig, sqlite3.DatabaseError) or not is_damaged(orig):
        return None
    where = sa.engine.make_url(url).database or url
    return JobStoreDamaged(
        f"the job store {where} is damaged ({orig}); it holds the job history, so it is "
        "not replaced: restore it from a backup, or move it aside to start an empty one"
    )


def make_engine(url: str, meta: sa.MetaData) -> Engine:
    """An engine for ``url`` with ``meta``'s tables created (JobStoreDamaged if the
    SQLite file is not a database)."""
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    for attempt in range(5):
        try:
            meta.create_all(engine)
            break
        except sa.exc.DBAPIError as e:  # another process created a table meanwhile
            damage = _damaged(e, url)
            if damage is not None:
                raise damage from None
            if attempt == 4:
                raise
            time.sleep(0.1 * (attempt + 1))
    return engine
