"""The OpenAPI 3.1 document, generated from the typed routes' pydantic models.

Written here rather than taken from a Flask-OpenAPI plug-in: the plug-ins own request
validation and their own 422 format, and ours must be RFC 9457 with field paths; the
generator itself is short because pydantic emits JSON Schema 2020-12, which is what
OpenAPI 3.1 uses.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.api.problems import PROBLEM_JSON, PROBLEMS, Problem
from service.api.routes import ApiBlueprint, Endpoint

JsonMode = Literal["validation", "serialization"]
_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def endpoints(app: Flask) -> list[Endpoint]:
    return [
        ep for bp in app.blueprints.values() if isinstance(bp, ApiBlueprint) for ep in bp.endpoints
    ]


def _models(eps: list[Endpoint]) -> list[tuple[type[BaseModel], JsonMode]]:
    seen: dict[tuple[type[BaseModel], JsonMode], None] = {(Problem, "serialization"): None}
    for ep in eps:
        for m in (ep.body, ep.query):
            if m is not None:
                seen[(m, "validation")] = None
        for r in ep.responses.values():
            if not isinstance(r, str):
                seen[(r, "serialization")] = None
    return list(seen)


def _query_params(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation(ep: Endpoint, refs: dict[Any, Any], queries: dict[Any, Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in _PARAM.findall(ep.rule)
    ]
    if ep.query is not None:
        params += _query_params(queries[ep.query])
    params += [
        {
            "name": h,
            "in": "header",
            "required": False,
            "description": d,
            "schema": {"type": "string"},
        }
        for h, d in ep.headers
    ]
    responses: dict[str, Any] = {}
    for status, r in ep.responses.items():
        content = (
            {r: {"schema": {"type": "string"}}}
            if isinstance(r, str)
            else {"application/json": {"schema": refs[(r, "serialization")]}}
        )
        responses[str(status)] = {
            "description": r if isinstance(r, str) else r.__name__,
            "content": content,
        }
    for status in ep.problems:
        titles = sorted({t for s, t in PROBLEMS.values() if s == status})
        responses[str(status)] = {
            "description": "; ".join(titles) or "error",
            "content": {PROBLEM_JSON: {"schema": refs[(Problem, "serialization")]}},
        }
    op: dict[str, Any] = {
        "operationId": ep.name,
        "summary": ep.summary,
        "tags": [ep.tag],
        "parameters": params,
        "responses": responses,
    }
    if ep.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(ep.body, "validation")]}},
        }
    if ep.secured:
        op["security"] = [{}, {"ApiKey": []}]  # required only when keys are configured
    return op


def document(app: Flask, version: str) -> dict[str, Any]:
    eps = endpoints(app)
    pairs = _models(eps)
    refs, defs = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = defs.get("$defs", {})
    queries = {
        m: schemas[refs[(m, "validation")]["$ref"].rsplit("/", 1)[-1]]
        for m, mode in pairs
        if mode == "validation" and any(ep.query is m for ep in eps)
    }
    paths: dict[str, dict[str, Any]] = {}
    for ep in eps:
        path = _PARAM.sub(r"{\1}", ep.rule)
        paths.setdefault(path, {})[ep.method.lower()] = _operation(ep, refs, queries)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "framework-advisor",
            "version": version,
            "description": "PyTorch or TensorFlow for your model and your constraints, "
            "answered from measurements. Errors are RFC 9457 problem+json.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }
