"""Liveness and readiness."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError

from probes.errors import AdvisorError, brief
from service.api.context import ctx, version
from service.api.routes import ApiBlueprint, Reply

bp = ApiBlueprint("health", __name__, tag="health")


class Health(BaseModel):
    status: str = "ok"
    version: str


class Ready(BaseModel):
    ready: bool
    database: str = Field(description="'ok', or why the job store is unreachable.")
    workers_seen: int = Field(description="Workers that reported within `within_s`.")
    within_s: float


@bp.op("/v1/health", "GET", "Liveness: the web process answers.", responses={200: Health})
def health() -> Health:
    return Health(version=version())


@bp.op(
    "/v1/ready",
    "GET",
    "Readiness: the job store is reachable and a worker was seen recently.",
    responses={200: Ready, 503: Ready},
)
def ready() -> Reply:
    c = ctx()
    within = c.settings.worker_seen_s
    try:
        c.store.ping()
        n = c.store.workers_seen(within)
        db = "ok"
    except AdvisorError as e:  # JobStoreDamaged
        n, db = 0, e.message
    except SQLAlchemyError as e:
        n, db = 0, c.store.damage or f"unreachable: {brief(getattr(e, 'orig', None) or e)}"
    ok = db == "ok" and n > 0
    return Reply(Ready(ready=ok, database=db, workers_seen=n, within_s=within), 200 if ok else 503)
