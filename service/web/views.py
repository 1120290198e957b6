"""The web questionnaire: pick a model (paste a spec, or upload a .onnx/.keras), answer,
get the answer.

Plain HTML forms, so predict and cached modes work without JavaScript; measure mode
redirects to the job's page, which a small script refreshes live (and a <noscript>
meta refresh does without JavaScript).
"""

from __future__ import annotations

from typing import Any

import yaml
from flask import Blueprint, Response, redirect, render_template, request
from pydantic import ValidationError
from werkzeug.datastructures import MultiDict

from probes.errors import AdvisorError
from probes.spec import zoo_names
from recommender.predictor.choose import choose
from recommender.questionnaire import Question, load_questionnaire
from service.api.bodies import unencodable
from service.api.context import ctx
from service.api.imports import import_bytes
from service.api.jobs import find_job, submit, view
from service.api.problems import ApiProblem, from_advisor, from_validation
from service.api.recommendations import answer
from service.jobs.requests import CalibrateJob, RecommendationRequest
from service.web.charts import charts, deployment_rows, result_context

bp = Blueprint("web", __name__)


def _number(text: str) -> float | int | str:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text  # the question's check names it


def _answer(q: Question, form: MultiDict[str, str]) -> Any:
    if q.type == "multi":
        return form.getlist(q.id)
    raw = form.get(q.id, "").strip()
    if raw == "":
        return q.default
    if q.type == "number":
        return _number(raw)
    allowed = {str(o.value): o.value for o in q.options}
    return allowed.get(raw, raw)


def _request(form: MultiDict[str, str]) -> RecommendationRequest:
    qs = load_questionnaire()
    answers = {q.id: _answer(q, form) for q in qs.questions}
    body: dict[str, Any] = {"answers": answers, "mode": form.get("mode", "predict")}
    text = form.get("spec", "").strip()
    upload = request.files.get("model_file")
    if upload is not None and upload.filename:
        fmt = upload.filename.rsplit(".", 1)[-1].lower()
        if fmt not in ("onnx", "keras"):
            raise ApiProblem("validation_failed", "the model file must be a .onnx or .keras file")
        body["imported"] = import_bytes(upload.read(), fmt, "upload").id
    elif text:
        try:
            body["spec"] = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ApiProblem("malformed_json", f"the spec is not valid YAML or JSON: {e}") from e
    else:
        body["model"] = form.get("model") or None
    if form.get("size"):
        body["size"] = form["size"]
    where = unencodable(body, "form")
    if where is not None:
        raise ApiProblem("validation_failed", f"{where}: not valid Unicode text")
    try:
        limit = {"max_nodes": ctx().settings.limits.max_nodes}
        return RecommendationRequest.model_validate(body, context=limit)
    except ValidationError as e:
        raise from_validation(e, "form", body) from None


def _form(status: int = 200, **extra: Any) -> Response:
    c = ctx()
    html = render_template(
        "index.html",
        questions=load_questionnaire().questions,
        models=zoo_names(c.settings.zoo_dir),
        auth=bool(c.settings.api_keys),
        calibration=choose(c.settings).calibration,
        form=request.form if request.method == "POST" else MultiDict(),
        **extra,
    )
    return Response(html, status, mimetype="text/html")


@bp.get("/")
def index() -> Response:
    return _form()


@bp.post("/recommend")
def recommend_form() -> Response:
    request.max_content_length = ctx().settings.max_upload_bytes  # the form may carry a model
    try:
        req = _request(request.form)
        if req.mode == "measure":
            reply = submit(req.as_job(), request.form.get("api_key"))
            return redirect(reply.headers["Location"].replace("/v1/jobs/", "/jobs/"), 303)  # type: ignore[return-value]
        rec = answer(req)
    except AdvisorError as e:
        return _form(422, problem=from_advisor(e, "form"))
    except ApiProblem as e:
        return _form(e.status, problem=e)
    html = render_template(
        "result.html", rec=rec, charts=charts(rec), deployment=deployment_rows(rec)
    )
    return Response(html, 200, mimetype="text/html")


@bp.post("/calibrate")
def calibrate_form() -> Response:
    """Queue a quick calibration of this machine (predict mode's per-operator model)."""
    try:
        reply = submit(CalibrateJob(kind="calibrate", quick=True), request.form.get("api_key"))
    except ApiProblem as e:
        return _form(e.status, problem=e)
    return redirect(reply.headers["Location"].replace("/v1/jobs/", "/jobs/"), 303)  # type: ignore[return-value]


@bp.get("/jobs/<job_id>")
def job_page(job_id: str) -> Response:
    job = view(find_job(job_id), lines=50)  # the heartbeat rule, as GET /v1/jobs/{id}
    html = render_template("job.html", job=job, **result_context(job.kind, job.result))
    return Response(html, 200, mimetype="text/html")
