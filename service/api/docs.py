"""/openapi.json, the API docs page and the problem-type glossary."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template

from service.api.context import version
from service.api.openapi import document
from service.api.problems import PROBLEMS

bp = Blueprint("docs", __name__)


def _document() -> dict[str, Any]:
    cached: dict[str, Any] | None = current_app.config.get("OPENAPI")
    if cached is None:
        cached = document(current_app, version())
        current_app.config["OPENAPI"] = cached
    return cached


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(_document())


@bp.get("/docs")
def docs() -> str:
    return render_template("docs.html", doc=_document())


@bp.get("/docs/problems")
def problems() -> str:
    return render_template("problems.html", problems=PROBLEMS)
