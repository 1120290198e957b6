"""Typed routes: a Flask blueprint whose views declare their pydantic request and
response models, which also feed the OpenAPI document (``service.api.openapi``).

A view gets ``body`` (the validated JSON body) and ``query`` (the validated query
string) as keyword arguments, and returns a model (200), a ``Reply`` (any status and
headers) or a ready ``Response`` (HTML pages, reports).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, request
from pydantic import BaseModel, ValidationError

from probes.errors import AdvisorError
from service.api.bodies import parse_json, read_body
from service.api.context import ctx
from service.api.problems import ApiProblem, from_advisor, from_validation

View = Callable[..., Any]


@dataclass
class Reply:
    model: BaseModel
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    rule: str
    method: str
    name: str
    summary: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    responses: dict[int, type[BaseModel] | str]  # a str is a media type (HTML, ...)
    problems: tuple[int, ...]
    headers: tuple[tuple[str, str], ...]  # (name, description) of request headers
    secured: bool


def json_response(model: BaseModel, status: int = 200, **headers: str) -> Response:
    resp = Response(model.model_dump_json(), status, mimetype="application/json")
    resp.headers.update(headers)
    return resp


def parse_body(model: type[BaseModel]) -> BaseModel:
    if request.mimetype != "application/json":
        found = request.mimetype or "none"
        raise ApiProblem("unsupported_media_type", f"send application/json (found {found})")
    obj = parse_json(read_body())
    try:
        # the spec's node count is checked before its nodes are built (ModelSpec)
        return model.model_validate(obj, context={"max_nodes": ctx().settings.limits.max_nodes})
    except ValidationError as e:
        raise from_validation(e, "body", obj) from None


def parse_query(model: type[BaseModel]) -> BaseModel:
    args = request.args.to_dict()
    try:
        return model.model_validate(args)
    except ValidationError as e:
        raise from_validation(e, "query", args) from None


def _render(out: Any) -> Response:
    if isinstance(out, Response):
        return out
    if isinstance(out, Reply):
        return json_response(out.model, out.status, **out.headers)
    return json_response(out)


class ApiBlueprint(Blueprint):
    """A blueprint that records an ``Endpoint`` for each typed view."""

    def __init__(self, name: str, import_name: str, tag: str, **kw: Any) -> None:
        super().__init__(name, import_name, **kw)
        self.tag = tag
        self.endpoints: list[Endpoint] = []

    def op(
        self,
        rule: str,
        method: str,
        summary: str,
        *,
        responses: dict[int, type[BaseModel] | str],
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        problems: tuple[int, ...] = (),
        headers: tuple[tuple[str, str], ...] = (),
        secured: bool = False,
    ) -> Callable[[View], View]:
        def deco(fn: View) -> View:
            extra = (400, 413, 415, 422) if body else (422,) if query else ()
            self.endpoints.append(
                Endpoint(
                    rule=rule,
                    method=method,
                    name=fn.__name__,
                    summary=summary,
                    tag=self.tag,
                    body=body,
                    query=query,
                    responses=responses,
                    problems=tuple(sorted({*problems, *extra, 500})),
                    headers=headers,
                    secured=secured,
                )
            )

            @functools.wraps(fn)
            def view(**kwargs: Any) -> Response:
                if body is not None:
                    kwargs["body"] = parse_body(body)
                if query is not None:
                    kwargs["query"] = parse_query(query)
                try:
                    return _render(fn(**kwargs))
                except AdvisorError as e:
                    raise from_advisor(e) from None

            self.add_url_rule(rule, fn.__name__, view, methods=[method])
            return fn

        return deco
