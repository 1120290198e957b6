"""Results store: SQLite (stdlib) keyed by spec hash, workload, settings and environment.

A repeated question is answered from here unless the caller asks for a fresh run.
Only successful results are stored: a timeout or crash may be transient.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from probes.protocol import ProbeResult
from probes.spec import ModelSpec
from probes.spec.memo import spec_hash

log = logging.getLogger("fwadvisor.store")
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    spec_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    framework TEXT NOT NULL,
    workload TEXT NOT NULL,
    settings TEXT NOT NULL,
    env_key TEXT NOT NULL,
    created REAL NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_lookup ON results (framework, workload, env_key);
CREATE TABLE IF NOT EXISTS tuned (
    study TEXT PRIMARY KEY,
    spec_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    framework TEXT NOT NULL,
    workload TEXT NOT NULL,
    objective TEXT NOT NULL,
    env_key TEXT NOT NULL,
    features TEXT NOT NULL,
    params TEXT NOT NULL,
    value REAL,
    created REAL NOT NULL
);
"""


class TunedBest(BaseModel):
    """The best settings a study found, kept to warm-start studies of similar models."""

    study: str
    spec_hash: str
    model: str
    framework: str
    workload: str
    objective: str
    env_key: str
    features: dict[str, float]
    params: dict[str, object]
    value: float | None


def result_key(*parts: BaseModel | str | None) -> str:
    blob = json.dumps(
        [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class StoredResult(BaseModel):
    key: str
    spec_hash: str
    model: str
    framework: str
    workload: dict[str, object]
    settings: dict[str, object]
    env_key: str
    created: float
    result: ProbeResult


def _parsed(text: str) -> ProbeResult | None:
    """A stored result, or None if it no longer parses (stored by an older version whose
    result format changed): the store is a cache, so that row counts as missing."""
    try:
        return ProbeResult.model_validate_json(text)
    except ValidationError:
        return None


#: SQLite's result codes for a file that is damaged or not a database at all
_DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


def is_damaged(e: sqlite3.DatabaseError) -> bool:
    name = getattr(e, "sqlite_errorname", "") or ""
    if any(name == d or name.startswith(f"{d}_") for d in _DAMAGED):
        return True
    return "not a database" in str(e) or "malformed" in str(e)


class ResultStore:
    """A cache: a damaged file is moved aside (``<name>.damaged-<time>``) and a fresh one
    is started, with a warning; a row whose JSON does not parse is a miss."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._do(lambda db: db.executescript(SCHEMA))

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def _do(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` in a transaction; once more on a fresh file if this one is damaged."""
        try:
            with self._db() as db:
                return fn(db)
        except sqlite3.DatabaseError as e:
            if not is_damaged(e):
                raise
            self._quarantine(e)
        with self._db() as db:
            db.executescript(SCHEMA)
            return fn(db)

    def _quarantine(self, e: sqlite3.DatabaseError) -> None:
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm", "-journal"):
            src = Path(f"{self.path}{suffix}")
            with contextlib.suppress(FileNotFoundError):
                src.rename(f"{aside}{suffix}")
        log.warning(
            "warning: the results store %s is damaged (%s); moved it to %s and started an "
            "empty one (it is a cache: results are measured again)",
            self.path,
            e,
            aside.name,
        )

    def get(self, key: str, max_age_s: float | None = None) -> ProbeResult | None:
        """The stored result, or None; with ``max_age_s``, None when it is older."""
        row = self._do(
            lambda db: db.execute(
                "SELECT result, created FROM results WHERE key = ?", (key,)
            ).fetchone()
        )
        if row is None or (max_age_s is not None and time.time() - row[1] > max_age_s):
            return None
        return _parsed(row[0])

    def put(
        self,
        key: str,
        *,
        spec: ModelSpec | None,
        framework: str,
        workload: BaseModel,
        settings: BaseModel | None,
        env_key: str,
        result: ProbeResult,
    ) -> None:
        row = (
            key,
            spec_hash(spec) if spec else "-",
            spec.name if spec else "-",
            framework,
            workload.model_dump_json(),
            settings.model_dump_json() if settings else "{}",
            env_key,
            time.time(),
            result.model_dump_json(),
        )
        self._do(
            lambda db: db.execute("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?)", row)
        )

    def query(
        self, *, framework: str | None = None, kind: str | None = None, env_key: str | None = None
    ) -> list[StoredResult]:
        """Stored results, newest first (used by tuning warm starts and the predictor)."""
        sql, args = "SELECT * FROM results WHERE 1=1", []
        for col, val in (("framework", framework), ("env_key", env_key)):
            if val is not None:
                sql += f" AND {col} = ?"
                args.append(val)
        if kind is not None:
            sql += " AND json_extract(workload, '$.kind') = ?"
            args.append(kind)
        rows = self._do(lambda db: db.execute(sql + " ORDER BY created DESC", args).fetchall())
        out = []
        for r in rows:
            try:
                out.append(
                    StoredResult(
                        key=r[0],
                        spec_hash=r[1],
                        model=r[2],
                        framework=r[3],
                        workload=json.loads(r[4]),
                        settings=json.loads(r[5]),
                        env_key=r[6],
                        created=r[7],
                        result=ProbeResult.model_validate_json(r[8]),
                    )
                )
            except (ValueError, TypeError):  # a damaged row: skipped, as a miss
                continue
        return out

    def put_tuned(self, best: TunedBest) -> None:
        row = (
            best.study,
            best.spec_hash,
            best.model,
            best.framework,
            best.workload,
            best.objective,
            best.env_key,
            json.dumps(best.features),
            json.dumps(best.params),
            best.value,
            time.time(),
        )
        self._do(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO tuned VALUES (?,?,?,?,?,?,?,?,?,?,?)", row
            )
        )

    def tuned(
        self, *, framework: str, workload: str, objective: str, env_key: str
    ) -> list[TunedBest]:
        rows = self._do(
            lambda db: db.execute(
                "SELECT study, spec_hash, model, framework, workload, objective, env_key, "
                "features, params, value FROM tuned WHERE framework = ? AND workload = ? "
                "AND objective = ? AND env_key = ?",
                (framework, workload, objective, env_key),
            ).fetchall()
        )
        keys = ("study", "spec_hash", "model", "framework", "workload", "objective", "env_key")
        return [
            TunedBest(
                **dict(zip(keys, r[:7], strict=True)),
                features=json.loads(r[7]),
                params=json.loads(r[8]),
                value=r[9],
            )
            for r in rows
        ]
