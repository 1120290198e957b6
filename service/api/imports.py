"""Uploads of ONNX and Keras files: ``POST /v1/imports?format=onnx`` with the raw file as
``application/octet-stream``. The import runs in a bounded child process (nothing in the
file is executed, docs/import.md); the result is cached by content and usable as
``{"imported": "<id>"}`` wherever a request takes a model."""

from __future__ import annotations

import hashlib
from typing import Literal

from flask import request
from pydantic import BaseModel, ConfigDict, Field

from probes.errors import ImportRefusedError, UnsupportedOpsError
from probes.importers.cache import cached_import
from probes.spec import ModelSpec, analyze, build_graph
from service.api.context import ctx
from service.api.problems import ApiProblem, FieldError
from service.api.routes import ApiBlueprint, Reply

bp = ApiBlueprint("imports", __name__, tag="models")


class ImportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["onnx", "keras"] = Field(description="What the body is.")
    name: str = Field(default="model", pattern=r"^[A-Za-z0-9_.-]{1,64}$")


class ImportedModel(BaseModel):
    id: str = Field(description="Content hash; send {'imported': id} as the model of a job.")
    name: str
    nodes: int
    params: int
    flops: int
    input_shapes: dict[str, list[int]]
    spec: ModelSpec = Field(description="The neutral spec (its weights stay on the server).")


def import_bytes(data: bytes, fmt: str, name: str) -> ImportedModel:
    """Import an uploaded file (cached by content); refusals become 422 problems."""
    settings = ctx().settings
    if not data:
        raise ApiProblem("bad_request", "the body is empty: send the model file")
    digest = hashlib.sha256(data).hexdigest()
    uploads = settings.data_dir / "uploads" / digest
    uploads.mkdir(parents=True, exist_ok=True)
    path = uploads / f"{name}.{fmt}"
    if not path.exists():
        path.write_bytes(data)
    try:
        res = cached_import(path, settings.data_dir / "imports")
    except UnsupportedOpsError as e:
        errors = [
            FieldError(path="body", message=f"{op} (node {node}) {why}".strip(), code="unsupported")
            for op, node, why in e.nodes
        ]
        raise ApiProblem("validation_failed", e.message, errors=errors) from None
    except ImportRefusedError as e:
        err = FieldError(path="body", message=e.message, code=e.code)
        raise ApiProblem("validation_failed", e.message, errors=[err]) from None
    a = analyze(build_graph(res.spec))
    return ImportedModel(
        id=res.spec_file.parent.name,
        name=res.spec.name,
        nodes=len(res.spec.nodes),
        params=a.params,
        flops=a.flops,
        input_shapes=a.input_shapes,
        spec=res.spec.model_copy(update={"weights": None}),
    )


@bp.op(
    "/v1/imports",
    "POST",
    "Upload a .onnx or .keras file (raw body); returns the imported spec and its id.",
    responses={201: ImportedModel},
    query=ImportQuery,
    problems=(400, 413, 415),
)
def upload(query: ImportQuery) -> Reply:
    request.max_content_length = ctx().settings.max_upload_bytes
    if request.mimetype != "application/octet-stream":
        found = request.mimetype or "none"
        raise ApiProblem("unsupported_media_type", f"send application/octet-stream ({found})")
    data = request.get_data(cache=False)  # 413 past max_upload_bytes
    return Reply(import_bytes(data, query.format, query.name), 201)
