"""``recommend(spec, answers, mode)``: the product's answer, with its reasons.

The decision is the higher weighted utility among frameworks no hard constraint vetoes.
The confidence is the share of resampled measurements that give the same decision;
below 0.8 the answer is "either" (the frameworks are within noise for this profile).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from probes.config import Settings
from probes.frameworks.facts import FACTS
from probes.frameworks.facts import other as other_fw
from probes.measure.environment import environment
from probes.protocol import FRAMEWORKS, Framework
from probes.spec import ModelSpec, analyzed, check_limits
from probes.tune.confirm import Z90
from recommender.evidence.configs import assume_configs, speed_compared, usable, with_option
from recommender.evidence.gatherer import Gatherer, Mode
from recommender.evidence.model import Evidence
from recommender.evidence.pipelines import gather_measured
from recommender.evidence.predicted import gather_predicted
from recommender.questionnaire import CRITERIA, Profile, to_profile
from recommender.resample import confidence
from recommender.score import (
    EITHER_BELOW,
    RUN_TO_RUN_SIGMA,
    CriterionRow,
    Flip,
    Veto,
    decide,
    scores,
    utilities,
    vetoes,
    weight_flips,
    with_weight,
)

Choice = Literal["torch", "tensorflow", "either", "neither"]
NAMES: dict[str, str] = {f.name: f.label for f in FACTS.values()}


class RatioInterval(BaseModel):
    ratio: float
    lo: float
    hi: float

    def text(self) -> str:
        return f"{self.ratio:.2f} (90% interval {self.lo:.2f}-{self.hi:.2f})"


class Recommendation(BaseModel):
    model: str
    mode: Mode
    choice: Choice
    leaning: Framework | None = Field(description="The higher utility, even when 'either'.")
    confidence: float = Field(
        description="P(same decision) when the measurements are redrawn from their noise, "
        "the configuration choice is redone in each draw, and the search's possible misses "
        "are included (docs/recommender.md)."
    )
    utilities: dict[Framework, float]
    margin: float
    criteria: list[CriterionRow]
    vetoes: list[Veto]
    sensitivity: list[Flip]
    caveats: list[str]
    evidence: Evidence
    profile: Profile
    summary: str
    assumed: dict[Framework, str] = Field(
        default_factory=dict, description="The configuration each framework is assumed to run."
    )
    latency_ratio: RatioInterval | None = Field(
        default=None, description="torch / TF latency of the assumed configurations."
    )
    speed_compared: bool = Field(
        default=True,
        description="False: the machine was too busy in the paired rounds for a fair speed "
        "comparison; speed counted as unknown and latency_ratio is absent.",
    )


def latency_ratio(ev: Evidence) -> RatioInterval | None:
    """torch / TF inference latency with a 90% interval from both sides' own sigmas
    (the shared part, drift or a predictor's common error, cancels in the ratio); None
    when speed was not compared."""
    t, f = ev.frameworks.get("torch"), ev.frameworks.get("tensorflow")
    if not (t and f and t.infer and f.infer) or not speed_compared(ev):
        return None
    r = t.infer.value / f.infer.value
    half = Z90 * math.hypot(
        max(t.infer.sigma, RUN_TO_RUN_SIGMA), max(f.infer.sigma, RUN_TO_RUN_SIGMA)
    )
    return RatioInterval(ratio=r, lo=r * math.exp(-half), hi=r * math.exp(half))


def _detail(ev: Evidence, p: Profile, c: str, fw: Framework) -> str:
    f = ev.frameworks[fw]
    if c == "speed":
        return f"{f.infer.value * 1e3:.3g} ms ({f.infer.source})" if f.infer else "not measured"
    if c == "memory":
        return f"{f.memory.value / 2**20:.0f} MiB" if f.memory else "not measured"
    if c == "deployment":
        return "; ".join(f"{t}: {e.verdict} ({e.status})" for t, e in f.targets.items())
    if c == "custom_ops":
        return f.custom_ops_why
    if c == "ecosystem":
        return ", ".join(f"{k} {v:.2f}" for k, v in f.ecosystem.items())
    return f"experience {p.experience.get(fw, 0)}/3"


def _rows(ev: Evidence, p: Profile) -> list[CriterionRow]:
    s = scores(ev, p)
    return [
        CriterionRow(
            criterion=c,
            weight=p.weights[c],
            scores=s[c],
            contributions={fw: p.weights[c] * s[c][fw] for fw in s[c]},
            detail=" | ".join(f"{NAMES[fw]}: {_detail(ev, p, c, fw)}" for fw in FRAMEWORKS),
        )
        for c in CRITERIA
    ]


def constraint_flips(ev: Evidence, p: Profile, choice: Framework) -> list[Flip]:
    """Constraints the user did not set that would veto the current choice alone."""
    other = other_fw(choice)
    a, b = ev.frameworks[choice], ev.frameworks[other]
    flips = []
    if a.memory and b.memory and a.memory.value > b.memory.value:
        mb_a, mb_b = a.memory.value / 2**20, b.memory.value / 2**20
        flips.append(
            Flip(
                kind="constraint",
                text=f"a memory budget between {mb_b:.0f} and {mb_a:.0f} MiB would veto "
                f"{NAMES[choice]} and choose {NAMES[other]}",
            )
        )
    if a.infer and b.infer and a.infer.value > b.infer.value:
        ms_a, ms_b = a.infer.value * 1e3, b.infer.value * 1e3
        flips.append(
            Flip(
                kind="constraint",
                text=f"a latency objective between {ms_b:.3g} and {ms_a:.3g} ms would veto "
                f"{NAMES[choice]} and choose {NAMES[other]}",
            )
        )
    return flips


def veto_flips(u: dict[Framework, float], vs: list[Veto], choice: str) -> list[Flip]:
    """For each vetoed framework that is not the choice: the constraints whose relaxing
    would make it eligible, if it would then be chosen (its utility is higher, or the
    choice was "neither")."""
    out = []
    vetoed = {v.framework for v in vs}
    for fw in FRAMEWORKS:
        mine = [v for v in vs if v.framework == fw]
        if not mine or fw == choice or decide(u, vetoed - {fw}) != fw:
            continue
        lifts = " and ".join(dict.fromkeys(v.lift for v in mine if v.lift))
        out.append(
            Flip(
                kind="constraint",
                text=f"{lifts} would lift {NAMES[fw]}'s veto and choose it "
                f"(utility {u[fw]:.3f} vs {u[other_fw(fw)]:.3f})",
            )
        )
    return out


def apply_flip(p: Profile, flip: Flip) -> Profile:
    """The profile with a weight flip applied (used by the tests to check each flip)."""
    assert flip.kind == "weight" and flip.criterion is not None and flip.weight_to is not None
    return p.model_copy(update={"weights": with_weight(p.weights, flip.criterion, flip.weight_to)})


PRIORS_ONLY_CONFIDENCE = 0.5  # nothing measured or predicted: never more than "either"


def _measured(ev: Evidence) -> bool:
    """Did anything about this model come from a measurement or the predictor?"""
    return any(
        f.infer or f.train or f.memory or any(t.verdict != "static" for t in f.targets.values())
        for f in ev.frameworks.values()
    )


def config_flips(ev: Evidence, p: Profile, nominal: str) -> list[Flip]:
    """Measured configurations the profile did not pick that would change the answer."""
    out = []
    for fw, f in ev.frameworks.items():
        for o in usable(f.options):
            if o.label == f.config:
                continue
            alt = ev.model_copy(update={"frameworks": {**ev.frameworks, fw: with_option(f, o)}})
            u = utilities(scores(alt, p), p.weights)
            other = decide(u, {v.framework for v in vetoes(alt, p)})
            if other != nominal:
                out.append(
                    Flip(
                        kind="config",
                        text=f"with {NAMES[fw]} on {o.label} ({o.origin}) instead of "
                        f"{f.config}, the answer would be {NAMES.get(other, other)}",
                    )
                )
    return out


def decide_profile(ev: Evidence, p: Profile, samples: int = 2000) -> Recommendation:
    """Score ``ev`` under ``p``: the configuration each framework is assumed to run, the
    decision, its confidence, the contributions and what would flip it."""
    ev = assume_configs(ev, p)
    s = scores(ev, p)
    u = utilities(s, p.weights)
    vs = vetoes(ev, p)
    vetoed = {v.framework for v in vs}
    nominal = decide(u, vetoed)
    # "neither" is resampled too: a limit near a measured value vetoes in some draws only
    conf = confidence(ev, p, nominal, samples)
    caveats = list(ev.caveats) + _machine_caveats(ev, p)
    if not _measured(ev):
        conf = min(conf, PRIORS_ONLY_CONFIDENCE)
        caveats.append(
            "nothing about this model was measured or predicted: the answer rests on priors "
            "(ecosystem, team) only; run measure mode (--mode measure) for a real answer"
        )
    leaning: Framework | None = nominal if nominal in FRAMEWORKS else None
    if leaning is not None:  # negative when a veto, not the utility, decided
        margin = u[leaning] - u[other_fw(leaning)]
    else:
        margin = abs(u["torch"] - u["tensorflow"])
    choice: Choice = nominal  # type: ignore[assignment]
    if nominal in FRAMEWORKS and conf < EITHER_BELOW:
        choice = "either"
    sensitivity: list[Flip] = veto_flips(u, vs, nominal)
    if leaning is not None and not vetoed:
        loser = other_fw(leaning)
        sensitivity = weight_flips(s, p.weights, leaning, loser)[:3]
        sensitivity += constraint_flips(ev, p, leaning)
    sensitivity += config_flips(ev, p, nominal)
    rec = Recommendation(
        model=ev.model,
        mode=ev.mode,
        choice=choice,
        leaning=leaning,
        confidence=conf,
        utilities=u,
        margin=margin,
        criteria=_rows(ev, p),
        vetoes=vs,
        sensitivity=sensitivity,
        caveats=caveats,
        evidence=ev,
        profile=p,
        summary="",
        assumed={fw: f.config for fw, f in ev.frameworks.items() if f.config},
        latency_ratio=latency_ratio(ev),
        speed_compared=speed_compared(ev),
    )
    rec.summary = summarize(rec)
    return rec


#: Targets whose device is not this machine: limits are checked on this machine's figures.
DEVICE_TARGETS = ("android", "ios", "browser", "microcontroller", "tpu", "coreml")


def _machine_caveats(ev: Evidence, p: Profile) -> list[str]:
    env = environment()
    where = f"{env.cores_available} CPU cores ({env.cpu_model})"
    gpu = "GPU present but not measured" if env.cuda_device else "GPU not measured"
    out = [
        f"predicted for {where} by the instant predictor; nothing was measured; {gpu}"
        if ev.mode == "predict"
        else f"measured on {where}; {gpu}"
    ]
    devices = [c.target for c in p.constraints if c.kind == "target" and c.target in DEVICE_TARGETS]
    limits = [c.text for c in p.constraints if c.kind in ("memory_mb", "latency_ms")]
    if devices and limits:
        out.append(
            f"{' and '.join(limits)} checked against this machine's figures, not on "
            f"{', '.join(devices)}: a device's latency and memory differ"
        )
    return out


def summarize(r: Recommendation) -> str:
    if r.choice == "neither":
        return "Neither framework meets the hard constraints: " + "; ".join(
            f"{NAMES[v.framework]} fails '{v.constraint}' ({v.reason})" for v in r.vetoes
        )
    lead_fw = r.leaning or "torch"
    other = other_fw(lead_fw)

    def edge(c: CriterionRow) -> float:  # what the criterion gives the leader over the other
        return c.contributions.get(lead_fw, 0) - c.contributions.get(other, 0)

    top = [c for c in sorted(r.criteria, key=edge, reverse=True)[:2] if edge(c) > 0]
    lead = NAMES[r.leaning] if r.leaning else "?"
    why = " and ".join(c.criterion for c in top) or "nothing (the utilities tie)"
    if r.choice == "either":
        return (
            f"Either: the frameworks are within noise for this profile (leaning {lead}, "
            f"confidence {r.confidence:.0%}, margin {r.margin:.3f})."
        )
    vetoed = [v for v in r.vetoes if v.framework != r.leaning]
    veto = f"{vetoed[0].constraint} ({vetoed[0].reason})" if vetoed else ""
    if vetoed and r.margin < 0:  # the veto decided: say so before any criterion
        return (
            f"{lead}, with {r.confidence:.0%} confidence, because {NAMES[other]} is vetoed: "
            f"{veto}. On the weighted criteria {NAMES[other]} would lead by "
            f"{-r.margin:.3f}."
        )
    return (
        f"{lead}, with {r.confidence:.0%} confidence (utility margin {r.margin:.3f}), "
        f"mostly on {why}." + (f" The other is vetoed: {veto}." if veto else "")
    )


def recommend(
    spec: ModelSpec,
    answers: dict[str, Any],
    mode: Mode = "predict",
    *,
    settings: Settings | None = None,
    trials: int = 6,
    progress: Callable[[str], None] | None = None,
    gatherer: Gatherer | None = None,
) -> Recommendation:
    """Gather evidence for ``spec`` in ``mode`` and decide under the answers' profile."""
    profile = to_profile(answers)
    g = gatherer or Gatherer(settings or Settings(), mode, trials)
    # every mode refuses what could not run: predict mode once answered for a 10^12-
    # parameter spec that the measure mode (and the API) would refuse
    check_limits(analyzed(spec)[1], profile.batch, g.settings.limits)
    say = progress or (lambda _: None)
    ev = (
        gather_predicted(spec, profile, settings=g.settings)
        if mode == "predict"
        else gather_measured(spec, profile, g, say)
    )
    return decide_profile(ev, profile)
