"""The HTTP API through Flask's test client: every endpoint and every error class."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.api.context import hash_key
from service.app import create_app
from service.settings import ServiceSettings
from tests.conftest import ZOO

PROBLEM = "application/problem+json"
TINY_SPEC: dict[str, Any] = {
    "name": "tiny",
    "inputs": [{"name": "x", "shape": [4]}],
    "nodes": [{"id": "fc", "op": "dense", "inputs": ["x"], "params": {"units": 3}}],
    "outputs": ["fc"],
}


def make_app(tmp: Path, **kw: Any) -> Flask:
    app = create_app(ServiceSettings(data_dir=tmp, zoo_dir=ZOO, **kw))
    app.testing = True
    return app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return make_app(tmp_path_factory.mktemp("api"))


@pytest.fixture()
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as c:
        yield c


def problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.data
    assert resp.mimetype == PROBLEM
    body: dict[str, Any] = resp.get_json(force=True)
    assert body["code"] == code and body["status"] == status and body["title"]
    assert "Traceback" not in resp.get_data(as_text=True)
    return body


def test_factory_honours_settings(tmp_path: Path) -> None:
    app = make_app(tmp_path, max_body_bytes=123)
    assert app.config["MAX_CONTENT_LENGTH"] == 123
    assert (tmp_path / "jobs.sqlite").exists()


def test_health_and_ready(client: FlaskClient) -> None:
    h = client.get("/v1/health")
    assert h.status_code == 200 and h.json is not None and h.json["status"] == "ok"
    r = client.get("/v1/ready")  # the store is fine, but no worker was ever seen
    assert r.status_code == 503 and r.json == {
        "ready": False,
        "database": "ok",
        "workers_seen": 0,
        "within_s": 60.0,
    }


def test_ready_with_a_recent_worker(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    from service.jobs.lease import WorkerStore

    WorkerStore(ServiceSettings(data_dir=tmp_path).job_db_url()).seen("w1", "h", 1, None)
    r = app.test_client().get("/v1/ready")
    assert r.status_code == 200 and r.json is not None and r.json["workers_seen"] == 1


def test_models_list_and_detail(client: FlaskClient) -> None:
    listed = client.get("/v1/models").json
    assert listed is not None
    names = [m["name"] for m in listed["models"]]
    assert "lenet5" in names and all(m["params"] > 0 for m in listed["models"])
    d = client.get("/v1/models/lenet5?size=small&batch=4").json
    assert d is not None and d["name"] == "lenet5"
    nodes = d["analysis"]["nodes"]
    assert nodes and sum(n["params"] for n in nodes) == d["analysis"]["params"]
    problem(client.get("/v1/models/nope"), 404, "not_found")
    bad = problem(client.get("/v1/models/lenet5?size=huge"), 422, "validation_failed")
    assert bad["errors"][0]["path"] == "query.size"
    bad = problem(client.get("/v1/models/lenet5?batch=0"), 422, "validation_failed")
    assert bad["errors"][0]["path"] == "query.batch"


def test_spec_validate(client: FlaskClient) -> None:
    ok = client.post("/v1/specs/validate", json={"spec": TINY_SPEC, "batch": 2})
    assert ok.status_code == 200 and ok.json is not None
    assert ok.json["analysis"]["params"] == 4 * 3 + 3
    broken = json.loads(json.dumps(TINY_SPEC))
    broken["nodes"].append({"id": "out", "op": "relu", "inputs": ["ghost"]})
    broken["outputs"] = ["out"]
    err = problem(client.post("/v1/specs/validate", json={"spec": broken}), 422, "spec_invalid")
    assert "node 'out'" in err["detail"] and err["errors"][0]["path"] == "body.spec.nodes[id=out]"
    shape = json.loads(json.dumps(TINY_SPEC))
    shape["nodes"][0]["op"] = "conv2d"
    shape["nodes"][0]["params"] = {"filters": 2, "kernel_size": 3}
    err = problem(client.post("/v1/specs/validate", json={"spec": shape}), 422, "spec_invalid")
    assert "fc" in err["detail"]
    typo = problem(
        client.post("/v1/specs/validate", json={"spec": {"name": 1}}), 422, "validation_failed"
    )
    assert {e["path"] for e in typo["errors"]} >= {"body.spec.name", "body.spec.inputs"}


def test_questionnaire(client: FlaskClient) -> None:
    q = client.get("/v1/questionnaire").json
    assert q is not None
    ids = {x["id"] for x in q["questions"]}
    assert {"targets", "latency_slo_ms", "memory_budget_mb"} <= ids


def test_error_classes(client: FlaskClient, app: Flask) -> None:
    problem(
        client.post("/v1/recommendations", data="{oops", content_type="application/json"),
        400,
        "malformed_json",
    )
    problem(
        client.post("/v1/recommendations", data="a=1", content_type="text/plain"),
        415,
        "unsupported_media_type",
    )
    big = b'{"model": "' + b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1) + b'"}'
    problem(
        client.post("/v1/jobs", data=big, content_type="application/json"), 413, "body_too_large"
    )
    problem(client.get("/v1/nothing-here"), 404, "not_found")
    r = problem(client.put("/v1/health"), 405, "method_not_allowed")
    assert r["detail"].startswith("PUT")
    v = problem(
        client.post("/v1/recommendations", json={"model": "lenet5", "extra": 1}),
        422,
        "validation_failed",
    )
    assert v["errors"][0]["path"] == "body.extra"
    both = problem(client.post("/v1/recommendations", json={}), 422, "validation_failed")
    assert "exactly one" in both["detail"]
    ans = problem(
        client.post("/v1/recommendations", json={"model": "lenet5", "answers": {"batch_size": 0}}),
        422,
        "validation_failed",
    )
    assert ans["errors"][0]["path"] == "body.answers.batch_size"
    path = problem(
        client.post("/v1/jobs", json={"kind": "probe", "model": "../../etc/passwd"}),
        422,
        "validation_failed",
    )
    assert "pattern" in path["detail"]


def test_odd_input_is_a_4xx_never_a_500(client: FlaskClient) -> None:
    """Inputs that once reached a 500: each must name what is wrong."""

    def raw(text: str) -> Any:
        return client.post("/v1/recommendations", data=text, content_type="application/json")

    def answers(**a: Any) -> Any:
        return client.post("/v1/recommendations", json={"model": "mlp", "answers": a})

    for bad_size in ("", "%C3%BC"):
        got = problem(client.get(f"/v1/models/mlp?size={bad_size}"), 422, "validation_failed")
        assert got["errors"][0]["path"] == "query.size"
    problem(raw('{"model": "mlp", "trials": 1' + "0" * 5000 + "}"), 400, "malformed_json")
    assert "deeply" in problem(raw("[" * 100_000), 400, "malformed_json")["detail"]
    nan = '{"model": "mlp", "answers": {"latency_slo_ms": NaN}}'
    assert "NaN" in problem(raw(nan), 400, "malformed_json")["detail"]
    huge_int = '{"model": "mlp", "answers": {"latency_slo_ms": 1' + "0" * 400 + "}}"
    for resp, qid in (
        (raw(huge_int), "latency_slo_ms"),
        (answers(batch_size=1e308), "batch_size"),
        (answers(batch_size=2.5), "batch_size"),
        (answers(memory_budget_mb=1e12), "memory_budget_mb"),
    ):
        assert problem(resp, 422, "validation_failed")["errors"][0]["path"] == f"body.answers.{qid}"
    # union members' names never leak into a path, and null's "should be None" is dropped
    spec = problem(
        client.post("/v1/recommendations", json={"spec": {"name": "x"}}), 422, "validation_failed"
    )
    assert {e["path"] for e in spec["errors"]} == {
        "body.spec.inputs",
        "body.spec.nodes",
        "body.spec.outputs",
    }
    probe = client.post("/v1/jobs", json={"kind": "probe", "model": "mlp", "batches": [0]})
    assert problem(probe, 422, "validation_failed")["errors"][0]["path"] == "body.batches[0]"
    ok = answers(batch_size=4.0)  # a whole float is a whole number
    assert ok.status_code == 200, ok.data


def test_internal_error_hides_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path)
    app.testing = False  # the error handler, not the test client's re-raise

    def boom() -> None:
        raise RuntimeError("secret internals /etc/shadow")

    monkeypatch.setattr("service.api.models.load_questionnaire", boom)
    r = app.test_client().get("/v1/questionnaire")
    body = problem(r, 500, "internal")
    assert "incident" in body["detail"] and "secret" not in r.get_data(as_text=True)


def test_predict_recommendation(client: FlaskClient) -> None:
    body = {
        "model": "lenet5",
        "answers": {"targets": ["android"], "latency_slo_ms": 50},
        "mode": "predict",
    }
    r = client.post("/v1/recommendations", json=body)
    assert r.status_code == 200, r.data
    rec = r.json
    assert rec is not None and rec["mode"] == "predict" and rec["model"] == "lenet5"
    assert rec["choice"] in ("torch", "tensorflow", "either", "neither")
    assert {c["criterion"] for c in rec["criteria"]} >= {"speed", "deployment"}
    spec_rec = client.post("/v1/recommendations", json={"spec": TINY_SPEC, "mode": "predict"})
    assert spec_rec.status_code == 200 and spec_rec.json is not None
    assert spec_rec.json["model"] == "tiny"


def test_cached_recommendation_without_measurements(client: FlaskClient) -> None:
    r = client.post("/v1/recommendations", json={"model": "mlp", "mode": "cached"})
    assert r.status_code == 200, r.data
    assert r.json is not None and r.json["mode"] == "cached"


def test_measure_recommendation_is_a_job(client: FlaskClient) -> None:
    body = {"model": "lenet5", "mode": "measure", "trials": 1, "size": "small"}
    r = client.post("/v1/recommendations", json=body, headers={"Idempotency-Key": "m-1"})
    assert r.status_code == 202 and r.json is not None
    job = r.json
    assert r.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["kind"] == "recommend"
    assert job["request"]["mode"] == "measure"
    again = client.post("/v1/recommendations", json=body, headers={"Idempotency-Key": "m-1"})
    assert again.status_code == 202 and again.json is not None and again.json["id"] == job["id"]
    assert again.headers["Idempotent-Replayed"] == "true"


def test_jobs_crud_and_idempotency(client: FlaskClient) -> None:
    body = {"kind": "tune", "model": "mlp", "trials": 2}
    created = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k-crud"})
    assert created.status_code == 201 and created.json is not None
    jid = created.json["id"]
    replay = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k-crud"})
    assert replay.status_code == 200 and replay.json is not None and replay.json["id"] == jid
    other = {**body, "trials": 3}
    problem(
        client.post("/v1/jobs", json=other, headers={"Idempotency-Key": "k-crud"}),
        409,
        "idempotency_conflict",
    )
    problem(client.post("/v1/jobs", json=body, headers={"Idempotency-Key": ""}), 400, "bad_request")
    got = client.get(f"/v1/jobs/{jid}").json
    assert (
        got is not None and got["status"] == "queued" and got["progress"][0]["message"] == "queued"
    )
    listed = client.get("/v1/jobs?status=queued&limit=200").json
    assert listed is not None and jid in [j["id"] for j in listed["jobs"]]
    problem(client.get("/v1/jobs?status=lost"), 422, "validation_failed")
    report = client.get(f"/v1/jobs/{jid}/report")
    assert report.status_code == 200 and report.mimetype == "text/html"
    assert jid[:8] in report.get_data(as_text=True)
    cancelled = client.delete(f"/v1/jobs/{jid}")
    assert cancelled.status_code == 200 and cancelled.json is not None
    assert cancelled.json["status"] == "cancelled"
    problem(client.delete(f"/v1/jobs/{jid}"), 409, "conflict")
    problem(client.get("/v1/jobs/does-not-exist"), 404, "not_found")
    problem(client.delete("/v1/jobs/does-not-exist"), 404, "not_found")
    problem(client.get("/v1/jobs/does-not-exist/report"), 404, "not_found")


def test_every_job_kind_is_accepted(client: FlaskClient) -> None:
    for body in (
        {"kind": "probe", "model": "mlp", "workloads": ["infer", "cold"], "batches": [1, 4]},
        {"kind": "tune", "spec": TINY_SPEC, "objective": "throughput"},
        {"kind": "deploy", "model": "lenet5", "targets": "onnx,litert"},
        {"kind": "recommend", "model": "mlp", "answers": {"targets": ["browser"]}},
        {"kind": "zoo", "models": ["mlp", "lenet5"], "trials": 1, "profiles": ["mobile"]},
        {"kind": "zoo", "models": ["mlp"], "max_minutes": None},  # a 500 once (schemathesis)
    ):
        r = client.post("/v1/jobs", json=body)
        assert r.status_code == 201, r.data
    problem(
        client.post("/v1/jobs", json={"kind": "zoo", "models": ["nope"]}), 422, "validation_failed"
    )
    problem(client.post("/v1/jobs", json={"kind": "sweep"}), 422, "validation_failed")
    bad_budget = client.post("/v1/jobs", json={"kind": "zoo", "max_minutes": 0})
    assert problem(bad_budget, 422, "validation_failed")["errors"][0]["path"] == "body.max_minutes"
    problem(
        client.post("/v1/jobs", json={"kind": "probe", "model": "nope"}), 422, "validation_failed"
    )


def test_api_keys_and_rate_limit(tmp_path: Path) -> None:
    key = "s3cret-key"
    app = make_app(tmp_path, api_keys=[hash_key(key)], rate_limit_per_minute=2)
    c = app.test_client()
    body = {"kind": "probe", "model": "mlp"}
    r = problem(c.post("/v1/jobs", json=body), 401, "unauthorized")
    assert "X-API-Key" in r["detail"]
    problem(c.post("/v1/jobs", json=body, headers={"X-API-Key": "wrong"}), 401, "unauthorized")
    ok = [c.post("/v1/jobs", json=body, headers={"X-API-Key": key}) for _ in range(2)]
    assert [x.status_code for x in ok] == [201, 201]
    limited = c.post("/v1/jobs", json=body, headers={"X-API-Key": key})
    problem(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    # reads stay open; cancelling needs the key
    jid = ok[0].get_json()["id"]
    assert c.get(f"/v1/jobs/{jid}").status_code == 200
    problem(c.delete(f"/v1/jobs/{jid}"), 401, "unauthorized")
    assert c.delete(f"/v1/jobs/{jid}", headers={"X-API-Key": key}).status_code == 200


def test_openapi_document(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").json
    assert doc is not None and doc["openapi"].startswith("3.1")
    paths = doc["paths"]
    for path, method in [
        ("/v1/health", "get"),
        ("/v1/ready", "get"),
        ("/v1/models", "get"),
        ("/v1/models/{name}", "get"),
        ("/v1/specs/validate", "post"),
        ("/v1/questionnaire", "get"),
        ("/v1/recommendations", "post"),
        ("/v1/jobs", "post"),
        ("/v1/jobs", "get"),
        ("/v1/jobs/{job_id}", "get"),
        ("/v1/jobs/{job_id}", "delete"),
        ("/v1/jobs/{job_id}/report", "get"),
    ]:
        op = paths[path][method]
        assert op["responses"]["500"]["content"].keys() == {PROBLEM}
    rec = paths["/v1/recommendations"]["post"]
    assert {"200", "202", "422", "413", "415", "429"} <= rec["responses"].keys()
    refs = json.dumps(doc)
    for name in ("Recommendation", "JobView", "Problem", "ModelSpec"):
        assert f"#/components/schemas/{name}" in refs and name in doc["components"]["schemas"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/v1/recommendations" in docs.get_data(as_text=True)
    glossary = client.get("/docs/problems").get_data(as_text=True)
    assert 'id="validation_failed"' in glossary


def test_zoo_job_report_is_the_workers_file(tmp_path: Path) -> None:
    from service.jobs.lease import WorkerStore

    app = make_app(tmp_path)
    c = app.test_client()
    store = WorkerStore(ServiceSettings(data_dir=tmp_path).job_db_url())
    reports = {}
    for name, where in (
        ("inside", tmp_path / "zoo" / "r.html"),
        ("outside", Path("/etc/hostname")),
    ):
        created = c.post(
            "/v1/jobs",
            json={
                "kind": "zoo",
                "models": ["mlp"],
                "trials": 1,
                "profiles": ["mobile" if name == "inside" else "browser"],
            },
        )
        assert created.status_code == 201
        attempt = store.claim("w")
        assert attempt is not None
        if name == "inside":
            where.parent.mkdir(parents=True)
            where.write_text("<html>the zoo report</html>")
        store.finish(attempt, "succeeded", result=json.dumps({"report": str(where), "run": {}}))
        reports[name] = c.get(f"/v1/jobs/{attempt.job_id}/report").get_data(as_text=True)
    assert reports["inside"] == "<html>the zoo report</html>"
    assert "Job " in reports["outside"] and "hostname" not in reports["outside"].split("<pre>")[0]


def _job_count(app: Flask) -> int:
    from service.api.context import EXTENSION

    return len(app.extensions[EXTENSION].store.recent(limit=1000))


def test_a_job_that_can_only_fail_is_refused_now(client: FlaskClient, app: Flask) -> None:
    """What the worker would reject is a 422 with the field's path, and no job."""
    before = _job_count(app)
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        (
            "/v1/jobs",
            {"kind": "recommend", "model": "mlp", "answers": {"batch_size": 0}},
            "validation_failed",
            "body.answers.batch_size",
        ),
        (
            "/v1/jobs",
            {"kind": "recommend", "model": "mlp", "answers": {"no_such_question": 1}},
            "validation_failed",
            "body.answers.no_such_question",
        ),
        (
            "/v1/recommendations",
            {"model": "mlp", "mode": "measure", "answers": {"latency_slo_ms": -5}},
            "validation_failed",
            "body.answers.latency_slo_ms",
        ),
        (
            "/v1/jobs",
            {"kind": "deploy", "model": "mlp", "targets": "onnx,bogus"},
            "validation_failed",
            "body.targets",
        ),
        (
            "/v1/jobs",
            {"kind": "zoo", "models": ["mlp", "lenet5"], "size": "huge"},
            "validation_failed",
            "body.size",
        ),
        # the size limits at the job's own batch, not at batch 1
        ("/v1/jobs", {"kind": "probe", "model": "vgg16", "batches": [1, 256]}, "spec_invalid", ""),
        ("/v1/jobs", {"kind": "tune", "model": "resnet50", "batch": 64}, "spec_invalid", ""),
    ]
    for url, body, code, path in cases:
        got = problem(client.post(url, json=body), 422, code)
        if path:
            assert got["errors"][0]["path"] == path, got
    assert (
        "bogus"
        in problem(
            client.post("/v1/jobs", json={"kind": "deploy", "model": "mlp", "targets": "bogus"}),
            422,
            "validation_failed",
        )["detail"]
    )
    assert _job_count(app) == before  # nothing was queued
    for ok in (
        {"kind": "deploy", "model": "mlp", "targets": "all"},
        {"kind": "zoo", "models": ["mlp"], "size": "default"},
        {"kind": "zoo", "models": ["mlp"], "size": None},
        {"kind": "recommend", "model": "mlp", "answers": {"batch_size": 8}},
    ):
        assert client.post("/v1/jobs", json=ok).status_code == 201, ok


