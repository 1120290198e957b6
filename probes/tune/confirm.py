"""Paired, interleaved confirmation: the comparison a verdict is decided on.

Tuning searches each framework alone, minutes apart, so a machine that slows down
between the two searches lands on one framework only. Here each framework's few
candidate configurations are timed again in alternating rounds (torch, TF, torch, TF,
…, the first framework alternating between rounds), each a fresh probe, and speed is
decided from the *per-round* ratios: drift that affects a whole round cancels in its
ratio. The interval is a Student t interval on the mean log ratio over rounds (pyperf's
advice: say "not significant" rather than name a winner inside the noise).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

from pydantic import BaseModel, Field

from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import FRAMEWORKS, Framework, ProbeResult, Workload
from probes.settings import FrameworkSettings, canonical, default_settings, settings_label
from probes.spec import ModelSpec
from probes.tune.space import to_settings

if TYPE_CHECKING:  # models.py holds a Confirmation: import its types for mypy only
    from probes.tune.models import FrameworkTuning, TrialSummary

ROUNDS = 3
#: Two-sided 90% Student t quantiles by degrees of freedom (n rounds -> n - 1).
T90 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860}
Z90 = 1.645
#: Log-space floor of one round's ratio spread: run-to-run CV of medians is 0.5-1.8% here.
MIN_LOG_SD = 0.02
NEAR_FASTEST = 1.25
LEANER = 0.8  # a third candidate only if it needs <= 80% of the others' memory
CLEAN_NEEDED = 2  # uncontended rounds per candidate for a ratio that ignores the rest


class Candidate(BaseModel):
    framework: Framework
    settings: FrameworkSettings
    origin: str = Field(description="Why it is a candidate: default, fastest in search, …")

    @property
    def label(self) -> str:
        return settings_label(self.settings)

    @property
    def key(self) -> str:
        """Identity: every setting, canonical (two configurations can share a short
        label, and one run can be spelled two ways)."""
        return f"{self.framework}:{canonical(self.settings).model_dump_json()}"


class CandidateRounds(BaseModel):
    """One candidate's result in every round (None: that round's probe failed)."""

    candidate: Candidate
    medians_s: list[float | None] = Field(default_factory=list)
    peaks_bytes: list[int | None] = Field(default_factory=list)
    flagged: list[bool] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)

    def memory_bytes(self) -> float | None:
        peaks = [p for p in self.peaks_bytes if p is not None]
        return float(statistics.median(peaks)) if peaks else None


class PairedRatio(BaseModel):
    """torch / TensorFlow time per round, for one candidate of each."""

    torch: str
    tensorflow: str
    rounds: list[float] = Field(description="torch time / TF time, per paired round.")
    flagged_rounds: int = Field(description="Rounds where either probe was contended.")
    ratio: float = Field(description="Geometric mean of the per-round ratios.")
    log_se: float = Field(description="Standard error of the mean log ratio (floored).")
    lo: float = Field(description="90% interval, lower end.")
    hi: float = Field(description="90% interval, upper end.")

    @property
    def faster(self) -> str:
        """torch, tensorflow, or tie when the interval contains 1."""
        if self.hi < 1:
            return "torch"
        return "tensorflow" if self.lo > 1 else "tie"

    @property
    def log_sd_for_resampling(self) -> float:
        """A normal sigma whose 90% interval is as wide as the t interval."""
        df = max(1, len(self.rounds) - 1)
        return self.log_se * T90.get(df, Z90) / Z90

    def note(self) -> str:
        ahead = "torch" if self.ratio < 1 else "tensorflow"
        r = max(self.ratio, 1 / self.ratio)
        span = f"90% interval {self.lo:.2f}-{self.hi:.2f} (torch/TF)"
        warn = f"; {self.flagged_rounds} round(s) contended" if self.flagged_rounds else ""
        if self.faster == "tie":
            return f"within the noise: {ahead} ahead by {r:.2f}x, {span}{warn}"
        return f"{ahead} {r:.2f}x faster, paired over {len(self.rounds)} rounds, {span}{warn}"


def paired_ratio(a: CandidateRounds, b: CandidateRounds) -> PairedRatio | None:
    """``a`` (torch) against ``b`` (TensorFlow), round by round; None if < 1 pair."""
    return ratio_of_rounds(
        a.candidate.label,
        b.candidate.label,
        list(zip(a.medians_s, b.medians_s, a.flagged, b.flagged, strict=True)),
    )


Round = tuple[float | None, float | None, bool, bool]  # torch, TF, and their contention flags


def ratio_of_rounds(torch_label: str, tf_label: str, rounds: list[Round]) -> PairedRatio | None:
    """The paired ratio over rounds that have both values; contended rounds are left
    out while at least two clean ones remain (and counted either way)."""
    pairs = [(x, y, fa or fb) for x, y, fa, fb in rounds if x and y]
    clean = [p for p in pairs if not p[2]]
    used = clean if len(clean) >= CLEAN_NEEDED else pairs
    if not used:
        return None
    logs = [math.log(x / y) for x, y, _ in used]
    mean = statistics.fmean(logs)
    sd = max(statistics.stdev(logs) if len(logs) > 1 else 0.0, MIN_LOG_SD)
    se = sd / math.sqrt(len(logs))
    half = T90.get(len(logs) - 1, Z90) * se if len(logs) > 1 else math.inf
    return PairedRatio(
        torch=torch_label,
        tensorflow=tf_label,
        rounds=[math.exp(v) for v in logs],
        flagged_rounds=sum(f for _, _, f in used),
        ratio=math.exp(mean),
        log_se=se,
        lo=math.exp(mean - half) if math.isfinite(half) else 0.0,
        hi=math.exp(mean + half) if math.isfinite(half) else math.inf,
    )


class Confirmation(BaseModel):
    model: str
    workload: str
    batch: int
    rounds: int
    extra_rounds: int = Field(default=0, description="Of ``rounds``, retries: a busy machine.")
    candidates: list[CandidateRounds]

    def of(self, framework: Framework) -> list[CandidateRounds]:
        return [c for c in self.candidates if c.candidate.framework == framework]

    def find(self, candidate: Candidate) -> CandidateRounds | None:
        return next((c for c in self.candidates if c.candidate.key == candidate.key), None)

    def pair(self, torch_cand: Candidate, tf_cand: Candidate) -> PairedRatio | None:
        a, b = self.find(torch_cand), self.find(tf_cand)
        return paired_ratio(a, b) if a and b else None


def round_order(candidates: list[Candidate], round_no: int) -> list[Candidate]:
    """Alternate frameworks within the round; the first framework alternates by round."""
    first, second = FRAMEWORKS if round_no % 2 == 0 else FRAMEWORKS[::-1]
    a = [c for c in candidates if c.framework == first]
    b = [c for c in candidates if c.framework == second]
    out: list[Candidate] = []
    for i in range(max(len(a), len(b))):
        out += a[i : i + 1] + b[i : i + 1]
    return out


def _record(cr: CandidateRounds, r: ProbeResult) -> None:
    m = r.measurement
    ok = r.status == "ok" and m is not None and m.timing is not None
    cr.medians_s.append(m.timing.median_s if ok and m and m.timing else None)
    cr.peaks_bytes.append(m.memory.peak_rss_bytes if ok and m and m.memory else None)
    cr.flagged.append(bool(m and m.contention and m.contention.flagged))
    if not ok:
        cr.reasons.append(f"{r.status}: {r.reason or 'no timing'}")


def confirm(
    spec: ModelSpec,
    prober: Prober,
    candidates: list[Candidate],
    workload: Workload,
    rounds: int = ROUNDS,
    measure: MeasureConfig | None = None,
    say: Callable[[str], None] | None = None,
    extra: int | None = None,
) -> Confirmation:
    """Every candidate timed once per round, frameworks alternating, each a fresh probe
    (with ``measure``, or the prober's own method). While a candidate has fewer than
    ``CLEAN_NEEDED`` rounds free of contention, up to ``extra`` more rounds (default:
    ``rounds``) re-time all of them: a passing load clears, a lasting one stays flagged."""
    extra = rounds if extra is None else extra
    unique = list({c.key: c for c in candidates}.values())
    table = {c.key: CandidateRounds(candidate=c) for c in unique}
    total, done, round_no = rounds * len(unique), 0, 0
    while round_no < rounds or (
        round_no < rounds + extra and short_of_clean(table.values(), rounds)
    ):
        if round_no == rounds:  # a retry round: say why the total grew
            total += len(unique)
            if say:
                say(f"confirm: the machine was busy; an extra round ({round_no + 1})")
        for c in round_order(unique, round_no):
            done += 1
            if say:
                say(f"confirm [{done}/{total}] round {round_no + 1}: {c.framework} {c.label}")
            r = prober.probe(
                spec, c.framework, workload, c.settings, measure=measure, use_store=False
            )
            _record(table[c.key], r)
        round_no += 1
    return Confirmation(
        model=spec.name,
        workload=workload.kind,
        batch=getattr(workload, "batch", 1),
        rounds=round_no,
        extra_rounds=round_no - rounds,
        candidates=list(table.values()),
    )


def clean_rounds(cr: CandidateRounds) -> int:
    """Rounds with a value that no contention flag spoils."""
    return sum(1 for v, f in zip(cr.medians_s, cr.flagged, strict=True) if v is not None and not f)


def short_of_clean(candidates: Iterable[CandidateRounds], rounds: int) -> bool:
    """Some candidate that measured at all, and was contended, lacks the clean rounds a
    ratio needs (``CLEAN_NEEDED``, or every round when there are fewer)."""
    need = min(CLEAN_NEEDED, rounds)
    measured = [cr for cr in candidates if any(v is not None for v in cr.medians_s)]
    return any(sum(cr.flagged) and clean_rounds(cr) < need for cr in measured)


def candidates_of(ft: FrameworkTuning, near: float = NEAR_FASTEST) -> list[Candidate]:
    """A framework's candidates for the paired rounds: its default (the naive
    comparison), the search's fastest, and the lowest-memory point within ``near`` x of
    the fastest (a memory-weighted profile may prefer it)."""
    fw = cast(Framework, ft.framework)
    out = [Candidate(framework=fw, settings=default_settings(fw), origin="default")]
    ok = [t for t in ft.history if t.state == "COMPLETE" and t.feasible and t.values]
    if ft.best is not None and ft.best.values:
        out.append(_from_trial(fw, ft.best, "fastest in search"))
        close = [t for t in ok if t.values and t.values[0] <= near * ft.best.values[0]]
        lean = min(close, key=lambda t: t.peak_rss_bytes or 0, default=None)
        known = [t.peak_rss_bytes for t in (ft.best, ft.default) if t and t.peak_rss_bytes]
        if lean and lean.peak_rss_bytes and lean.peak_rss_bytes <= LEANER * min(known, default=0):
            out.append(_from_trial(fw, lean, f"lowest memory within {near:.2g}x of the fastest"))
    return list({c.key: c for c in out}.values())


def _from_trial(fw: Framework, t: TrialSummary, origin: str) -> Candidate:
    params = {k: v for k, v in t.params.items() if k != "batch"}
    return Candidate(framework=fw, settings=to_settings(fw, params), origin=origin)
