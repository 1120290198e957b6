"""Chart geometry for the inline SVG charts of a recommendation (no plotting library
in the web process; the figures are a few bars)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from recommender.evidence.model import Quantity
from recommender.recommend import NAMES, Recommendation

WIDTH = 360.0  # px of the longest bar
COLORS = {"torch": "#c2410c", "tensorflow": "#1d4ed8"}


@dataclass(frozen=True)
class Bar:
    framework: str
    name: str
    color: str
    width: float
    lo: float | None  # error bar ends, px; None: no interval
    hi: float | None
    text: str


@dataclass(frozen=True)
class Group:
    label: str
    bars: list[Bar]


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    groups: list[Group]

    @property
    def height(self) -> int:
        return sum(len(g.bars) * 22 + 18 for g in self.groups) + 8


def _quantity_chart(
    rec: Recommendation, attr: str, title: str, scale: float, unit: str
) -> Chart | None:
    qs: dict[str, Quantity] = {}
    for fw, f in rec.evidence.frameworks.items():
        q = getattr(f, attr)
        if q is not None:
            qs[fw] = q
    if not qs:
        return None
    top = max(q.value * math.exp(q.sigma) for q in qs.values()) * scale
    bars = []
    px = WIDTH / top
    for name, q in qs.items():
        v = q.value * scale
        lo, hi = v * math.exp(-q.sigma), v * math.exp(q.sigma)
        bars.append(
            Bar(
                name,
                NAMES[name],
                COLORS[name],
                v * px,
                lo * px,
                hi * px,
                f"{v:.3g} {unit} ({q.source})",
            )
        )
    sources = {q.source for q in qs.values()}
    desc = "; ".join(b.name + " " + b.text for b in bars) + " (" + "; ".join(sources) + ")"
    return Chart(title, desc, [Group("", bars)])


def contributions(rec: Recommendation) -> Chart:
    top = max((v for c in rec.criteria for v in c.contributions.values()), default=0.0) or 1.0
    groups = [
        Group(
            f"{c.criterion} (weight {c.weight:.2f})",
            [
                Bar(fw, NAMES[fw], COLORS[fw], v / top * WIDTH, None, None, f"{v:.3f}")
                for fw, v in c.contributions.items()
            ],
        )
        for c in rec.criteria
    ]
    desc = "; ".join(
        f"{g.label}: " + ", ".join(f"{b.name} {b.text}" for b in g.bars) for g in groups
    )
    return Chart("Contribution of each criterion to the utility", desc, groups)


def charts(rec: Recommendation) -> list[Chart]:
    out = [contributions(rec)]
    lat = _quantity_chart(rec, "infer", "Inference latency (±1 sigma)", 1e3, "ms")
    mem = _quantity_chart(rec, "memory", "Peak memory above baseline (±1 sigma)", 2**-20, "MB")
    return out + [c for c in (lat, mem) if c is not None]


def deployment_rows(rec: Recommendation) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """(target, verdict text by framework, css class by framework) for the matrix."""
    targets: list[str] = []
    for f in rec.evidence.frameworks.values():
        targets += [t for t in f.targets if t not in targets]
    rows = []
    for t in targets:
        text: dict[str, str] = {}
        cls: dict[str, str] = {}
        for fw, f in rec.evidence.frameworks.items():
            e = f.targets.get(t)
            if e is None:
                text[fw], cls[fw] = "not assessed", "na"
                continue
            text[fw] = f"{e.verdict}: {e.level}, {e.status} ({e.tool})"
            cls[fw] = "bad" if e.verdict == "failed" or not e.viable else e.verdict
        rows.append((t, text, cls))
    return rows


def result_context(kind: str, result: dict[str, Any] | None) -> dict[str, Any]:
    """Template variables for a finished recommend job's recommendation (if any)."""
    if kind != "recommend" or not result:
        return {"rec": None}
    rec = Recommendation.model_validate(result)
    return {"rec": rec, "charts": charts(rec), "deployment": deployment_rows(rec)}
