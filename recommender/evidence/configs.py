"""Each framework's measured configurations, and the one a profile assumes.

Measure mode ends with paired rounds (``probes/tune/confirm.py``): a few candidate
configurations per framework, all timed in every round. Their times are read as
``log t[c, r] = mu_c + rho_r + e``: ``rho_r`` is the round's drift (the machine got
slower or faster for everyone), ``mu_c`` the candidate's level. Drift moves absolute
values only, so it becomes the quantities' *shared* sigma; what is left (``e``) is each
candidate's own noise, which is all that moves the torch/TF ratio. A search that tried
few points of a large space adds its own sigma (``search_sigma``), and what moves
between two answers but not between one answer's rounds adds
``BETWEEN_ANSWERS_LOG_SD``. A machine so busy
that a candidate kept fewer than two clean rounds, retries included, gives no speed
ranking at all (``blind_speed``).

A profile then picks, per framework, the candidate with the highest utility on the
criteria that depend on the configuration (speed and memory), with scores normalised by
the best candidate of either framework, as ``recommender/score.py`` normalises them.
"""

from __future__ import annotations

import math
import statistics
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from probes.protocol import Framework
from probes.tune.confirm import (
    CLEAN_NEEDED,
    MIN_LOG_SD,
    T90,
    Z90,
    Confirmation,
    clean_rounds,
    short_of_clean,
)
from probes.tune.models import FrameworkTuning
from recommender.evidence.model import ConfigOption, Evidence, FrameworkEvidence, Quantity
from recommender.questionnaire import Profile

K = TypeVar("K")
MAX_SEARCH_SIGMA = 0.15
#: Log sigma, per side, of what moves between two answers to the same question and
#: not between the rounds of one: rounds share their warm workers, their memory layout
#: and the minute they run in. The same pair of configurations (lenet5, PyTorch eager t2
#: against TensorFlow XLA t1) read torch/TF 0.94-1.18 over 15 quiet answers (log sd of
#: the ratio 0.075), where one answer's 3 rounds gave a standard error near 0.015
#: (docs/benchmarks.md, verdict stability). 0.055 per side is 0.078 on the ratio.
BETWEEN_ANSWERS_LOG_SD = 0.055
#: Log-space sigma of a speed that the machine's load made unknown. Load does not cancel
#: in the paired ratio (frameworks use threads differently: with one core taken, a
#: two-thread PyTorch stalls at every barrier): lenet5 on the server-gpu profile read
#: torch/TF 0.75-1.10 quiet and 1.4, 5.5 and 29.6 with one core loaded
#: (docs/benchmarks.md, verdict stability). No widening of the measured ratio covers a
#: bias that size, so a busy machine's ratio is not used at all: every option gets the
#: same centre and this sigma, and the speed criterion becomes a coin flip of (nearly)
#: its whole weight. Only an answer that the other criteria decide by more than the
#: speed weight can then reach a high confidence, and a quiet machine would agree.
UNKNOWN_LOG_SD = 2.0
PENALTY = 10.0  # per broken hard limit: outweighs any score, still ranks the rest


def _log_table(conf: Confirmation) -> dict[str, list[float | None]]:
    """Per candidate key, the log time of each round (None: failed, or contended while
    enough clean rounds remain)."""
    out: dict[str, list[float | None]] = {}
    for cr in conf.candidates:
        clean = clean_rounds(cr)
        out[cr.candidate.key] = [
            math.log(v) if v is not None and (not f or clean < CLEAN_NEEDED) else None
            for v, f in zip(cr.medians_s, cr.flagged, strict=True)
        ]
    return out


def speed_is_blind(conf: Confirmation) -> bool:
    """The machine was busy in so many rounds (retries included) that some measured
    candidate has fewer than ``CLEAN_NEEDED`` clean ones: its ratio would be the load's."""
    return short_of_clean(conf.candidates, conf.rounds)


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
    """Every candidate as a ``ConfigOption`` with round-aware sigmas; on a machine too
    busy for a clean comparison (``speed_is_blind``), with a speed nobody can rank."""
    logs = _log_table(conf)
    rho = _round_effects(logs, conf.rounds)
    drift = statistics.stdev(rho) if len(rho) > 1 else MIN_LOG_SD
    out: dict[Framework, list[ConfigOption]] = {}
    for cr in conf.candidates:
        c = cr.candidate
        xs = [(x - rho[r]) for r, x in enumerate(logs[c.key]) if x is not None]
        infer = None
        if xs:
            mu = statistics.fmean(xs)
            sd = max(statistics.stdev(xs) if len(xs) > 1 else MIN_LOG_SD, MIN_LOG_SD)
            t = T90.get(len(xs) - 1, Z90) / Z90 if len(xs) > 1 else 3.0
            own = sd / math.sqrt(len(xs)) * t
            sigma = math.hypot(own, searched.get(c.framework, 0.0), BETWEEN_ANSWERS_LOG_SD)
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
    return blind_speed(out) if speed_is_blind(conf) else out


def speed_compared(ev: Evidence) -> bool:
    """False when a busy machine left the speed unranked (``blind_speed``)."""
    return not any(o.speed_unknown for f in ev.frameworks.values() for o in f.options)


def blind_speed(
    options: dict[Framework, list[ConfigOption]],
) -> dict[Framework, list[ConfigOption]]:
    """Every option's latency replaced by one common centre with ``UNKNOWN_LOG_SD``
    (``blind_quantities``): no framework and no configuration is ranked on a busy
    machine's speed."""
    flat = {(fw, i): o.infer for fw, opts in options.items() for i, o in enumerate(opts)}
    blind = blind_quantities(flat, "latency")
    return {
        fw: [
            o.model_copy(update={"infer": blind[fw, i], "speed_unknown": True}) if o.infer else o
            for i, o in enumerate(opts)
        ]
        for fw, opts in options.items()
    }


def blind_quantities(quantities: dict[K, Quantity | None], what: str) -> dict[K, Quantity | None]:
    """The measured quantities as one common centre (their geometric mean, so absolute
    values stay near what was read, for vetoes) with ``UNKNOWN_LOG_SD`` each; each
    reading stays in its source."""
    logs = [math.log(q.value) for q in quantities.values() if q]
    if not logs:
        return quantities
    centre = math.exp(statistics.fmean(logs))
    return {
        k: Quantity(
            value=centre,
            sigma=UNKNOWN_LOG_SD,
            source=f"{what} not ranked, machine busy (read {q.value * 1e3:.3g} ms under "
            f"load; {q.source})",
        )
        if q
        else None
        for k, q in quantities.items()
    }


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
