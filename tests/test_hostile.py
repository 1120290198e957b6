"""Hostile and careless requests (issue 19): each once reached a 500, a wrong status, a
message that leaked internals, or a stored row that broke every later read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from service.api.context import ctx
from service.jobs.store import jobs
from tests.test_api import TINY_SPEC, make_app, problem

SURROGATE = '"\\ud800"'


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, predictor_cache: Path) -> Flask:
    data = tmp_path_factory.mktemp("hostile")
    (data / "predictor").symlink_to(predictor_cache, target_is_directory=True)
    return make_app(data, rate_limit_per_minute=0)


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _raw(client: FlaskClient, url: str, text: str) -> Any:
    return client.post(url, data=text, content_type="application/json")


def _job_count(app: Flask) -> int:
    with app.app_context():
        return len(ctx().store.recent(limit=200))


@pytest.mark.parametrize(
    ("url", "body", "path"),
    [
        ("/v1/recommendations", '{"model": "mlp", "answers": {"focus": %s}}', "body.answers.focus"),
        ("/v1/recommendations", '{"model": "mlp", "answers": {%s: 1}}', "body.answers (a key)"),
        ("/v1/jobs", '{"kind": "probe", "model": %s}', "body.model"),
        (
            "/v1/specs/validate",
            '{"spec": {"name": "x", "description": %s}}',
            "body.spec.description",
        ),
    ],
)
def test_a_lone_surrogate_is_a_422_naming_the_field(
    client: FlaskClient, app: Flask, url: str, body: str, path: str
) -> None:
    before = _job_count(app)
    got = problem(_raw(client, url, body % SURROGATE), 422, "validation_failed")
    assert got["errors"][0]["path"] == path and "surrogate" in got["detail"]
    assert _job_count(app) == before  # nothing stored


def test_a_spec_description_with_a_surrogate_is_never_stored(
    client: FlaskClient, app: Flask
) -> None:
    spec = json.dumps({**TINY_SPEC, "description": "x"}).replace('"x"', SURROGATE)
    before = _job_count(app)
    got = problem(
        _raw(client, "/v1/jobs", f'{{"kind": "probe", "spec": {spec}}}'), 422, "validation_failed"
    )
    assert got["errors"][0]["path"] == "body.spec.description"
    assert _job_count(app) == before
    assert client.get("/v1/jobs").status_code == 200


def _insert(app: Flask, **row: Any) -> None:
    base: dict[str, Any] = {
        "kind": "probe",
        "status": "queued",
        "request": "{}",
        "attempts": 0,
        "max_attempts": 2,
        "cancel_requested": False,
        "created_at": 1.0,
        "owner": "x",
        "request_hash": "h",
    }
    with app.app_context(), ctx().store.engine.begin() as c:
        c.execute(jobs.insert().values(**{**base, **row}))


def test_no_stored_row_can_break_a_read(tmp_path: Path) -> None:
    """Rows as a damaged or hand-edited store may hold them: each is listed (as a failed
    job that says why when it cannot be shown), and every read answers 200."""
    app = make_app(tmp_path)
    client = app.test_client()
    _insert(app, id="surrogate", request=json.dumps({"d": "\ud800"}))
    with app.app_context(), ctx().store.engine.begin() as c:  # bytes that are not UTF-8
        c.execute(sa.text("UPDATE jobs SET error = CAST(X'FF21' AS TEXT) WHERE id = 'surrogate'"))
    _insert(app, id="notjson", request="{not json", result="[1,")
    _insert(app, id="badstatus", status="exploded", created_at=2.0)
    _insert(app, id="badtime", created_at=float("inf"))
    listed = client.get("/v1/jobs?limit=50")
    assert listed.status_code == 200, listed.data
    by_id = {j["id"]: j for j in listed.json["jobs"]}  # type: ignore[index]
    assert set(by_id) == {"surrogate", "notjson", "badstatus", "badtime"}
    assert by_id["surrogate"]["request"] == {"d": "\\ud800"}  # shown escaped, not lost
    assert by_id["surrogate"]["error"] == "\\xff!"
    for bad in ("notjson", "badstatus", "badtime"):
        assert by_id[bad]["status"] == "failed" and "cannot be read" in by_id[bad]["error"]
    for job_id in by_id:
        assert client.get(f"/v1/jobs/{job_id}").status_code == 200
        assert client.get("/v1/jobs?status=queued").status_code == 200
    assert client.get("/v1/jobs/notjson/report").status_code == 200


def test_a_streamed_body_over_the_limit_is_413(app: Flask) -> None:
    """No Content-Length (chunked): the limit still holds, as a 413, not a 400."""
    big = b'{"model": "' + b"x" * 2_000_000 + b'"}'
    env = {"wsgi.input_terminated": True}
    r = app.test_client().post(
        "/v1/recommendations",
        input_stream=__import__("io").BytesIO(big),
        content_type="application/json",
        environ_base=env,
        headers={"Transfer-Encoding": "chunked"},
    )
    problem(r, 413, "body_too_large")


def test_node_count_is_checked_before_the_nodes_are(client: FlaskClient) -> None:
    nodes = [
        {"id": f"n{i}", "op": "relu", "inputs": ["x" if i == 0 else f"n{i - 1}"]}
        for i in range(10_000)
    ]
    spec = {**TINY_SPEC, "nodes": nodes, "outputs": ["n9999"]}
    got = problem(client.post("/v1/specs/validate", json={"spec": spec}), 422, "validation_failed")
    assert got["errors"][0]["path"] == "body.spec.nodes"
    assert "10000 nodes; the limit is 2000" in got["detail"]


def test_numbers_as_text_are_coerced_alike(client: FlaskClient) -> None:
    """ "8" is an integer for `batch`; so it is for `answers.batch_size`."""
    assert (
        client.post("/v1/jobs", json={"kind": "tune", "model": "mlp", "batch": "8"}).status_code
        == 201
    )
    r = client.post("/v1/recommendations", json={"model": "mlp", "answers": {"batch_size": "8"}})
    assert r.status_code == 200, r.data
    bad = client.post(
        "/v1/recommendations", json={"model": "mlp", "answers": {"batch_size": "eight"}}
    )
    assert problem(bad, 422, "validation_failed")["errors"][0]["path"] == "body.answers.batch_size"


def test_a_huge_integer_gets_a_clean_message(client: FlaskClient) -> None:
    got = problem(
        _raw(client, "/v1/recommendations", '{"trials": 1' + "0" * 5000 + "}"),
        400,
        "malformed_json",
    )
    assert "5001 digits" in got["detail"] and "sys." not in got["detail"]


SPEC_2001 = {
    **TINY_SPEC,
    "nodes": [
        {"id": f"n{i}", "op": "relu", "inputs": ["x" if i == 0 else f"n{i - 1}"]}
        for i in range(2001)
    ],
    "outputs": ["n2000"],
}
#: (method, url, content type, body, extra headers, expected status)
HOSTILE: list[tuple[str, str, str | None, bytes | None, dict[str, str], int]] = [
    ("POST", "/v1/jobs", "text/plain", b"{}", {}, 415),
    ("POST", "/v1/jobs", None, None, {}, 415),
    ("POST", "/v1/jobs", "application/json", b"", {}, 400),
    ("POST", "/v1/jobs", "application/json", b"null", {}, 422),
    ("POST", "/v1/jobs", "application/json", b'"kind"', {}, 422),
    ("POST", "/v1/jobs", "application/json", b"\xef\xbb\xbf{}", {}, 422),  # BOM skipped
    ("POST", "/v1/jobs", "application/json", b'{"kind": "probe", "model": "\xff"}', {}, 400),
    (
        "POST",
        "/v1/jobs",
        "application/json",
        b'{"kind": "probe", "model": "mlp"}',
        {"Idempotency-Key": "k" * 300},
        400,
    ),
    (
        "POST",
        "/v1/jobs",
        "application/json",
        b'{"kind": "probe", "model": "../../etc/passwd"}',
        {},
        422,
    ),
    (
        "POST",
        "/v1/jobs",
        "application/json",
        json.dumps({"kind": "probe", "spec": SPEC_2001}).encode(),
        {},
        422,
    ),
    (
        "POST",
        "/v1/jobs",
        "application/json; charset=latin-1",
        b'{"kind": "probe", "model": "mlp", "timeout_s": 1e999}',
        {},
        422,
    ),
    (
        "POST",
        "/v1/recommendations",
        "application/json",
        b'{"model": "mlp", "answers": {"latency_slo_ms": 1e999}}',
        {},
        422,
    ),
    (
        "POST",
        "/v1/recommendations",
        "application/json",
        b'{"model": "mlp", "answers": {"batch_size": [1]}}',
        {},
        422,
    ),
    (
        "POST",
        "/v1/recommendations",
        "application/json",
        b'{"model": "mlp", "answers": {"targets": "android"}}',
        {},
        422,
    ),
    (
        "POST",
        "/v1/recommendations",
        "application/json",
        b'{"model": "mlp", "__proto__": {}}',
        {},
        422,
    ),
    ("POST", "/v1/specs/validate", "application/json", b'{"spec": {"nodes": {"a": 1}}}', {}, 422),
    ("GET", "/v1/models/..%2f..%2fetc%2fpasswd", None, None, {}, 404),
    ("GET", "/v1/models/mlp?size=" + "s" * 5000, None, None, {}, 422),
    ("GET", "/v1/jobs/" + "a" * 10_000, None, None, {}, 404),
    ("GET", "/v1/jobs?limit=" + "9" * 40, None, None, {}, 422),
    ("GET", "/v1/jobs?limit=-1", None, None, {}, 422),
    ("GET", "/v1/jobs?status=%E2%98%83", None, None, {}, 422),
    ("GET", "/v1/jobs?status=%ED%A0%80", None, None, {}, 422),
    ("GET", "/v1/jobs?debug=1", None, None, {}, 422),
    ("DELETE", "/v1/jobs/nope", None, None, {}, 404),
    ("TRACE", "/v1/health", None, None, {}, 405),
    ("PUT", "/v1/jobs", "application/json", b"{}", {}, 405),
]


@pytest.mark.parametrize(
    ("method", "url", "ctype", "body", "headers", "status"),
    HOSTILE,
    ids=[f"{m} {u[:40]} {(b or b'')[:24]!r}" for m, u, _, b, _, _ in HOSTILE],
)
def test_hostile_requests(
    client: FlaskClient,
    method: str,
    url: str,
    ctype: str | None,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
) -> None:
    r = client.open(url, method=method, data=body, content_type=ctype, headers=headers)
    assert r.status_code == status, r.data[:400]
    assert r.mimetype == "application/problem+json"
    got = json.loads(r.data)
    assert got["status"] == status and "Traceback" not in r.get_data(as_text=True)
