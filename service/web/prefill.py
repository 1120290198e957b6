"""What the questionnaire starts filled with: one of the example profiles
(``data/examples/*.yaml``), or an earlier request ("Ask again" keeps the answers).

Both become the form's fields (a ``MultiDict``, as a posted form would be) and the set
of questions they answer, so an answer of "none of these" (an empty multi-choice) is
shown as given instead of falling back to the question's default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from werkzeug.datastructures import MultiDict

from probes.config import REPO_DATA
from recommender.knowledge.yaml_cache import load_yaml
from recommender.questionnaire import load_questionnaire

EXAMPLES = REPO_DATA / "examples"
#: the example profiles offered as presets, with the button's words
PRESETS = {
    "mobile": "Phone app",
    "browser": "Web page",
    "research": "Research lab",
    "server-gpu": "GPU server",
}


@dataclass(frozen=True)
class Prefill:
    form: MultiDict[str, str]
    given: frozenset[str]  # question ids the form answers, even with nothing ticked


def answers_form(answers: dict[str, Any]) -> Prefill:
    """The fields of the questionnaire's answers (unknown question ids are dropped)."""
    form: MultiDict[str, str] = MultiDict()
    given = set()
    for q in load_questionnaire().questions:
        if q.id not in answers:
            continue
        value = answers[q.id]
        given.add(q.id)
        for v in value if isinstance(value, list) else [value]:
            form.add(q.id, str(v))
    return Prefill(form, frozenset(given))


def _answers(raw: object, source: str) -> dict[str, Any]:
    del source
    return dict(raw) if isinstance(raw, dict) else {}


def preset_answers(name: str) -> dict[str, Any]:
    """The answers of example profile ``name`` (one of ``PRESETS``)."""
    return load_yaml(EXAMPLES / f"{name}.yaml", _answers)


def preset(name: str) -> Prefill | None:
    """The example profile ``name`` as form fields; None if there is no such preset."""
    if name not in PRESETS:
        return None
    return answers_form(preset_answers(name))


def request_form(body: dict[str, Any]) -> Prefill:
    """An earlier recommendation request (as stored or as posted) as form fields. What
    cannot be shown (a malformed stored request) is left out: the form falls back to
    the questions' defaults."""
    answers = body.get("answers")
    filled = answers_form(answers if isinstance(answers, dict) else {})
    form = filled.form
    for key in ("model", "size", "mode", "trials", "imported"):
        value = body.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            form[key] = str(value)
    spec = body.get("spec")
    if isinstance(spec, dict):
        form["spec"] = yaml.safe_dump(spec, sort_keys=False)
    return Prefill(form, filled.given)


def hidden_fields(body: dict[str, Any]) -> list[tuple[str, str]]:
    """``request_form(body)`` as (name, value) pairs, for an "Ask again" form's hidden
    inputs (a multi-choice answered with nothing ticked is marked by ``_given``)."""
    filled = request_form(body)
    pairs = list(filled.form.items(multi=True))
    return pairs + [("_given", q) for q in sorted(filled.given)]
