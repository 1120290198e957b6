"""Ecosystem priors (``data/knowledge/ecosystem.yaml``): scores for what probes cannot
measure, each with a source. A score without a source is refused at load time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from probes.config import REPO_DATA
from recommender.knowledge.capabilities import CapabilityError, require_url
from recommender.knowledge.yaml_cache import load_yaml

PATH = REPO_DATA / "knowledge" / "ecosystem.yaml"


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    score: float = Field(ge=0, le=1)
    source: str
    note: str

    @field_validator("source")
    @classmethod
    def _url(cls, v: str) -> str:
        return require_url(v)  # the same rule as the capability matrix


class Factor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    torch: Claim
    tensorflow: Claim


class Ecosystem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    checked: dt.date
    factors: dict[str, Factor]
    custom_ops: dict[str, Claim]

    def score(self, factor: str, framework: str) -> Claim:
        f = self.factors[factor]
        claim: Claim = getattr(f, framework)  # fields are named after the frameworks
        return claim


def load_ecosystem(path: Path = PATH) -> Ecosystem:
    """The priors in ``path``, parsed once per file version.

    The result is shared between callers (``recommender.knowledge.yaml_cache``): read it, never
    change it.
    """
    try:
        return load_yaml(path, _parse_ecosystem)
    except (OSError, yaml.YAMLError) as e:
        raise CapabilityError(f"{path}: {e}") from None


def _parse_ecosystem(raw: object, source: str) -> Ecosystem:
    try:
        return Ecosystem.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CapabilityError(f"{source}: {where}: {first['msg']}") from None
