"""Gathering the evidence a recommendation is scored on, in three modes.

- ``measure``: tune inference latency for each framework (Optuna, few trials), probe a
  training step when training matters, export to the targets the profile needs, and run
  the custom-op probe when the spec has custom nodes. Minutes.
- ``cached``: the same questions, answered only from the results store; anything not
  stored is reported missing (run measure mode once to fill it).
- ``predict``: the learned predictor for latency and memory, the capability matrix for
  deployment, priors for custom ops. Instant; nothing runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from probes.checks.custom_ops import CustomOpReport
from probes.config import Settings
from probes.export.checks import ExportReport
from probes.measure.timing import MeasureConfig, Timing
from probes.probe import Prober
from probes.protocol import (
    FRAMEWORKS,
    ExportTarget,
    Framework,
    ProbeLimits,
    ProbeResult,
)
from probes.runners.base import ProbeRunner
from probes.runners.store_only import StoreOnlyRunner
from probes.runners.warm import local_runner
from probes.store import ResultStore
from recommender.evidence.model import Quantity, TargetEvidence
from recommender.knowledge.capabilities import DEAD, CapabilityMatrix, Cell, merge
from recommender.knowledge.ecosystem import Ecosystem
from recommender.questionnaire import Profile

Mode = Literal["measure", "cached", "predict"]
MEASURE = MeasureConfig(min_time_s=0.5)
#: The search only screens: it picks each framework's candidates, which the paired rounds
#: then time with ``MEASURE``. A 0.2 s loop is still 1,000 calls of lenet5 and, for a
#: model slower than 20 ms a call, ``min_iters`` calls either way.
SCREEN = MeasureConfig(min_time_s=0.2)


@dataclass
class Gatherer:
    settings: Settings
    mode: Mode
    trials: int = 6
    rounds: int = 3  # paired confirmation rounds (measure mode)
    runner: ProbeRunner | None = None
    storage: str | None = None  # Optuna storage URL; default: SQLite in data_dir

    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{self.settings.data_dir.resolve()}/optuna.sqlite3"

    def prober(self) -> Prober:
        runner = self.runner or (
            StoreOnlyRunner()
            if self.mode == "cached"
            else local_runner(self.settings.probe_timeout_s, fresh=self.settings.fresh_processes)
        )
        store = ResultStore(self.settings.data_dir / "results.sqlite")
        limits = ProbeLimits(memory_mb=self.settings.export_memory_mb())
        # the answer shows no efficiency column: no machine-peak probes (the zoo asks
        # for the peak itself)
        return Prober(runner, store, MEASURE, limits, self.settings.limits, efficiency=False)


def quantity(t: Timing | None, source: str) -> Quantity | None:
    if t is None or t.median_s <= 0:
        return None
    within = t.iqr_s / t.median_s / 1.349 / math.sqrt(max(t.iterations, 1))
    return Quantity(value=t.median_s, sigma=within, source=source)


def memory_of(r: ProbeResult | None, source: str) -> Quantity | None:
    m = r.measurement.memory if r and r.measurement else None
    if m is None or m.peak_rss_bytes <= 0:
        return None
    return Quantity(value=float(m.peak_rss_bytes), sigma=0.05, source=source)


def needed_targets(p: Profile) -> list[str]:
    return [c.target for c in p.constraints if c.kind == "target" and c.target] or ["server_python"]


def export_targets(matrix: CapabilityMatrix, targets: list[str]) -> list[ExportTarget]:
    """The export probes whose artifacts the needed targets' routes run."""
    out: set[ExportTarget] = set()
    for t in targets:
        for fw in FRAMEWORKS:
            cell = matrix.targets[t].cell(fw)
            out.update(r.export for r in (cell, *cell.also) if r.export)
    return sorted(out)


def best_static(cell: Cell) -> tuple[str, str, str, bool]:
    """Level, maturity and tool of the most mature live route; and whether one lives."""
    live = [r for r in (cell, *cell.also) if r.status not in DEAD]
    if cell.level == "none" or not live:
        return cell.level, cell.status, cell.tool, False
    order = ["GA", "beta", "experimental", "deprecated"]
    best = min(live, key=lambda r: order.index(r.status))
    return cell.level, best.status, best.tool, True


def target_evidence(
    matrix: CapabilityMatrix, report: ExportReport | None, targets: list[str]
) -> dict[Framework, dict[str, TargetEvidence]]:
    merged = {(m.target, m.framework): m for m in merge(matrix, report)}
    out: dict[Framework, dict[str, TargetEvidence]] = {fw: {} for fw in FRAMEWORKS}
    for t in targets:
        for fw in FRAMEWORKS:
            m = merged[t, fw]
            level, status, tool, viable = best_static(matrix.targets[t].cell(fw))
            if m.verdict == "verified":
                status, tool, viable = m.route.status, m.route.tool, True
            out[fw][t] = TargetEvidence(
                target=t,
                verdict=m.verdict,
                level=level,
                status=status,
                tool=tool,
                viable=viable and m.verdict != "failed",
                summary=m.summary,
            )
    return out


def custom_scores(
    eco: Ecosystem, report: CustomOpReport | None
) -> dict[Framework, tuple[float, str]]:
    """From the custom-op probe when it ran: half compile checks passed with an opaque
    kernel, half opaque exports verified; else the sourced priors."""
    out: dict[Framework, tuple[float, str]] = {}
    for fw in FRAMEWORKS:
        prior = eco.custom_ops[fw]
        row = next((r for r in report.frameworks if r.framework == fw), None) if report else None
        if report is None or row is None or row.data is None:
            out[fw] = (prior.score, f"prior: {prior.note} ({prior.source})")
            continue
        opaque = next((m for m in row.data.modes if m.mode == "opaque"), None)
        checks = opaque.compile if opaque else []
        compiled = sum(c.ok for c in checks) / len(checks) if checks else 0.5
        exp = report.exports.get("opaque")
        cells = (
            # only a verdict counts: no route, or no result in time, shows nothing
            [c for c in exp.checks if c.framework == fw and c.status in ("verified", "failed")]
            if exp
            else []
        )
        exported = sum(c.status == "verified" for c in cells) / len(cells) if cells else 0.5
        score = 0.5 * compiled + 0.5 * exported
        out[fw] = (
            score,
            f"custom-op probe: {compiled:.0%} of compile checks and {exported:.0%} of exports "
            "pass with an opaque kernel",
        )
    return out
