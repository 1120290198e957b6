"""RFC 9457 problem details: every error the API returns, and nothing else.

Clients get a type, a title, a status, a human detail and (for 422) the field paths;
never a stack trace. Unexpected exceptions are logged server-side with an incident id
that the response carries, so an operator can find the traceback.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Flask, Response, request
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from probes.errors import AdvisorError, SpecError

log = logging.getLogger("fwadvisor.api")
PROBLEM_JSON = "application/problem+json"

#: code -> (status, title); documented at /docs/problems
PROBLEMS: dict[str, tuple[int, str]] = {
    "malformed_json": (400, "The body is not valid JSON"),
    "bad_request": (400, "Bad request"),
    "unauthorized": (401, "A valid API key is required"),
    "forbidden": (403, "Forbidden"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "conflict": (409, "Conflict with the current state"),
    "idempotency_conflict": (409, "Idempotency-Key reused with a different request"),
    "body_too_large": (413, "The body is larger than the limit"),
    "uri_too_long": (414, "The request line is longer than the limit"),
    "unsupported_media_type": (415, "Unsupported content type"),
    "validation_failed": (422, "The request failed validation"),
    "spec_invalid": (422, "The model spec is invalid"),
    "rate_limited": (429, "Too many requests"),
    "headers_too_large": (431, "The request headers are larger than the limit"),
    "internal": (500, "Internal error"),
    "not_implemented": (501, "Not implemented by the server"),
    "unavailable": (503, "Not ready"),
}


class FieldError(BaseModel):
    path: str = Field(description="Where in the request, e.g. 'body.answers.latency_slo_ms'.")
    message: str
    code: str = Field(description="Machine-readable reason, e.g. 'missing', 'bad_answer'.")


class Problem(BaseModel):
    """application/problem+json (RFC 9457)."""

    type: str = Field(description="URI reference naming the problem type (see /docs/problems).")
    title: str
    status: int
    detail: str = ""
    instance: str | None = None
    code: str = Field(description="Stable machine-readable code.")
    errors: list[FieldError] | None = None


class ApiProblem(Exception):
    """Raised by handlers; rendered as problem+json by the app's error handler."""

    def __init__(
        self,
        code: str,
        detail: str = "",
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or code)
        self.code, self.detail, self.errors = code, detail, errors
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return PROBLEMS[self.code][0]


def problem_response(p: ApiProblem) -> Response:
    status, title = PROBLEMS[p.code]
    body = Problem(
        type=f"/docs/problems#{p.code}",
        title=title,
        status=status,
        detail=p.detail,
        instance=request.path if request else None,
        code=p.code,
        errors=p.errors,
    )
    resp = Response(body.model_dump_json(exclude_none=True), status, mimetype=PROBLEM_JSON)
    resp.headers.update(p.headers)
    return resp


def _loc(prefix: str, loc: tuple[Any, ...], data: Any, missing: bool) -> str:
    """The JSON path of an error. pydantic's ``loc`` also names the union member it
    tried (``constrained-float``, ``ModelSpec``, a discriminator's tag); those parts are
    not in the request, so the walk keeps only the keys and indexes that are, plus the
    name of a missing field."""
    out, node = prefix, data
    for i, part in enumerate(loc):
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out, node = f"{out}[{part}]", node[part]
        elif isinstance(node, dict) and part in node:
            out, node = f"{out}.{part}", node[part]
        elif missing and i == len(loc) - 1:
            out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def from_validation(e: ValidationError, prefix: str = "body", data: Any = None) -> ApiProblem:
    """A 422 whose errors carry JSON paths into ``data`` (the request as parsed).

    A value that fails every member of a union gets one error per member; the
    ``null`` member's "Input should be None" only adds noise beside the real one."""
    raw = e.errors(include_url=False)
    errors: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for err in raw:
        if err["type"] == "none_required" and len(raw) > 1:
            continue
        path = _loc(prefix, err["loc"], data, err["type"] == "missing")
        if (path, err["msg"]) in seen:
            continue
        seen.add((path, err["msg"]))
        errors.append(FieldError(path=path, message=err["msg"], code=err["type"]))
    detail = "; ".join(f"{x.path}: {x.message}" for x in errors[:5])
    return ApiProblem("validation_failed", detail, errors=errors)


def from_advisor(e: AdvisorError, prefix: str = "body") -> ApiProblem:
    """A library error as a 422 naming where it is (a spec node, an answer)."""
    code = e.code
    if isinstance(e, SpecError):
        where = f"{prefix}.spec" + (f".nodes[id={e.node}]" if e.node else "")
        return ApiProblem(
            "spec_invalid", e.message, errors=[FieldError(path=where, message=e.message, code=code)]
        )
    path = getattr(e, "path", None)
    where = f"{prefix}.{path}" if path else prefix
    return ApiProblem(
        "validation_failed",
        e.message,
        errors=[FieldError(path=where, message=e.message, code=code)],
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def install(app: Flask) -> None:
    """Every error, from a handler or from Werkzeug's routing, becomes problem+json."""

    @app.errorhandler(ApiProblem)
    def _api(e: ApiProblem) -> Response:
        return problem_response(e)

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException) -> Response:
        status = e.code or 500
        code = _HTTP_CODES.get(status, "bad_request" if status < 500 else "internal")
        detail = {
            404: f"nothing at {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"the body exceeds {app.config.get('MAX_CONTENT_LENGTH')} bytes",
        }.get(status, e.description or "")
        allowed = getattr(e, "valid_methods", None)
        headers = {"Allow": ", ".join(allowed)} if allowed else {}
        return problem_response(ApiProblem(code, detail, headers=headers))

    @app.errorhandler(SQLAlchemyError)
    def _database(e: SQLAlchemyError) -> Response:
        log.error("job store error on %s %s: %s", request.method, request.path, e)
        return problem_response(
            ApiProblem("unavailable", "the job store is unavailable; see GET /v1/ready")
        )

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Response:
        incident = uuid.uuid4().hex[:12]
        log.exception("incident %s on %s %s", incident, request.method, request.path)
        return problem_response(
            ApiProblem("internal", f"unexpected error; incident {incident} is in the server log")
        )