def test_zoo_size_is_applied_where_a_model_has_it(tmp_path: Path) -> None:
    """As `fwadvisor zoo --size`: models without the preset keep their inputs."""
    import shutil

    import yaml

    from probes.config import Settings
    from service.jobs.requests import BadField, ZooJob

    shutil.copy(ZOO / "mlp.yaml", tmp_path / "mlp.yaml")
    plain = yaml.safe_load((ZOO / "lenet5.yaml").read_text())
    plain.pop("sizes", None)
    (tmp_path / "lenet5.yaml").write_text(yaml.safe_dump(plain))
    settings = Settings(zoo_dir=tmp_path, data_dir=tmp_path / "var")
    mlp, lenet = ZooJob(kind="zoo", models=["mlp", "lenet5"], size="small").resolve(settings)
    (as_is,) = ZooJob(kind="zoo", models=["lenet5"], size=None).resolve(settings)
    assert mlp.name == "mlp" and lenet.inputs == as_is.inputs
    with pytest.raises(BadField) as bad:
        ZooJob(kind="zoo", models=["lenet5"], size="small").resolve(settings)
    assert bad.value.path == "size" and "small" in bad.value.message


def test_an_idempotent_replay_spends_no_rate_budget(tmp_path: Path) -> None:
    app = make_app(tmp_path, rate_limit_per_minute=2)
    c = app.test_client()
    body = {"kind": "probe", "model": "mlp"}
    first = c.post("/v1/jobs", json=body, headers={"Idempotency-Key": "retry-me"})
    assert first.status_code == 201
    for _ in range(4):  # a client retrying (its connection dropped): never a 429
        again = c.post("/v1/jobs", json=body, headers={"Idempotency-Key": "retry-me"})
        assert again.status_code == 200 and again.json is not None
        assert again.json["id"] == first.get_json()["id"]
    measure = {"model": "mlp", "mode": "measure", "trials": 1}
    m1 = c.post("/v1/recommendations", json=measure, headers={"Idempotency-Key": "m"})
    assert m1.status_code == 202  # the second creation: the budget (2) is spent now
    m2 = c.post("/v1/recommendations", json=measure, headers={"Idempotency-Key": "m"})
    assert m2.status_code == 202 and m2.headers["Idempotent-Replayed"] == "true"
    problem(c.post("/v1/jobs", json=body, headers={"Idempotency-Key": "new"}), 429, "rate_limited")
    problem(c.post("/v1/jobs", json=body), 429, "rate_limited")
    # a reused key with another body is still a conflict, not a replay
    other = {**body, "batches": [2]}
    problem(
        c.post("/v1/jobs", json=other, headers={"Idempotency-Key": "retry-me"}),
        409,
        "idempotency_conflict",
    )


