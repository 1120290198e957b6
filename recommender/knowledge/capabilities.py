"""The deployment capability matrix (``data/deploy/capabilities.yaml``) and its merge
with the export probes.

Static cells are a prior: a route's level, tool, maturity and the public source it was
checked against. A cell without a source is refused at load time. When export probes
ran for the user's model, each cell also carries that evidence, and an artifact that
verified (or failed) for this model outranks the static claim.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from probes.config import REPO_DATA
from probes.errors import AdvisorError
from probes.export.checks import ExportCheck, ExportReport
from probes.protocol import FRAMEWORKS, ExportTarget, Framework
from recommender.knowledge.yaml_cache import load_yaml

Level = Literal["native", "conversion", "community", "none"]
Maturity = Literal["GA", "beta", "experimental", "deprecated", "archived", "unsupported"]
Verdict = Literal["verified", "failed", "static"]

TARGETS = (
    "server_python",
    "server_cpp",
    "serving",
    "android",
    "ios",
    "browser",
    "microcontroller",
    "tpu",
    "coreml",
    "java",
    "go",
    "rust",
    "csharp",
    "serverless",
)
DEFAULT_PATH = REPO_DATA / "deploy" / "capabilities.yaml"


class CapabilityError(AdvisorError):
    code = "capability_matrix_invalid"


def require_url(v: str) -> str:
    if not v.startswith(("https://", "http://")) or len(v) < 12:
        raise ValueError("must be an http(s) URL to the page the claim was checked against")
    return v


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str = Field(min_length=1)
    export: ExportTarget | None = Field(
        default=None, description="The export probe whose artifact this route runs."
    )
    status: Maturity
    source: str = Field(description="Public URL the claim was checked against.")
    checked: dt.date
    note: str = ""

    @field_validator("source")
    @classmethod
    def _url(cls, v: str) -> str:
        return require_url(v)


class Cell(Route):
    level: Level
    also: tuple[Route, ...] = ()


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    torch: Cell
    tensorflow: Cell

    def cell(self, framework: Framework) -> Cell:
        cell: Cell = getattr(self, framework)  # fields are named after the frameworks
        return cell


class CapabilityMatrix(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    checked: dt.date
    targets: dict[str, Target]

    @field_validator("targets")
    @classmethod
    def _all_targets(cls, v: dict[str, Target]) -> dict[str, Target]:
        missing = [t for t in TARGETS if t not in v]
        unknown = [t for t in v if t not in TARGETS]
        if missing or unknown:
            raise ValueError(f"targets missing {missing}, unknown {unknown}")
        return v


def _fill_checked(raw: dict[str, Any]) -> dict[str, Any]:
    """Cells inherit the file's ``checked`` date unless they give their own."""
    default = raw.get("checked")
    for target in (raw.get("targets") or {}).values():
        for fw in FRAMEWORKS:
            cell = target.get(fw) if isinstance(target, dict) else None
            if isinstance(cell, dict):
                for route in [cell, *(cell.get("also") or [])]:
                    if isinstance(route, dict):
                        route.setdefault("checked", default)
    return raw


def parse_matrix(raw: object, source: str = "<matrix>") -> CapabilityMatrix:
    if not isinstance(raw, dict):
        raise CapabilityError(f"{source}: expected a mapping at the top level")
    try:
        return CapabilityMatrix.model_validate(_fill_checked(raw))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CapabilityError(f"{source}: {where}: {first['msg']}") from None


def load_matrix(path: Path = DEFAULT_PATH) -> CapabilityMatrix:
    """The matrix in ``path``, parsed once per file version.

    The result is shared between callers (``recommender.knowledge.yaml_cache``): read it, never
    change it.
    """
    try:
        return load_yaml(path, parse_matrix)
    except (OSError, yaml.YAMLError) as e:
        raise CapabilityError(f"{path}: {e}") from None


class MergedCell(BaseModel):
    """One target x framework for one model: the static claim plus this model's evidence.

    ``route`` is the route that decides: the best-maturity route whose export verified,
    else the cell's primary route.
    """

    target: str
    title: str
    framework: Framework
    level: Level
    route: Route
    verdict: Verdict
    summary: str = Field(description="One line: what decides this cell.")
    evidence: list[ExportCheck] = Field(default_factory=list)


MATURITY_ORDER: dict[str, int] = {
    "GA": 0,
    "beta": 1,
    "experimental": 2,
    "deprecated": 3,
    "archived": 4,
    "unsupported": 5,
}


#: Routes that no verified artifact can revive: the artifact may run here, the route not.
DEAD = ("archived", "unsupported")


def _merge_cell(key: str, target: Target, fw: Framework, report: ExportReport | None) -> MergedCell:
    """Verified if a live route's export verified (the most mature such route decides);
    failed only if every live probe-able route was tried and failed; otherwise static.

    An archived or unsupported route is never verified by an artifact that ran in
    Python here: TensorFlow.NET loading a SavedModel is not shown to work because
    ``tf.saved_model.load`` worked."""
    cell = target.cell(fw)
    routes: list[Route] = [cell, *cell.also]
    probed = [(r, report.cell(fw, r.export)) for r in routes if r.export and report]
    # an export that ran out of time showed nothing either way: the matrix's level stands
    tried = [(r, c) for r, c in probed if c is not None and c.status in ("verified", "failed")]
    slow = sorted({c.target for _, c in probed if c is not None and c.status == "timeout"})
    evidence = list({c.target: c for _, c in tried}.values())
    live = [(r, c) for r, c in tried if r.status not in DEAD]
    ok = sorted(
        (r for r, c in live if c.status == "verified"), key=lambda r: MATURITY_ORDER[r.status]
    )
    n_live = sum(1 for r in routes if r.export and r.status not in DEAD)
    verdict: Verdict
    if cell.level != "none" and ok:
        route, verdict = ok[0], "verified"
        summary = f"{route.export} export verified for this model; route: {route.tool}"
    elif live and len(live) == n_live and not ok:
        route, verdict = cell, "failed"
        failures = "; ".join(f"{c.target}: {c.reason}" for _, c in live)
        summary = f"every probe-able route failed for this model ({failures})"
    else:
        route, verdict = cell, "static"
        failed = [c.target for c in evidence if c.status == "failed"]
        caveat = f"; {', '.join(failed)} export failed for this model" if failed else ""
        if slow:
            caveat += f"; {', '.join(slow)} export did not finish within its time limit"
        dead_ok = sorted({r.tool for r, c in tried if r.status in DEAD and c.status == "verified"})
        if dead_ok:
            caveat += f"; the artifact verified, but {', '.join(dead_ok)} is not a live route"
        summary = f"{cell.level}, {cell.status}: {cell.tool} (not verified here{caveat})"
    return MergedCell(
        target=key,
        title=target.title,
        framework=fw,
        level=cell.level,
        route=Route.model_validate(route.model_dump(include=set(Route.model_fields))),
        verdict=verdict,
        summary=summary,
        evidence=evidence,
    )


def merge(matrix: CapabilityMatrix, report: ExportReport | None) -> list[MergedCell]:
    """Every target x framework, with this model's export evidence merged in."""
    return [
        _merge_cell(key, target, fw, report)
        for key, target in matrix.targets.items()
        for fw in FRAMEWORKS
    ]
