"""The history page's entries: past jobs from the job store, newest first, with a
recommend job's model, profile, answer and confidence. A row that cannot be read (bad
JSON, a result that no longer parses, a time of the wrong type) becomes an entry marked
unreadable; it never breaks the page.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recommender.questionnaire import load_questionnaire
from recommender.recommend import Recommendation
from service.web.prefill import PRESETS, preset_answers

log = logging.getLogger("fwadvisor.web")
CHOICES = {"torch": "PyTorch", "tensorflow": "TensorFlow", "either": "Either", "neither": "Neither"}
FILTERS = ("model", "profile", "choice", "kind", "status")
RECOMMENDS = ("recommend", "answer")  # a measure-mode job; an instant answer


@dataclass(frozen=True)
class Entry:
    id: str
    kind: str = "?"
    status: str = "?"
    model: str = "-"
    size: str = "default"
    mode: str = "-"
    profile: str = "-"
    choice: str = "-"
    confidence: float | None = None
    created: datetime | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    rec: Recommendation | None = None
    unreadable: str | None = None

    @property
    def link(self) -> str:
        return f"/answers/{self.id}" if self.kind == "answer" else f"/jobs/{self.id}"

    def matches(self, wanted: dict[str, str]) -> bool:
        return all(getattr(self, k) == v for k, v in wanted.items() if v)


def _resolved(answers: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return load_questionnaire().resolve(answers)
    except Exception:  # an answer the questionnaire refuses: not a preset
        return None


def profile_name(answers: dict[str, Any]) -> str:
    """The example profile these answers are (all questions resolved), else "custom"
    (or "defaults" when nothing was answered)."""
    if not answers:
        return "defaults"
    mine = _resolved(answers)
    if mine is None:
        return "custom"
    for name in PRESETS:
        ref = _resolved(preset_answers(name))
        if ref is not None and _same(mine, ref):
            return name
    return "custom"


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def norm(v: Any) -> Any:
        return sorted(map(str, v)) if isinstance(v, list) else str(v)

    return a.keys() == b.keys() and all(norm(a[k]) == norm(b[k]) for k in a)


def _model(req: dict[str, Any]) -> str:
    if isinstance(req.get("model"), str):
        return str(req["model"])
    if isinstance(req.get("spec"), dict):
        return f"spec {req['spec'].get('name', '?')}"
    if isinstance(req.get("imported"), str):
        return f"upload {req['imported'][:8]}"
    if isinstance(req.get("models"), list):
        return "zoo: " + (", ".join(map(str, req["models"])) or "all")
    return "-"


def entry(row: dict[str, Any]) -> Entry:
    """One job row as an entry; an unreadable one says so."""
    job_id = str(row.get("id", "?"))
    try:
        return _entry(row)
    except Exception as e:  # any damage: the row is still listed
        log.warning("history: job %r unreadable: %s", job_id, e)
        return Entry(id=job_id, kind=str(row.get("kind", "?")), unreadable=type(e).__name__)


def _entry(row: dict[str, Any]) -> Entry:
    req = json.loads(row["request"])
    if not isinstance(req, dict):
        raise TypeError("the stored request is not an object")
    raw = req.get("answers")
    answers: dict[str, Any] = raw if isinstance(raw, dict) else {}
    rec = None
    if row["kind"] in RECOMMENDS and row["status"] == "succeeded" and row["result"]:
        rec = Recommendation.model_validate_json(row["result"])
    return Entry(
        id=str(row["id"]),
        kind=str(row["kind"]),
        status=str(row["status"]),
        model=_model(req),
        size=str(req.get("size") or "default"),
        mode=str(req.get("mode", "-")),
        profile=profile_name(answers) if row["kind"] in RECOMMENDS else "-",
        choice=rec.choice if rec else "-",
        confidence=rec.confidence if rec else None,
        created=datetime.fromtimestamp(float(row["created_at"]), UTC),
        answers=answers,
        rec=rec,
    )


def _when(row: dict[str, Any]) -> float:
    t = row.get("created_at")
    return float(t) if isinstance(t, int | float) else 0.0


def merged(jobs: list[dict[str, Any]], answers: list[dict[str, Any]], limit: int) -> list[Entry]:
    """Jobs and instant answers (rows of the ``answers`` table) as entries, newest first."""
    rows = jobs + [{**a, "kind": "answer", "status": "succeeded"} for a in answers]
    return [entry(r) for r in sorted(rows, key=_when, reverse=True)[:limit]]


def options(entries: list[Entry]) -> dict[str, list[str]]:
    """The values each filter can take, from the entries themselves."""
    return {k: sorted({str(getattr(e, k)) for e in entries}) for k in FILTERS}


def compared(entries: list[Entry], ids: list[str]) -> list[Entry]:
    """The (up to two) entries picked for the side-by-side comparison, in pick order."""
    by = {e.id: e for e in entries}
    return [by[i] for i in dict.fromkeys(ids) if i in by][:2]


def _percent(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _answer(e: Entry, qid: str) -> str:
    if qid not in e.answers:
        return "(default)"
    a = e.answers[qid]
    return ", ".join(map(str, a)) or "none" if isinstance(a, list) else str(a)


def _assumed(r: Recommendation | None) -> str:
    if r is None or not r.assumed:
        return "-"
    return "; ".join(f"{k}: {v}" for k, v in r.assumed.items())


def _rec_rows(pair: list[Entry]) -> list[tuple[str, list[str]]]:
    def ratio(r: Recommendation) -> str:
        q = r.latency_ratio
        if q is None:
            return "-" if r.speed_compared else "not compared (machine busy)"
        return f"{q.ratio:.2f} (90%: {q.lo:.2f} to {q.hi:.2f})"

    recs = [e.rec for e in pair]
    return [
        ("Utility margin", [f"{r.margin:.3f}" if r else "-" for r in recs]),
        ("PyTorch / TensorFlow latency", [ratio(r) if r else "-" for r in recs]),
        ("Assumed configurations", [_assumed(r) for r in recs]),
    ]


def comparison(pair: list[Entry]) -> list[tuple[str, list[str], bool]]:
    """(label, value per entry, whether they differ) for the side-by-side table."""
    rows: list[tuple[str, list[str]]] = [
        ("Model", [e.model for e in pair]),
        ("Size", [e.size for e in pair]),
        ("Mode", [e.mode for e in pair]),
        ("Profile", [e.profile for e in pair]),
        ("Answer", [CHOICES.get(e.choice, e.choice) for e in pair]),
        ("Confidence", [_percent(e.confidence) for e in pair]),
        *_rec_rows(pair),
        *((q.text, [_answer(e, q.id) for e in pair]) for q in load_questionnaire().questions),
        ("Date (UTC)", [e.created.strftime("%Y-%m-%d %H:%M") if e.created else "-" for e in pair]),
    ]
    return [(label, vs, len(set(vs)) > 1) for label, vs in rows]
