"""Background jobs: create (idempotently), read, list, cancel, and the HTML report."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from flask import Response, render_template, request
from pydantic import BaseModel, ConfigDict, Field

from service.api.context import ctx
from service.api.problems import ApiProblem
from service.api.routes import ApiBlueprint, Reply
from service.jobs.progress import JobProgress, parse
from service.jobs.requests import JobCreate, JobRequest
from service.jobs.store import IdempotencyConflict
from service.web.charts import result_context

log = logging.getLogger("fwadvisor.api")
bp = ApiBlueprint("jobs", __name__, tag="jobs")
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
IDEMPOTENCY = ("Idempotency-Key", "Repeat a creation safely: same key and body, same job.")
API_KEY = ("X-API-Key", "Required for job creation when the server has API keys.")


class ProgressLine(BaseModel):
    at: datetime
    message: str


class JobView(BaseModel):
    id: str
    kind: str
    status: Status
    request: dict[str, Any]
    result: dict[str, Any] | None = Field(
        default=None, description="The job's report (by kind), once it succeeded."
    )
    error: str | None = Field(default=None, description="Why it failed or was cancelled.")
    progress: list[ProgressLine] = Field(description="Latest progress lines, oldest first.")
    current: JobProgress | None = Field(
        default=None,
        description="The latest progress line as numbers: step, probes done of planned, "
        "elapsed and estimated time left (null before the first line).",
    )
    attempts: int
    max_attempts: int
    worker: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    links: dict[str, str]


class JobList(BaseModel):
    jobs: list[JobView]


class JobQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    limit: int = Field(default=20, ge=1, le=200)


def _time(t: float | None) -> datetime | None:
    return datetime.fromtimestamp(t, UTC) if t is not None else None


def _text(value: Any) -> Any:
    """``value`` with every string made encodable (a lone surrogate becomes its
    ``\\udXXX`` escape): whatever a row holds, it can be sent back."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_text(k): _text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def _links(job_id: str) -> dict[str, str]:
    return {
        "self": f"/v1/jobs/{job_id}",
        "report": f"/v1/jobs/{job_id}/report",
        "page": f"/jobs/{job_id}",
    }


def _current(row: dict[str, Any], events: list[tuple[float, str]]) -> JobProgress | None:
    """The last line as numbers; elapsed from the job's start (to now, or to its end),
    and the time left counted down since the line was written."""
    if not events:
        return None
    at, message = events[-1]
    now = row["finished_at"] or time.time()
    started = row["started_at"]
    cur = parse(_text(message), None if started is None else max(0.0, now - started))
    if cur.eta_s is not None and row["finished_at"] is None:
        cur.eta_s = max(0.0, cur.eta_s - max(0.0, now - at))
    return cur


def _view(row: dict[str, Any], lines: int) -> JobView:
    events = ctx().store.events(row["id"], lines)
    return JobView(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        request=_text(json.loads(row["request"])),
        result=_text(json.loads(row["result"])) if row["result"] else None,
        error=_text(row["error"]),
        progress=[
            ProgressLine(at=datetime.fromtimestamp(t, UTC), message=_text(m)) for t, m in events
        ],
        current=_current(row, events),
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        worker=_text(row["worker"]),
        cancel_requested=bool(row["cancel_requested"]),
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        started_at=_time(row["started_at"]),
        finished_at=_time(row["finished_at"]),
        heartbeat_at=_time(row["heartbeat_at"]),
        links=_links(row["id"]),
    )


def view(row: dict[str, Any], lines: int = 20) -> JobView:
    """The job as the API shows it. A row that cannot be shown (text that is not JSON,
    a status or time of the wrong type: a hand-edited or damaged store) is shown as a
    failed job that says so, never as a 500 for every reader."""
    try:
        job = _view(row, lines)
        job.model_dump_json()  # what the response will do
        return job
    except Exception as e:  # any damage: the row is still listed
        log.warning("job %r: unreadable row: %s", row.get("id"), e)
        why = type(e).__name__
    job_id = _text(str(row.get("id", "?")))
    return JobView(
        id=job_id,
        kind=_text(str(row.get("kind", "?"))),
        status="failed",
        request={},
        error=f"this job's stored row cannot be read ({why}); see the server log",
        progress=[],
        attempts=0,
        max_attempts=0,
        worker=None,
        cancel_requested=False,
        created_at=datetime.fromtimestamp(0, UTC),
        started_at=None,
        finished_at=None,
        heartbeat_at=None,
        links=_links(job_id),
    )


