"""The requirements questionnaire (``data/questionnaire.yaml``) and its mapping to a
``Profile``: normalised criterion weights plus hard constraints.

The mapping is deliberately simple and additive so it can be explained line by line
(docs/recommender.md): every answer adds to, or takes from, a criterion's raw weight, and
each raw weight is then divided by their sum.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from probes.config import REPO_DATA
from probes.errors import AdvisorError
from recommender.knowledge.yaml_cache import load_yaml

DATA = REPO_DATA
QUESTIONS_PATH = DATA / "questionnaire.yaml"

Criterion = Literal["speed", "memory", "deployment", "custom_ops", "ecosystem", "team"]
CRITERIA: tuple[Criterion, ...] = (
    "speed",
    "memory",
    "deployment",
    "custom_ops",
    "ecosystem",
    "team",
)
BASE_WEIGHTS: dict[Criterion, float] = {
    "speed": 3.0,
    "memory": 1.0,
    "deployment": 2.0,
    "custom_ops": 0.0,
    "ecosystem": 1.0,
    "team": 1.0,
}
#: questionnaire target -> capability-matrix targets it needs
TARGET_MAP: dict[str, tuple[str, ...]] = {
    "server_cpu": ("server_python",),
    "server_gpu": ("server_python", "serving"),
    "android": ("android",),
    "ios": ("ios",),
    "browser": ("browser",),
    "microcontroller": ("microcontroller",),
    "tpu": ("tpu",),
    "serverless": ("serverless",),
    "cpp": ("server_cpp",),
    "java": ("java",),
    "go": ("go",),
    "rust": ("rust",),
    "csharp": ("csharp",),
}


class AnswerError(AdvisorError):
    """An answer that does not fit its question. ``path`` is ``answers.<id>``."""

    code = "bad_answer"

    def __init__(self, message: str, *, question: str) -> None:
        super().__init__(f"answers.{question}: {message}")
        self.path = f"answers.{question}"

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "path": self.path}


def _num(v: float) -> str:
    # an int such as 10**400 fits no float, so "g" would overflow
    return f"{v:g}" if isinstance(v, float) or abs(v) < 1e300 else "a number too large to print"


def _from_text(text: str, qid: str) -> int | float:
    """A number written as text, coerced as pydantic coerces "8" for an int field."""
    t = text.strip()
    if len(t) > 100:
        raise AnswerError(f"expected a number, found text of {len(t)} characters", question=qid)
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        raise AnswerError(f"expected a number, found {text!r}", question=qid) from None


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    value: str | int
    label: str


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    text: str
    help: str
    type: Literal["multi", "single", "number", "scale"]
    default: Any
    options: tuple[Option, ...] = ()
    min: float | None = None
    max: float | None = None
    integer: bool = False
    zero_means: str | None = None

    def check(self, value: Any) -> Any:
        """The value, normalised; AnswerError naming the question if it does not fit."""
        allowed = [o.value for o in self.options]
        if self.type == "multi":
            if not isinstance(value, list):
                raise AnswerError(f"expected a list of {allowed}", question=self.id)
            bad = [v for v in value if v not in allowed]
            if bad:
                raise AnswerError(
                    f"unknown option(s) {bad}; choose from {allowed}", question=self.id
                )
            return list(dict.fromkeys(value))
        if self.type in ("single", "scale"):
            if value not in allowed or isinstance(value, bool):
                raise AnswerError(f"{value!r} is not one of {allowed}", question=self.id)
            return value
        return self.check_number(value)

    def check_number(self, value: Any) -> Any:
        if isinstance(value, str):  # "8", as pydantic's lax mode takes it for `batch`
            value = _from_text(value, self.id)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AnswerError(f"expected a number, found {value!r}", question=self.id)
        if isinstance(value, float) and not math.isfinite(value):
            raise AnswerError(f"expected a finite number, found {value}", question=self.id)
        if self.integer and value != int(value):
            raise AnswerError(f"expected a whole number, found {value}", question=self.id)
        if self.min is not None and value < self.min:
            raise AnswerError(f"must be >= {self.min:g}, found {_num(value)}", question=self.id)
        if self.max is not None and value > self.max:
            raise AnswerError(f"must be <= {self.max:g}, found {_num(value)}", question=self.id)
        return int(value) if self.integer else value


class Questionnaire(BaseModel):
    model_config = ConfigDict(frozen=True)
    questions: tuple[Question, ...]

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(qid)

    def resolve(self, answers: dict[str, Any]) -> dict[str, Any]:
        """Every question answered: the given answers checked, defaults for the rest."""
        known = {q.id for q in self.questions}
        unknown = sorted(set(answers) - known)
        if unknown:
            raise AnswerError(f"unknown question; known: {sorted(known)}", question=unknown[0])
        return {q.id: q.check(answers.get(q.id, q.default)) for q in self.questions}


def load_questionnaire(path: Path = QUESTIONS_PATH) -> Questionnaire:
    """The questions in ``path``, parsed once per file version.

    The result is shared between callers (``recommender.knowledge.yaml_cache``): read it, never
    change it. ``resolve`` returns fresh values, never a question's own ``default``.
    """
    return load_yaml(path, _parse_questionnaire)


def _parse_questionnaire(raw: object, source: str) -> Questionnaire:
    del source  # a broken questionnaire is a bug of ours: pydantic's error says enough
    return Questionnaire.model_validate(raw)


def load_answers(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise AdvisorError(f"{path}: cannot read answers: {e}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise AdvisorError(f"{path}: answers must be a mapping of question id to answer")
    return raw


class Constraint(BaseModel):
    kind: Literal["target", "memory_mb", "latency_ms"]
    target: str | None = Field(default=None, description="Capability-matrix target.")
    limit: float | None = None
    text: str


class Profile(BaseModel):
    """Criterion weights (sum 1) and hard constraints, derived from the answers."""

    weights: dict[Criterion, float]
    constraints: list[Constraint]
    infer_share: float = Field(description="Speed: share of inference vs training time.")
    factor_weights: dict[str, float] = Field(description="Ecosystem sub-factors, sum 1.")
    batch: int
    experience: dict[str, int]
    reasons: list[str] = Field(description="Why each weight moved, in words.")


def _constraints(a: dict[str, Any]) -> list[Constraint]:
    out = []
    for t in [*a["targets"], *a["languages"]]:
        for target in TARGET_MAP[t]:
            out.append(Constraint(kind="target", target=target, text=f"must run on {target}"))
    if a["memory_budget_mb"] > 0:
        mb = float(a["memory_budget_mb"])
        out.append(Constraint(kind="memory_mb", limit=mb, text=f"memory <= {mb:g} MiB"))
    if a["latency_slo_ms"] > 0:
        ms = float(a["latency_slo_ms"])
        out.append(Constraint(kind="latency_ms", limit=ms, text=f"latency <= {ms:g} ms"))
    # One constraint per matrix target even if two answers imply it.
    unique: dict[tuple[str, str | None], Constraint] = {}
    for c in out:
        unique.setdefault((c.kind, c.target), c)
    return list(unique.values())


Add = Callable[[Criterion, float, str], None]


def _weight_rules(a: dict[str, Any], add: Add) -> None:
    """What the answers say about the criteria weights (``add`` records each change)."""
    if a["focus"] == "research":
        add("ecosystem", 2, "research focus")
        add("deployment", -1, "research focus")
        add("speed", -1, "research focus")
    elif a["focus"] == "production":
        add("deployment", 1, "production focus")
        add("speed", 1, "production focus")
        add("memory", 0.5, "production focus")
    if a["latency_slo_ms"] > 0:
        add("speed", 1, "a latency objective")
    if a["memory_budget_mb"] > 0:
        add("memory", 1, "a memory budget")
    extra_targets = [t for t in a["targets"] if t != "server_cpu"] + a["languages"]
    if extra_targets:
        add("deployment", 0.5 * min(len(extra_targets), 4), f"targets {extra_targets}")
    if a["custom_ops"] != "none":
        add("custom_ops", 1.0 if a["custom_ops"] == "few" else 2.5, "custom operators needed")
    gap = abs(a["experience_torch"] - a["experience_tf"])
    if gap >= 2:
        add("team", 1, "the team knows one framework much better")


def _ecosystem_factors(a: dict[str, Any], add: Add) -> dict[str, float]:
    """The ecosystem's factor weights (unnormalised), and the ecosystem weight they add."""
    factors = {"dynamic": 0.0, "distributed": 0.0, "debugging": 0.5, "research": 0.5}
    if a["dynamic"] == "yes":
        add("ecosystem", 1, "dynamic control flow or variable-length inputs")
        factors["dynamic"] = 2.0
    if a["training_scale"] == "multi_node":
        add("ecosystem", 1, "multi-node training")
        factors["distributed"] = 2.0
    if a["debugging"] == "high":
        add("ecosystem", 1, "visualisation and debugging matter a lot")
        factors["debugging"] = 2.0
    if a["focus"] == "research":
        factors["research"] = 2.0
    elif a["focus"] == "production":
        factors["research"] = 0.0
    return factors


def to_profile(answers: dict[str, Any], q: Questionnaire | None = None) -> Profile:
    """Map (partial) answers to a Profile. The rules, in order, are the documentation."""
    a = (q or load_questionnaire()).resolve(answers)
    w: dict[Criterion, float] = dict(BASE_WEIGHTS)
    why: list[str] = []

    def add(c: Criterion, dw: float, reason: str) -> None:
        w[c] = max(0.0, w[c] + dw)
        why.append(f"{c} {dw:+g}: {reason}")

    _weight_rules(a, add)
    factors = _ecosystem_factors(a, add)
    total, ftotal = sum(w.values()), sum(factors.values())
    share = {"inference": 1.0, "both": 0.5, "training": 0.0}[a["emphasis"]]
    if a["training_scale"] == "none":
        share = 1.0
    return Profile(
        weights={c: w[c] / total for c in CRITERIA},
        constraints=_constraints(a),
        infer_share=share,
        factor_weights={k: v / ftotal for k, v in factors.items()},
        batch=int(a["batch_size"]),
        experience={"torch": a["experience_torch"], "tensorflow": a["experience_tf"]},
        reasons=why,
    )
