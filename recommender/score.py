"""Transparent scoring: per-criterion scores in [0, 1], weighted utility, vetoes,
and the smallest change that flips the answer (the confidence, which resamples the
measurements, is ``recommender/resample.py``).

Everything here is pure: it takes ``Evidence`` (gathered by recommender/evidence.py in
measure, cached or predict mode) and a ``Profile`` (recommender/questionnaire.py).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from probes.protocol import FRAMEWORKS, Framework
from recommender.evidence.model import Evidence, FrameworkEvidence, Quantity, TargetEvidence
from recommender.questionnaire import CRITERIA, Criterion, Profile

RUN_TO_RUN_SIGMA = 0.02  # log-space floor: run-to-run CV of medians is 0.5-1.8% here
SAMPLES = 2000
EITHER_BELOW = 0.8  # confidence under which the answer is "either"
LEVEL = {"native": 1.0, "conversion": 0.8, "community": 0.6, "none": 0.0}
MATURITY = {
    "GA": 1.0,
    "beta": 0.85,
    "experimental": 0.7,
    "deprecated": 0.4,
    "unsupported": 0.2,
    "archived": 0.1,
}


Scores = dict[Criterion, dict[Framework, float]]


class CriterionRow(BaseModel):
    criterion: Criterion
    weight: float
    scores: dict[Framework, float]
    contributions: dict[Framework, float]
    detail: str


class Veto(BaseModel):
    framework: Framework
    constraint: str
    reason: str
    lift: str = Field(default="", description="The change of constraint that lifts it.")


class Flip(BaseModel):
    kind: str  # weight / constraint
    criterion: Criterion | None = None
    weight_from: float | None = None
    weight_to: float | None = None
    text: str


def _ratio(q: dict[Framework, Quantity | None]) -> dict[Framework, float]:
    """Lower is better: best / own (1.0 for the better one); missing -> 0."""
    vals = {fw: v.value for fw, v in q.items() if v is not None}
    if not vals:
        return {fw: 0.5 for fw in q}
    best = min(vals.values())
    return {fw: best / vals[fw] if fw in vals else 0.0 for fw in q}


def _mix(f: FrameworkEvidence, share: float) -> Quantity | None:
    """Weighted geometric mean of inference and training time; None if a needed part
    is missing (a framework is not scored on half its evidence)."""
    parts = [(q, w) for q, w in ((f.infer, share), (f.train, 1 - share)) if w > 0]
    if not parts or any(q is None for q, _ in parts):
        return None
    log = sum(w * math.log(q.value) for q, w in parts if q is not None)
    return Quantity(value=math.exp(log / sum(w for _, w in parts)), sigma=0, source="mix")


def speed_scores(ev: Evidence, p: Profile) -> dict[Framework, float]:
    """A part nobody measured (training time in predict mode) drops out of the mix."""
    share = p.infer_share
    if all(f.train is None for f in ev.frameworks.values()):
        share = 1.0
    elif all(f.infer is None for f in ev.frameworks.values()):
        share = 0.0
    return _ratio({fw: _mix(f, share) for fw, f in ev.frameworks.items()})


def target_score(t: TargetEvidence) -> float:
    if t.verdict == "failed" or not t.viable:
        return 0.0
    if t.verdict == "verified":
        return MATURITY.get(t.status, 0.5)
    return LEVEL.get(t.level, 0.0) * MATURITY.get(t.status, 0.5)


def deployment_scores(ev: Evidence, p: Profile) -> dict[Framework, float]:
    wanted = [c.target for c in p.constraints if c.kind == "target" and c.target]
    out: dict[Framework, float] = {}
    for fw, f in ev.frameworks.items():
        ts = [f.targets[t] for t in (wanted or ["server_python"]) if t in f.targets]
        out[fw] = sum(target_score(t) for t in ts) / len(ts) if ts else 0.5
    return out


def scores(ev: Evidence, p: Profile) -> Scores:
    fws = list(ev.frameworks)
    return {
        "speed": speed_scores(ev, p),
        "memory": _ratio({fw: ev.frameworks[fw].memory for fw in fws}),
        "deployment": deployment_scores(ev, p),
        "custom_ops": {fw: ev.frameworks[fw].custom_ops for fw in fws},
        "ecosystem": {
            fw: sum(
                w * ev.frameworks[fw].ecosystem.get(k, 0.5) for k, w in p.factor_weights.items()
            )
            for fw in fws
        },
        "team": {fw: (p.experience.get(fw, 0) + 1) / 4 for fw in fws},
    }


def utilities(
    s: dict[Criterion, dict[Framework, float]], w: dict[Criterion, float]
) -> dict[Framework, float]:
    fws = next(iter(s.values())).keys()
    return {fw: sum(w[c] * s[c][fw] for c in CRITERIA) for fw in fws}


def vetoes(ev: Evidence, p: Profile) -> list[Veto]:
    out = []
    for fw, f in ev.frameworks.items():
        for c in p.constraints:
            if c.kind == "target" and c.target:
                t = f.targets.get(c.target)
                if t is not None and (t.verdict == "failed" or not t.viable):
                    lift = f"not requiring {c.target}"
                    out.append(Veto(framework=fw, constraint=c.text, reason=t.summary, lift=lift))
            elif c.kind == "memory_mb" and c.limit and f.memory is not None:
                mb = f.memory.value / 2**20
                if mb > c.limit:
                    lift = f"a memory budget of at least {math.ceil(mb)} MiB (or none)"
                    why = f"peak {mb:.0f} MiB"
                    out.append(Veto(framework=fw, constraint=c.text, reason=why, lift=lift))
            elif c.kind == "latency_ms" and c.limit and f.infer is not None:
                ms = f.infer.value * 1e3
                if ms > c.limit:
                    lift = f"a latency objective of at least {_ceil3(ms)} ms (or none)"
                    why = f"best latency {ms:.3g} ms ({f.infer.source})"
                    out.append(Veto(framework=fw, constraint=c.text, reason=why, lift=lift))
    return out


def _ceil3(x: float) -> str:
    """``x`` rounded *up* to 3 significant digits: a limit at that value lifts the veto."""
    step = 10 ** (math.floor(math.log10(x)) - 2)
    return f"{math.ceil(x / step) * step:.4g}"


def decide(u: dict[Framework, float], vetoed: set[Framework]) -> str:
    alive = [fw for fw in FRAMEWORKS if fw in u and fw not in vetoed]
    if not alive:
        return "neither"
    if len(alive) == 1:
        return alive[0]
    return max(alive, key=lambda fw: u[fw])


# The measured quantities of a FrameworkEvidence, in the order resampling draws them.
QUANTITIES = ("infer", "train", "memory")


def with_weight(w: dict[Criterion, float], c: Criterion, new: float) -> dict[Criterion, float]:
    """``c`` set to ``new`` (0..1); the other weights scaled to keep the sum at 1."""
    rest = 1 - w[c]
    scale = (1 - new) / rest if rest > 0 else 0.0
    return {k: (new if k == c else v * scale) for k, v in w.items()}


def weight_flips(
    s: dict[Criterion, dict[Framework, float]],
    w: dict[Criterion, float],
    win: Framework,
    lose: Framework,
) -> list[Flip]:
    """For each criterion, the weight at which the utilities tie, if one exists in [0, 1].

    With the other weights scaled proportionally, the margin is linear in the weight:
    margin(x) = x * d_c + (1 - x) * R, where d_c is the criterion's score gap and R the
    rest's weighted gap. The tie is at x = R / (R - d_c).
    """
    flips = []
    m = sum(w[c] * (s[c][win] - s[c][lose]) for c in CRITERIA)
    for c in CRITERIA:
        d = s[c][win] - s[c][lose]
        rest = 1 - w[c]
        if rest <= 0 or abs(d) < 1e-9:  # a tied criterion can only tie the total, at 1
            continue
        r = (m - w[c] * d) / rest
        if math.isclose(r, d):
            continue
        x = r / (r - d)
        if not 0 <= x <= 1 or math.isclose(x, w[c]):
            continue
        direction = "more" if x > w[c] else "less"
        better = lose if d < 0 else win
        flips.append(
            Flip(
                kind="weight",
                criterion=c,
                weight_from=w[c],
                weight_to=x,
                text=f"if {c} mattered {direction} (weight {w[c]:.2f} -> {x:.2f}; "
                f"{better} scores better on it), {lose} would win",
            )
        )
    return sorted(flips, key=lambda f: abs((f.weight_to or 0) - (f.weight_from or 0)))
