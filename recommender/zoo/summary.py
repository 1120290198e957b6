"""What the zoo report shows beside its figures, computed once (no matplotlib): the
caveats de-duplicated with where each applies, the efficiency scale, the plain-language
confidence, and the rows of the sortable results table."""

from __future__ import annotations

from dataclasses import dataclass

from probes.frameworks.facts import FACTS
from recommender.zoo.models import ZooRun

NAMES: dict[str, str] = {f.name: f.label for f in FACTS.values()}


@dataclass(frozen=True)
class Caveat:
    number: int
    text: str
    where: list[str]  # "model / profile" of every verdict it applies to


def caveats(run: ZooRun) -> list[Caveat]:
    """Every distinct verdict caveat once, numbered by how many verdicts it applies to
    (most first), with those verdicts."""
    where: dict[str, list[str]] = {}
    for o in run.models:
        for v in o.verdicts:
            for c in dict.fromkeys(v.caveats):
                where.setdefault(c, []).append(f"{o.model} / {v.profile}")
    ranked = sorted(where.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [Caveat(i, text, w) for i, (text, w) in enumerate(ranked, 1)]


def verdict_count(run: ZooRun) -> int:
    return sum(len(o.verdicts) for o in run.models)


@dataclass(frozen=True)
class Efficiency:
    """Efficiencies against ``peak_gflops``: the measured machine peak, or, when a
    model ran faster than that reading (the peak probe met a busy machine), the best
    rate any model reached, so that no efficiency is above 100%."""

    peak_gflops: float | None
    measured_gflops: float | None
    scale: float  # divide a stored efficiency by this (1: the measured peak holds)

    def of(self, stored: float | None) -> float | None:
        return None if stored is None else stored / self.scale


def efficiency(run: ZooRun) -> Efficiency:
    best = max(
        (r.efficiency for o in run.models for r in o.frameworks if r.efficiency is not None),
        default=None,
    )
    peak = run.machine_peak_gflops
    scale = max(1.0, best or 0.0)
    return Efficiency(None if peak is None else peak * scale, peak, scale)


def confidence(c: float) -> str:
    """A confidence in words a reader can trust: never "100%" (it is a share of
    resamples that agreed, not a certainty)."""
    if c >= 0.995:
        return ">99%"
    return f"{c:.0%}"


@dataclass(frozen=True)
class Row:
    model: str
    framework: str
    cells: list[tuple[str, float | str | None]]  # (shown text, sort key)


def _num(v: float | None, fmt: str) -> tuple[str, float | None]:
    """Shown with ``fmt``; from 1000 up as a whole number with separators (24,750, not
    2.475e+04)."""
    if v is None:
        return ("n/a", None)
    return (f"{v:,.0f}" if abs(v) >= 1000 else format(v, fmt)), v


def result_rows(run: ZooRun) -> list[Row]:
    """One row per model and framework: the results table's cells with sort keys."""
    eff = efficiency(run)
    rows = []
    for o in run.models:
        if o.status != "done":
            continue
        for r in o.frameworks:
            e = eff.of(r.efficiency)
            cells: list[tuple[str, float | str | None]] = [
                (o.model, o.model),
                (NAMES.get(r.framework, r.framework), r.framework),
                _num(r.default_ms, ".3g"),
                _num(r.tuned_ms, ".3g"),
                _num(r.tuned_iqr_ms, ".2g"),
                _num(r.speedup, ".2f"),
                _num(r.throughput_sps, ".4g"),
                _num(r.peak_memory_mb, ".0f"),
                ("n/a", None) if e is None else (f"{100 * e:.1f}%", e),
                (r.tuned_settings or "-", r.tuned_settings or ""),
            ]
            rows.append(Row(o.model, r.framework, cells))
    return rows


COLUMNS = [
    ("Model", "text"),
    ("Framework", "text"),
    ("Default b1 ms", "num"),
    ("Tuned b1 ms", "num"),
    ("IQR ms", "num"),
    ("Speed-up (default / tuned)", "num"),
    ("Throughput /s (largest batch)", "num"),
    ("Peak memory MiB", "num"),
    ("Efficiency", "num"),
    ("Tuned settings", "text"),
]
