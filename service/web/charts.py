"""Chart geometry for the inline SVG charts of a recommendation (no plotting library
in the web process; the figures are a few bars).

Layout of one bar row: the framework's name left of the bar, the bar (with its ±1 sigma
whisker), and the value on its own line under the bar, so a long value ("25.5 ms
(predicted, default settings)") is never cut by the chart's right edge. A labelled x
axis with rounded ticks closes every chart.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from recommender.evidence.model import Quantity
from recommender.recommend import NAMES, Recommendation

VIEW_W = 640  # the SVG's viewBox width; the page scales it down on a phone
LEFT = 110.0  # x where the bars start; names sit left of it
WIDTH = 480.0  # px of the longest bar (the axis' top tick)
BAR_H = 16
LINE_H = 14  # one line of a bar's value text
GAP = 8
WRAP = 76  # characters per value line: 76 at 11 px fit the 530 px right of LEFT
GROUP_LABEL = 18
AXIS = 40  # the axis line, its tick labels and its title
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

    @property
    def lines(self) -> list[str]:
        return textwrap.wrap(self.text, WRAP, break_long_words=True) or [""]

    @property
    def height(self) -> int:
        return BAR_H + 2 + LINE_H * len(self.lines) + GAP


@dataclass(frozen=True)
class Group:
    label: str
    bars: list[Bar]


@dataclass(frozen=True)
class Tick:
    x: float  # px from LEFT
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    groups: list[Group]
    axis_label: str
    ticks: list[Tick]

    @property
    def plot_height(self) -> int:
        rows = sum(b.height for g in self.groups for b in g.bars)
        return rows + sum(GROUP_LABEL for g in self.groups if g.label) + 4

    @property
    def height(self) -> int:
        return self.plot_height + AXIS


def nice_top(top: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``top`` (> 0)."""
    if top <= 0 or not math.isfinite(top):
        return 1.0
    power = 10.0 ** math.floor(math.log10(top))
    return next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= top * (1 - 1e-9))


def ticks(top: float) -> list[Tick]:
    """Five ticks from 0 to ``top``, labelled with as few digits as tell them apart."""
    return [Tick(WIDTH * i / 4, f"{top * i / 4:.3g}") for i in range(5)]


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
    top = nice_top(max(q.value * math.exp(q.sigma) for q in qs.values()) * scale)
    px = WIDTH / top
    bars = []
    for name, q in qs.items():
        v = q.value * scale
        lo, hi = v * math.exp(-q.sigma), v * math.exp(q.sigma)
        text = f"{v:.3g} {unit} (±1 sigma {lo:.3g} to {hi:.3g}; {q.source})"
        bars.append(Bar(name, NAMES[name], COLORS[name], v * px, lo * px, hi * px, text))
    desc = "; ".join(f"{b.name} {b.text}" for b in bars)
    return Chart(title, desc, [Group("", bars)], unit, ticks(top))


def contributions(rec: Recommendation) -> Chart:
    most = max((v for c in rec.criteria for v in c.contributions.values()), default=0.0)
    top = nice_top(most) if most > 0 else 1.0
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
    return Chart(
        "Contribution of each criterion to the utility",
        desc,
        groups,
        "contribution to the utility (weight times score)",
        ticks(top),
    )


def charts(rec: Recommendation) -> list[Chart]:
    out = [contributions(rec)]
    lat = _quantity_chart(rec, "infer", "Inference latency (±1 sigma)", 1e3, "ms")
    mem = _quantity_chart(rec, "memory", "Peak memory above baseline (±1 sigma)", 2**-20, "MiB")
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
    """Template variables for a finished recommend job's recommendation (if any). A
    stored result that no longer parses (an older or damaged row) is shown as raw JSON
    with a note, never a 500."""
    if kind != "recommend" or not result:
        return {"rec": None}
    try:
        rec = Recommendation.model_validate(result)
    except ValidationError as e:
        return {"rec": None, "unreadable": f"{e.error_count()} field(s) do not parse"}
    return {"rec": rec, "charts": charts(rec), "deployment": deployment_rows(rec)}
