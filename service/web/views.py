"""The web questionnaire: pick a model (paste a spec, or upload a .onnx/.keras), answer,
get the answer.

Plain HTML forms, so predict and cached modes work without JavaScript; measure mode
redirects to the job's page, which a small script refreshes live (and a <noscript>
meta refresh does without JavaScript).
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, redirect, render_template, request
from pydantic import ValidationError
from werkzeug.datastructures import MultiDict

from probes.errors import AdvisorError
from probes.spec import zoo_names
from recommender.predictor.choose import choose
from recommender.questionnaire import Question, load_questionnaire
from recommender.recommend import Recommendation
from service.api.bodies import unencodable
from service.api.context import ctx
from service.api.imports import import_bytes
from service.api.jobs import find_job, submit, view
from service.api.problems import ApiProblem, FieldError, from_advisor, from_validation
from service.api.recommendations import answer
from service.jobs import answers
from service.jobs.requests import CalibrateJob, RecommendationRequest, zoo_spec
from service.web.charts import charts, deployment_rows, result_context
from service.web.history import CHOICES, FILTERS, compared, comparison, merged, options
from service.web.links import linkify
from service.web.prefill import PRESETS, Prefill, hidden_fields, preset

log = logging.getLogger("fwadvisor.web")
bp = Blueprint("web", __name__)
HISTORY_LIMIT = 200  # newest jobs the history page reads
bp.add_app_template_filter(linkify, "linkify")


@bp.app_template_filter("clock")
def clock(seconds: float) -> str:
    """``seconds`` as m:ss (h:mm:ss from an hour)."""
    s = round(seconds)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


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
    elif form.get("imported"):  # "Ask again" on an uploaded model keeps it
        body["imported"] = form["imported"]
    else:
        body["model"] = form.get("model") or None
    if form.get("size"):
        body["size"] = form["size"]
    if form.get("trials", "").strip():
        body["trials"] = _number(form["trials"].strip())
    where = unencodable(body, "form")
    if where is not None:
        raise ApiProblem("validation_failed", f"{where}: not valid Unicode text")
    try:
        limit = {"max_nodes": ctx().settings.limits.max_nodes}
        return RecommendationRequest.model_validate(body, context=limit)
    except ValidationError as e:
        raise from_validation(e, "form", body) from None


def _sizes(zoo: Path, models: list[str]) -> list[str]:
    """Every input-size preset a zoo model has (the form's size choices)."""
    found: set[str] = set()
    for m in models:
        with contextlib.suppress(AdvisorError, OSError, ValueError):
            found.update(zoo_spec(zoo / f"{m}.yaml").sizes)
    return sorted(found)


def _posted() -> Prefill:
    return Prefill(request.form, frozenset(request.form.getlist("_given")))


def _form(status: int = 200, prefill: Prefill | None = None, **extra: Any) -> Response:
    c = ctx()
    if prefill is None:
        empty = Prefill(MultiDict(), frozenset())
        prefill = _posted() if request.method == "POST" else empty
    models = zoo_names(c.settings.zoo_dir)
    html = render_template(
        "index.html",
        questions=load_questionnaire().questions,
        models=models,
        sizes=_sizes(c.settings.zoo_dir, models),
        presets=PRESETS,
        auth=bool(c.settings.api_keys),
        calibration=choose(c.settings).calibration,
        form=prefill.form,
        given=prefill.given,
        **extra,
    )
    return Response(html, status, mimetype="text/html")


@bp.get("/")
def index() -> Response:
    name = request.args.get("preset")
    if name is None:
        return _form()
    filled = preset(name)
    if filled is None:
        known = ", ".join(PRESETS)
        why = f"no preset '{name}' (there are: {known})"
        where = FieldError(path="query.preset", message=why, code="not_found")
        problem = ApiProblem("not_found", why, errors=[where])
        return _form(404, problem=problem)
    return _form(prefill=filled, preset_name=name)


@bp.post("/ask")
def ask_again() -> Response:
    """The questionnaire filled with an earlier request's answers (the hidden fields of
    a result's "Ask again" button)."""
    return _form(prefill=_posted())


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
    body = req.model_dump(mode="json", exclude_none=True)
    saved = _keep(body, rec)
    return _result_page(rec, body, saved)


def _keep(body: dict[str, Any], rec: Recommendation) -> str | None:
    """The answer stored for the history page (its id); None if the store would not
    take it: the answer is still shown."""
    try:
        return answers.record(ctx().store, body, rec.model_dump_json())
    except Exception as e:  # a full disk or a damaged store must not cost the answer
        log.warning("could not keep the answer for the history page: %s", e)
        return None


def _result_page(rec: Recommendation, body: dict[str, Any], saved: str | None) -> Response:
    html = render_template(
        "result.html",
        rec=rec,
        charts=charts(rec),
        deployment=deployment_rows(rec),
        ask=hidden_fields(body),
        saved=saved,
    )
    return Response(html, 200, mimetype="text/html")


@bp.get("/answers/<answer_id>")
def answer_page(answer_id: str) -> Response:
    """An instant answer kept for the history page: its own address, to share."""
    row = answers.get(ctx().store, answer_id)
    if row is None:
        raise ApiProblem("not_found", f"no answer '{answer_id}'")
    try:
        rec = Recommendation.model_validate_json(row["result"])
        body = json.loads(row["request"])
    except (ValueError, TypeError) as e:  # pydantic's ValidationError is a ValueError
        html = render_template(
            "unreadable.html", what=f"answer {answer_id[:8]}", why=type(e).__name__
        )
        return Response(html, 200, mimetype="text/html")
    return _result_page(rec, body if isinstance(body, dict) else {}, answer_id)


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
    ask = hidden_fields(job.request) if job.kind == "recommend" else []
    extra = result_context(job.kind, job.result)
    html = render_template("job.html", job=job, ask=ask, **extra)
    return Response(html, 200, mimetype="text/html")


@bp.get("/history")
def history_page() -> Response:
    """Past recommendations and jobs, filterable by query parameters (``model``,
    ``profile``, ``choice``, ``kind``, ``status``), with two picked (``compare``) side
    by side. A store that cannot be read gives the page with a note (503), never a 500."""
    wanted = {k: request.args.get(k, "") for k in FILTERS}
    status, broken = 200, None
    store = ctx().store
    try:
        rows = store.recent(None, HISTORY_LIMIT)
        instant = answers.recent(store, HISTORY_LIMIT)
    except Exception as e:  # a damaged store: say so on the page
        rows, instant, status, broken = [], [], 503, type(e).__name__
    entries = merged(rows, instant, HISTORY_LIMIT)
    pair = compared(entries, request.args.getlist("compare"))
    html = render_template(
        "history.html",
        entries=[e for e in entries if e.matches(wanted)],
        total=len(entries),
        options=options(entries),
        wanted=wanted,
        pair=pair,
        rows=comparison(pair),
        choices=CHOICES,
        broken=broken,
    )
    return Response(html, status, mimetype="text/html")
