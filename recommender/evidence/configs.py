"""Each framework's measured configurations, and the one a profile assumes.

Measure mode ends with paired rounds (``probes/tune/confirm.py``): a few candidate
configurations per framework, all timed in every round. Their times are read as
``log t[c, r] = mu_c + rho_r + e``: ``rho_r`` is the round's drift (the machine got
slower or faster for everyone), ``mu_c`` the candidate's level. Drift moves absolute
values only, so it becomes the quantities' *shared* sigma; what is left (``e``) is each
candidate's own noise, which is all that moves the torch/TF ratio. A search that tried
few points of a large space adds its own sigma (``search_sigma``).

A profile then picks, per framework, the candidate with the highest utility on the
criteria that depend on the configuration (speed and memory), with scores normalised by
the best candidate of either framework, as ``recommender/score.py`` normalises them.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import numpy.typing as npt

from probes.protocol import Framework
from probes.tune.confirm import MIN_LOG_SD, T90, Z90, Confirmation
from probes.tune.models import FrameworkTuning
from recommender.evidence.model import ConfigOption, Evidence, FrameworkEvidence, Quantity
from recommender.questionnaire import Profile

MAX_SEARCH_SIGMA = 0.15
#: What a busy machine may do to one framework's time relative to the other's, in log
#: space, when every round it was timed in was contended. Frameworks use threads
#: differently, so load does not cancel in the paired ratio: with one core taken, a
#: two-thread PyTorch stalls at every barrier. lenet5 (server-gpu profile) read a
#: torch/TF ratio of 0.75 and 1.10 in quiet runs and 1.4 and 5.5 with one core loaded
#: (docs/benchmarks.md, verdict stability): a bias of up to 1.6-2.0 in log. At 1.0 per
#: side, a fully contended 5.5x reads below 90% on speed alone.
CONTENDED_LOG_SD = 1.0
PENALTY = 10.0  # per broken hard limit: outweighs any score, still ranks the rest


def _log_table(conf: Confirmation) -> dict[str, list[float | None]]:
    """Per candidate key, the log time of each round (None: failed, or contended while
    at least two clean rounds remain)."""
    out: dict[str, list[float | None]] = {}
    for cr in conf.candidates:
        clean = sum(
            1 for v, f in zip(cr.medians_s, cr.flagged, strict=True) if v is not None and not f
        )
        out[cr.candidate.key] = [
            math.log(v) if v is not None and (not f or clean < 2) else None
            for v, f in zip(cr.medians_s, cr.flagged, strict=True)
        ]
    return out


def _round_effects(logs: dict[str, list[float | None]], rounds: int) -> list[float]:
    mu = {
        k: statistics.fmean(x for x in v if x is not None)
        for k, v in logs.items()
        if any(x is not None for x in v)
    }
    rho = []
    for r in range(rounds):
        devs = [x - mu[k] for k, v in logs.items() if k in mu and (x := v[r]) is not None]
        rho.append(statistics.fmean(devs) if devs else 0.0)
    return rho


def search_sigma(tuning: FrameworkTuning | None) -> float:
    """What a small search may not have found: the gap between its two best points
    (the expected gap to the next order statistic), scaled by the untried share of the
    space. 0 when the search covered the whole space."""
    if tuning is None:
        return 0.0
    values = sorted(
        t.values[0] for t in tuning.history if t.state == "COMPLETE" and t.feasible and t.values
    )
    tried = len({str(sorted(t.params.items())) for t in tuning.history if t.values})
    if len(values) < 2 or tuning.space_size <= 0:
        return MAX_SEARCH_SIGMA if len(values) < 2 and tuning.space_size > 1 else 0.0
    untried = max(0.0, 1 - tried / tuning.space_size)
    return min(MAX_SEARCH_SIGMA, untried * math.log(values[1] / values[0]))


def options_from_rounds(
    conf: Confirmation, searched: dict[Framework, float]
) -> dict[Framework, list[ConfigOption]]:
    """Every candidate as a ``ConfigOption`` with round-aware sigmas."""
    logs = _log_table(conf)
    rho = _round_effects(logs, conf.rounds)
    drift = statistics.stdev(rho) if len(rho) > 1 else MIN_LOG_SD
    out: dict[Framework, list[ConfigOption]] = {}
    for cr in conf.candidates:
        c = cr.candidate
        xs = [(x - rho[r]) for r, x in enumerate(logs[c.key]) if x is not None]
        busy = sum(1 for r, x in enumerate(logs[c.key]) if x is not None and cr.flagged[r])
        infer = None
        if xs:
            mu = statistics.fmean(xs)
            sd = max(statistics.stdev(xs) if len(xs) > 1 else MIN_LOG_SD, MIN_LOG_SD)
            t = T90.get(len(xs) - 1, Z90) / Z90 if len(xs) > 1 else 3.0
            own = sd / math.sqrt(len(xs)) * t
            load = CONTENDED_LOG_SD * busy / len(xs)
            sigma = math.hypot(own, searched.get(c.framework, 0.0), load)
            src = f"paired rounds ({len(xs)}): {c.label}"
            infer = Quantity(value=math.exp(mu), sigma=sigma, shared_sigma=drift, source=src)
        mem = cr.memory_bytes()
        memory = None
        if mem and mem > 0:
            peaks = [math.log(p) for p in cr.peaks_bytes if p]
            msd = max(statistics.stdev(peaks) if len(peaks) > 1 else MIN_LOG_SD, MIN_LOG_SD)
            memory = Quantity(value=mem, sigma=msd, source=f"peak RSS: {c.label}")
        out.setdefault(c.framework, []).append(
            ConfigOption(
                label=c.label,
                origin=c.origin,
                infer=infer,
                memory=memory,
                contended_rounds=sum(cr.flagged),
            )
        )
    return out


Floats = npt.NDArray[np.float64]
#: Per framework, per option: (latency s, peak bytes or None), each an array of draws.
Drawn = dict[Framework, list[tuple[Floats, Floats | None]]]


def option_utilities(drawn: Drawn, p: Profile) -> dict[Framework, Floats]:
    """The profile's utility of each option on the configuration-dependent criteria
    (speed and memory, normalised by the best option of either framework), minus a
    large penalty per hard limit it breaks. Shape ``(options, draws)`` per framework; the
    nominal choice is the one-draw case."""
    lats = [lat for opts in drawn.values() for lat, _ in opts]
    mems = [m for opts in drawn.values() for _, m in opts if m is not None]
    best_lat = np.minimum.reduce(lats)
    best_mem = np.minimum.reduce(mems) if mems else None
    w_speed, w_mem = p.weights["speed"] * p.infer_share, p.weights["memory"]
    out: dict[Framework, Floats] = {}
    for fw, opts in drawn.items():
        rows = []
        for lat, mem in opts:
            u = w_speed * best_lat / lat - PENALTY * _over(lat * 1e3, p, "latency_ms")
            if mem is not None and best_mem is not None:
                u = u + w_mem * best_mem / mem - PENALTY * _over(mem / 2**20, p, "memory_mb")
            rows.append(u)
        out[fw] = np.vstack(rows)
    return out


def _over(values: Floats, p: Profile, kind: str) -> Floats:
    limits = [c.limit for c in p.constraints if c.kind == kind and c.limit]
    return sum((values > lim).astype(float) for lim in limits) + np.zeros_like(values)


def usable(f_options: list[ConfigOption]) -> list[ConfigOption]:
    """Options that can represent a framework: those with a latency."""
    return [o for o in f_options if o.infer is not None]


def choose(options: dict[Framework, list[ConfigOption]], p: Profile) -> dict[Framework, int]:
    """Per framework, the index (into ``usable(options)``) of the option assumed."""
    drawn: Drawn = {
        fw: [
            (np.array([o.infer.value]), np.array([o.memory.value]) if o.memory else None)
            for o in usable(opts)
            if o.infer
        ]
        for fw, opts in options.items()
        if usable(opts)
    }
    if not drawn:
        return {}
    return {fw: int(np.argmax(u[:, 0])) for fw, u in option_utilities(drawn, p).items()}


def assume_configs(ev: Evidence, p: Profile) -> Evidence:
    """``ev`` with each framework represented by the option the profile picks."""
    picks = choose({fw: f.options for fw, f in ev.frameworks.items()}, p)
    if not picks:
        return ev
    return ev.model_copy(
        update={
            "frameworks": {
                fw: with_option(f, usable(f.options)[picks[fw]]) if fw in picks else f
                for fw, f in ev.frameworks.items()
            }
        }
    )


def with_option(f: FrameworkEvidence, o: ConfigOption) -> FrameworkEvidence:
    return f.model_copy(update={"infer": o.infer, "memory": o.memory, "config": o.label})