def test_cancel_of_a_job_that_finishes_meanwhile_is_409(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job finishes between the read and the cancel's UPDATE: 409, not 202."""
    from service.api.context import EXTENSION
    from service.jobs.lease import WorkerStore

    app = make_app(tmp_path)
    c = app.test_client()
    jid = c.post("/v1/jobs", json={"kind": "probe", "model": "mlp"}).get_json()["id"]
    worker = WorkerStore(ServiceSettings(data_dir=tmp_path).job_db_url())
    attempt = worker.claim("w")
    assert attempt is not None and attempt.job_id == jid
    store = app.extensions[EXTENSION].store
    cancel = store.cancel

    def finish_first(job_id: str) -> Any:
        assert worker.finish(attempt, "succeeded", result="{}")  # the worker wins the race
        return cancel(job_id)

    monkeypatch.setattr(store, "cancel", finish_first)
    late = problem(c.delete(f"/v1/jobs/{jid}"), 409, "conflict")
    assert "succeeded" in late["detail"]
    row = worker.get(jid)
    assert row is not None and row["status"] == "succeeded" and not row["cancel_requested"]


def test_every_read_of_a_job_applies_the_heartbeat_rule(tmp_path: Path) -> None:
    from service.jobs.lease import WorkerStore

    app = make_app(tmp_path, stale_after_s=0.2, max_attempts=1)
    c = app.test_client()
    worker = WorkerStore(ServiceSettings(data_dir=tmp_path).job_db_url())
    jid = c.post("/v1/jobs", json={"kind": "probe", "model": "mlp"}).get_json()["id"]
    assert worker.claim("dead-worker") is not None
    time.sleep(0.4)  # its worker died: no heartbeat
    listed = c.get("/v1/jobs").json
    assert listed is not None
    (job,) = [j for j in listed["jobs"] if j["id"] == jid]
    assert job["status"] == "failed" and "lost: no heartbeat" in job["error"]


def test_ready_is_503_when_the_worker_is_stale_or_the_database_is_gone(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from service.api.context import EXTENSION
    from service.jobs.lease import WorkerStore
    from service.jobs.store import workers

    app = make_app(tmp_path, worker_seen_s=5)
    c = app.test_client()
    store = WorkerStore(ServiceSettings(data_dir=tmp_path).job_db_url())
    store.seen("w1", "h", 1, None)
    assert c.get("/v1/ready").status_code == 200
    with store.engine.begin() as conn:  # its last heartbeat, a minute ago
        conn.execute(workers.update().values(seen_at=time.time() - 60))
    stale = c.get("/v1/ready")
    assert stale.status_code == 503 and stale.json == {
        "ready": False,
        "database": "ok",
        "workers_seen": 0,
        "within_s": 5.0,
    }
    store.seen("w1", "h", 1, None)
    assert c.get("/v1/ready").status_code == 200
    # the job store becomes unreachable (a path that cannot be opened)
    ctx_store = app.extensions[EXTENSION].store
    ctx_store.engine = sa.create_engine(f"sqlite:///{tmp_path}/missing/dir/jobs.sqlite")
    gone = c.get("/v1/ready")
    assert gone.status_code == 503 and gone.json is not None
    assert gone.json["ready"] is False and gone.json["workers_seen"] == 0
    assert gone.json["database"].startswith("unreachable: OperationalError")
    assert "missing" not in gone.get_data(as_text=True)  # no paths or traces to clients