def submit(req: JobRequest, api_key: str | None = None) -> Reply:
    """Queue ``req`` (authenticated and rate limited): 201, or 200 for a replay.

    In order: who asks (401); a replay of their Idempotency-Key returns the stored job
    and spends no rate budget; a new job is counted (429), then checked as the worker
    would check it (422: model, spec, size limits, answers, export targets, zoo size),
    and queued."""
    c = ctx()
    owner = c.owner(api_key)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 200:
        raise ApiProblem("bad_request", "Idempotency-Key must be 1 to 200 characters")
    body = req.model_dump(mode="json", exclude_none=True)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    try:
        found = c.store.replay(owner, key, digest) if key is not None else None
        if found is not None:
            row, new = found, False
        else:
            c.admit(owner)
            req.preflight(c.settings)  # a request that can only fail fails now
            row, new = c.store.create(
                req.kind,
                body,
                owner=owner,
                request_hash=digest,
                max_attempts=c.settings.max_attempts,
                idempotency_key=key,
            )
    except IdempotencyConflict as e:
        raise ApiProblem(
            "idempotency_conflict",
            f"Idempotency-Key '{key}' already created job {e} with a different request",
        ) from None
    headers = {"Location": f"/v1/jobs/{row['id']}"}
    if not new:
        headers["Idempotent-Replayed"] = "true"
    return Reply(view(row), 201 if new else 200, headers)


@bp.op(
    "/v1/jobs",
    "POST",
    "Queue a probe, tune, deploy, recommend or zoo job; a worker runs it.",
    body=JobCreate,
    responses={201: JobView, 200: JobView},
    problems=(401, 409, 429),
    headers=(IDEMPOTENCY, API_KEY),
    secured=True,
)
def create_job(body: JobCreate) -> Reply:
    return submit(body.root)


@bp.op("/v1/jobs", "GET", "Recent jobs, newest first.", query=JobQuery, responses={200: JobList})
def list_jobs(query: JobQuery) -> JobList:
    c = ctx()
    c.store.reap(c.settings.stale_after_s)  # the heartbeat rule, as for one job
    rows = c.store.recent(query.status, query.limit)
    return JobList(jobs=[view(r, lines=1) for r in rows])


def _zoo_report(job: JobView) -> Path | None:
    """A finished zoo job's report, which its worker wrote under the data directory."""
    if job.kind != "zoo" or not job.result or not isinstance(job.result.get("report"), str):
        return None
    path = Path(job.result["report"]).resolve()
    root = ctx().settings.data_dir.resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def find_job(job_id: str) -> dict[str, Any]:
    """The job's row (404 if there is none), after applying the heartbeat rule."""
    c = ctx()
    c.store.reap(c.settings.stale_after_s)  # a job whose worker died says so now
    row = c.store.get(job_id)
    if row is None:
        raise ApiProblem("not_found", f"no job '{job_id}'")
    return row


@bp.op(
    "/v1/jobs/<job_id>",
    "GET",
    "A job's status, progress and result.",
    responses={200: JobView},
    problems=(404,),
)
def get_job(job_id: str) -> JobView:
    return view(find_job(job_id))


@bp.op(
    "/v1/jobs/<job_id>",
    "DELETE",
    "Cancel a job: a queued one at once; a running one has its probe processes killed.",
    responses={202: JobView, 200: JobView},
    problems=(401, 404, 409),
    headers=(API_KEY,),
    secured=True,
)
def cancel_job(job_id: str) -> Reply:
    ctx().owner()
    find_job(job_id)  # 404, and a job whose worker died is settled first
    after, applied = ctx().store.cancel(job_id)
    if after is None:
        raise ApiProblem("not_found", f"no job '{job_id}'")
    if not applied:  # it finished before the cancel, perhaps after we read it
        raise ApiProblem("conflict", f"job {job_id} already {after['status']}")
    return Reply(view(after), 200 if after["status"] == "cancelled" else 202)


@bp.op(
    "/v1/jobs/<job_id>/report",
    "GET",
    "A job's report as a self-contained HTML page.",
    responses={200: "text/html"},
    problems=(404,),
)
def job_report(job_id: str) -> Response:
    job = view(find_job(job_id), lines=200)
    zoo = _zoo_report(job)
    if zoo is not None:
        return Response(zoo.read_text(), 200, mimetype="text/html")
    html = render_template("report.html", job=job, **result_context(job.kind, job.result))
    return Response(html, 200, mimetype="text/html")
