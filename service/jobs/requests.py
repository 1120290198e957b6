"""What a job (or a recommendation request) asks for: pydantic models shared by the
HTTP API, the worker and the OpenAPI document.

A model is named from the zoo or given as a spec; never as a file path, so a request
cannot make the server read its disk.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator
from pydantic.json_schema import SkipJsonSchema

from probes.calibrate.run import CALIBRATION_ROUNDS, MAX_CALIBRATION_ROUNDS
from probes.config import Settings
from probes.errors import AdvisorError, SpecError
from probes.export.checks import parse_targets
from probes.protocol import ExportTarget
from probes.spec import ModelSpec, analyzed, check_limits, load_spec_file, zoo_names
from recommender.questionnaire import to_profile

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]
FrameworkChoice = Literal["torch", "tensorflow", "both"]


class UnknownZooModel(AdvisorError):
    code = "not_found"


class BadField(AdvisorError):
    """A request field whose value only the library can judge (an export target, a
    size preset). ``path`` is the field's path in the request, e.g. ``targets``."""

    code = "bad_value"

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def zoo_spec(path: Path) -> ModelSpec:
    """A zoo spec, parsed once per file version (YAML parsing was most of a predict-mode
    request). ModelSpec is treated as read-only by every caller."""
    return _zoo_spec(path.resolve(), path.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _zoo_spec(path: Path, mtime_ns: int) -> ModelSpec:
    del mtime_ns  # part of the cache key only
    return load_spec_file(path)


class ModelRef(BaseModel):
    """A zoo model by ``model`` name, or a full ``spec``: exactly one of them."""

    # null is accepted but left out of the schema, so that "exactly one" is expressible
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": ["model"]}, {"required": ["spec"]}, {"required": ["imported"]}]
        },
    )
    model: Name | SkipJsonSchema[None] = Field(
        default=None, description="Zoo model name (GET /v1/models)."
    )
    spec: ModelSpec | SkipJsonSchema[None] = Field(
        default=None, description="A model spec (docs/spec.md)."
    )
    imported: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | SkipJsonSchema[None] = Field(
        default=None, description="Id of an uploaded model (POST /v1/imports)."
    )
    size: Name | SkipJsonSchema[None] = Field(
        default=None, description="Input-size preset, e.g. 'small'."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelRef:
        if sum(x is not None for x in (self.model, self.spec, self.imported)) != 1:
            raise ValueError("give exactly one of 'model' (a zoo name), 'spec' or 'imported'")
        if self.spec is not None and self.spec.weights is not None:
            # a path on this server: never read a file named by a request
            raise ValueError("a spec sent to the API cannot name a weights file")
        return self

    def resolve(self, settings: Settings, batch: int = 1) -> ModelSpec:
        """The spec, resized and checked (shape inference and size limits)."""
        if self.spec is not None:
            spec = self.spec
        elif self.imported is not None:
            found = sorted((settings.data_dir / "imports" / self.imported).glob("*.yaml"))
            if not found:
                raise UnknownZooModel(f"no uploaded model '{self.imported}' (POST /v1/imports)")
            spec = load_spec_file(found[0])
        else:
            assert self.model is not None
            if self.model not in zoo_names(settings.zoo_dir):
                raise UnknownZooModel(f"no zoo model '{self.model}' (see GET /v1/models)")
            spec = zoo_spec(settings.zoo_dir / f"{self.model}.yaml")
        try:
            spec = spec.resized(self.size)
        except SpecError as e:
            raise BadField(e.message, path="size") from None
        check_limits(analyzed(spec)[1], batch, settings.limits)  # analysed once per spec
        return spec

    def preflight(self, settings: Settings) -> None:
        """Everything the worker will check before it runs the job, checked now, so a
        request that can only fail is refused (422) instead of queued."""
        self.resolve(settings)


class ProbeJob(ModelRef):
    kind: Literal["probe"]
    framework: FrameworkChoice = "both"
    workloads: list[Literal["infer", "train", "cold"]] = Field(
        default=["infer"], min_length=1, max_length=3
    )
    batches: list[Annotated[int, Field(ge=1, le=1024)]] = Field(
        default=[1], min_length=1, max_length=4
    )
    min_time_s: float = Field(default=0.5, ge=0.05, le=30)
    timeout_s: float = Field(default=300, gt=0, le=3600, description="Per probe.")
    rounds: int = Field(default=3, ge=1, le=10, description="Paired rounds (torch, TF, …).")

    def preflight(self, settings: Settings) -> None:
        self.resolve(settings, max(self.batches))


class TuneJob(ModelRef):
    kind: Literal["tune"]
    framework: FrameworkChoice = "both"
    trials: int = Field(default=8, ge=1, le=200, description="Probe-running trials each.")
    objective: Literal["latency", "throughput", "pareto"] = "latency"
    workload: Literal["infer", "train"] = "infer"
    batch: int = Field(default=1, ge=1, le=1024)
    min_time_s: float = Field(default=0.5, ge=0.05, le=30)

    def preflight(self, settings: Settings) -> None:
        self.resolve(settings, self.batch)


class DeployJob(ModelRef):
    kind: Literal["deploy"]
    framework: FrameworkChoice = "both"
    targets: str = Field(
        default="native,onnx,litert",
        pattern=r"^[a-z,]{1,100}$",
        description="'all' or a comma list of native, onnx, litert, aot, executorch, tfjs.",
    )
    batch: int = Field(default=1, ge=1, le=256)

    def export_targets(self) -> list[ExportTarget]:
        """The targets, parsed as ``fwadvisor deploy --targets`` parses them."""
        try:
            return parse_targets(self.targets)
        except ValueError as e:
            raise BadField(str(e), path="targets") from None

    def preflight(self, settings: Settings) -> None:
        self.export_targets()
        self.resolve(settings, self.batch)


class RecommendJob(ModelRef):
    kind: Literal["recommend"]
    answers: dict[str, Any] = Field(
        default_factory=dict, description="Questionnaire answers by question id."
    )
    mode: Literal["measure", "cached", "predict"] = "measure"
    trials: int = Field(default=6, ge=1, le=100, description="measure: tuning trials each.")

    def preflight(self, settings: Settings) -> None:
        profile = to_profile(self.answers)  # AnswerError: path answers.<question id>
        self.resolve(settings, profile.batch)  # measured at the answers' batch


class ZooJob(BaseModel):
    """Evaluate several zoo models (``fwadvisor zoo``); the report is the job's report."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["zoo"]
    models: list[Name] = Field(
        default_factory=list, max_length=64, description="Zoo names; empty: the whole zoo."
    )
    trials: int = Field(default=2, ge=1, le=50)
    profiles: list[Literal["mobile", "server-gpu", "research", "browser"]] = Field(
        default=["mobile", "server-gpu", "research", "browser"], min_length=1
    )
    size: Name | SkipJsonSchema[None] = Field(default="small", description="Size preset.")
    # the bounds sit on the float alone: on the union, pydantic applies them to null too
    # (a TypeError, i.e. a 500, for {"max_minutes": null})
    max_minutes: Annotated[float, Field(gt=0, le=24 * 60)] | SkipJsonSchema[None] = Field(
        default=None, description="Stop starting models after this many minutes."
    )

    def resolve(self, settings: Settings) -> list[ModelSpec]:
        known = zoo_names(settings.zoo_dir)
        unknown = [m for m in self.models if m not in known]
        if unknown:
            raise UnknownZooModel(f"no zoo model {', '.join(unknown)} (see GET /v1/models)")
        specs = [zoo_spec(settings.zoo_dir / f"{m}.yaml") for m in self.models or known]
        # as `fwadvisor zoo --size`: each model that has the preset gets it, the others
        # keep their default inputs; a preset that none of them has is a mistake
        if self.size not in (None, "default") and not any(self.size in s.sizes for s in specs):
            have = sorted({"default", *(k for s in specs for k in s.sizes)})
            raise BadField(
                f"no requested model has size '{self.size}' (they have: {', '.join(have)})",
                path="size",
            )
        return [s.resized(self.size) if self.size in s.sizes else s for s in specs]

    def preflight(self, settings: Settings) -> None:
        self.resolve(settings)


CalibrationConfig = Literal[
    "torch/eager",
    "torch/eager-t1",
    "torch/compile",
    "tensorflow/function",
    "tensorflow/function-t1",
    "tensorflow/xla",
]


class CalibrateJob(BaseModel):
    """Calibrate this machine for predict mode (``fwadvisor calibrate``): resumable."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["calibrate"]
    quick: bool = Field(default=True, description="Default settings, small grid (~1 min).")
    configs: list[CalibrationConfig] | SkipJsonSchema[None] = Field(
        default=None, description="Only these configurations (default: all of the grid)."
    )
    rounds: int = Field(
        default=CALIBRATION_ROUNDS,
        ge=1,
        le=MAX_CALIBRATION_ROUNDS,
        description="Measure every cell this many times, a round apart; each keeps the lowest.",
    )

    def preflight(self, settings: Settings) -> None:
        return None


JobRequest = Annotated[
    ProbeJob | TuneJob | DeployJob | RecommendJob | ZooJob | CalibrateJob,
    Field(discriminator="kind"),
]


class JobCreate(RootModel[JobRequest]):
    """POST /v1/jobs: one of the job kinds, chosen by ``kind``."""


class RecommendationRequest(ModelRef):
    """POST /v1/recommendations. predict and cached answer at once; measure makes a job."""

    answers: dict[str, Any] = Field(
        default_factory=dict, description="Questionnaire answers by question id."
    )
    mode: Literal["predict", "cached", "measure"] = "predict"
    trials: int = Field(default=6, ge=1, le=100, description="measure: tuning trials each.")

    def as_job(self) -> RecommendJob:
        return RecommendJob(kind="recommend", **self.model_dump(exclude_none=True))
