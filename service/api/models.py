"""The model zoo, spec validation and the questionnaire."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from probes.errors import SpecError
from probes.spec import ModelSpec, SpecAnalysis, analyze, build_graph, check_limits, zoo_names
from recommender.questionnaire import Questionnaire, load_questionnaire
from service.api.context import ctx
from service.api.problems import ApiProblem, FieldError
from service.api.routes import ApiBlueprint
from service.jobs.requests import BadField, ModelRef, Name
from service.schemas import ModelList, ModelSummary

bp = ApiBlueprint("models", __name__, tag="models")


class ModelQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: Name | None = Field(default=None, description="Input-size preset.")
    batch: int = Field(default=1, ge=1, le=65536, description="For the activation estimate.")


class ModelDetail(BaseModel):
    name: str
    description: str
    task: str
    sizes: list[str]
    analysis: SpecAnalysis = Field(description="Per-node shapes, parameters and FLOPs.")


class SpecValidation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spec: ModelSpec
    batch: int = Field(default=1, ge=1, le=65536)


class SpecReport(BaseModel):
    valid: bool = True
    analysis: SpecAnalysis


def _summary(spec: ModelSpec, a: SpecAnalysis, name: str) -> ModelSummary:
    return ModelSummary(
        name=name,
        description=spec.description,
        task=spec.task,
        input_shapes=a.input_shapes,
        params=a.params,
        flops=a.flops,
        sizes=sorted(spec.sizes),
    )


@bp.op(
    "/v1/models",
    "GET",
    "The zoo: every model with its inputs, params and FLOPs.",
    responses={200: ModelList},
)
def list_models() -> ModelList:
    out = []
    for name in zoo_names(ctx().settings.zoo_dir):
        spec = ModelRef(model=name).resolve(ctx().settings)
        out.append(_summary(spec, analyze(build_graph(spec)), name))
    return ModelList(models=out)


@bp.op(
    "/v1/models/<name>",
    "GET",
    "One zoo model with its per-node table.",
    responses={200: ModelDetail},
    query=ModelQuery,
    problems=(404,),
)
def get_model(name: str, query: ModelQuery) -> ModelDetail:
    if name not in zoo_names(ctx().settings.zoo_dir):
        raise ApiProblem("not_found", f"no zoo model '{name}' (see GET /v1/models)")
    try:
        spec = ModelRef(model=name, size=query.size).resolve(ctx().settings, query.batch)
    except (BadField, SpecError) as e:  # no such size; over the limits at this batch
        where = "query.size" if isinstance(e, BadField) else "query.batch"
        err = FieldError(path=where, message=e.message, code=e.code)
        raise ApiProblem("validation_failed", e.message, errors=[err]) from None
    a = analyze(build_graph(spec))
    return ModelDetail(
        name=name,
        description=spec.description,
        task=spec.task,
        sizes=sorted(spec.sizes),
        analysis=a,
    )


@bp.op(
    "/v1/specs/validate",
    "POST",
    "Shape inference for a spec, or its errors by node.",
    responses={200: SpecReport},
    body=SpecValidation,
)
def validate_spec(body: SpecValidation) -> SpecReport:
    a = analyze(build_graph(body.spec))
    check_limits(a, body.batch, ctx().settings.limits)
    return SpecReport(analysis=a)


@bp.op(
    "/v1/questionnaire",
    "GET",
    "The requirements questionnaire (ids, types, options).",
    responses={200: Questionnaire},
)
def questionnaire() -> Questionnaire:
    return load_questionnaire()
