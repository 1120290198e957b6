"""Confidence by resampling the measurements, all draws at once.

Every measured quantity is redrawn from a log-normal around its value, ``samples``
times, and the decision is made again for each draw; the confidence is the share of
draws that reach the nominal decision (docs/recommender.md).

Only the speed and memory scores and the latency and memory vetoes depend on the
redrawn quantities; the other criteria and the target vetoes are the same in every
draw, so they are scored once. The draws are one ``(samples, 3 + k)`` matrix of
standard normals in the order a per-draw loop takes them (per draw: the common factor
of infer, train and memory, then each framework's present quantities in turn), so the
result is the loop's for the same seed. ``tests/test_confidence.py`` keeps that loop
and checks every draw's decision against it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from probes.protocol import FRAMEWORKS, Framework
from recommender.evidence.configs import Drawn, option_utilities, usable
from recommender.evidence.model import Evidence, Quantity
from recommender.questionnaire import CRITERIA, Criterion, Profile
from recommender.score import QUANTITIES, RUN_TO_RUN_SIGMA, SAMPLES, scores, vetoes

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
NEITHER = -1  # decision code; a framework's code is its index in FRAMEWORKS
Draws = dict[tuple[Framework, str], Floats]  # (framework, quantity) -> values per draw


def draw_quantities(ev: Evidence, samples: int, seed: int, p: Profile | None = None) -> Draws:
    """Each present quantity's value in every draw: own noise times a common factor.

    With measured configuration options (and a profile), each framework's latency and
    memory are those of the option the profile would pick *in that draw*: a near-tie
    between configurations is part of the uncertainty."""
    if p is not None and any(usable(f.options) for f in ev.frameworks.values()):
        return _draw_with_options(ev, samples, seed, p)
    rng = np.random.default_rng(seed)
    present = [
        (fw, name, q)
        for fw, f in ev.frameworks.items()
        for name in QUANTITIES
        if (q := getattr(f, name)) is not None
    ]
    z = rng.standard_normal((samples, len(QUANTITIES) + len(present)))
    common = {name: z[:, i] for i, name in enumerate(QUANTITIES)}
    out: Draws = {}
    for j, (fw, name, q) in enumerate(present, start=len(QUANTITIES)):
        out[fw, name] = _lognormal(q, z[:, j], common[name])
    return out


def _lognormal(q: Quantity, own: Floats, common: Floats) -> Floats:
    return q.value * np.exp(own * max(q.sigma, RUN_TO_RUN_SIGMA) + q.shared_sigma * common)


def _draw_with_options(ev: Evidence, samples: int, seed: int, p: Profile) -> Draws:
    rng = np.random.default_rng(seed)
    common = {name: rng.standard_normal(samples) for name in QUANTITIES}
    out: Draws = {}
    drawn: Drawn = {}
    for fw, f in ev.frameworks.items():
        if f.train is not None:
            out[fw, "train"] = _lognormal(f.train, rng.standard_normal(samples), common["train"])
        opts = usable(f.options)
        if not opts:  # this framework has no measured option: its own quantities
            for name in ("infer", "memory"):
                q = getattr(f, name)
                if q is not None:
                    out[fw, name] = _lognormal(q, rng.standard_normal(samples), common[name])
            continue
        drawn[fw] = [
            (
                _lognormal(o.infer, rng.standard_normal(samples), common["infer"]),  # type: ignore[arg-type]
                _lognormal(o.memory, rng.standard_normal(samples), common["memory"])
                if o.memory
                else None,
            )
            for o in opts
        ]
    cols = np.arange(samples)
    for fw, u in option_utilities(drawn, p).items():
        pick = np.argmax(u, axis=0)
        out[fw, "infer"] = np.vstack([lat for lat, _ in drawn[fw]])[pick, cols]
        mems = [m for _, m in drawn[fw]]
        if all(m is not None for m in mems):
            out[fw, "memory"] = np.vstack(mems)[pick, cols]  # type: ignore[arg-type]
    return out


def _ratio(q: dict[Framework, Floats | None], n: int) -> dict[Framework, Floats]:
    """As ``score._ratio``, per draw: best / own; missing -> 0; none at all -> 0.5."""
    vals = {fw: v for fw, v in q.items() if v is not None}
    if not vals:
        return {fw: np.full(n, 0.5) for fw in q}
    best = np.minimum.reduce(list(vals.values()))
    return {fw: best / vals[fw] if fw in vals else np.zeros(n) for fw in q}


def _mix(infer: Floats | None, train: Floats | None, share: float) -> Floats | None:
    """As ``score._mix``, per draw: the weighted geometric mean of the needed parts."""
    wanted = [(v, w) for v, w in ((infer, share), (train, 1 - share)) if w > 0]
    parts = [(v, w) for v, w in wanted if v is not None]
    if not parts or len(parts) < len(wanted):
        return None
    # Summed in score._mix's order (its sum starts at 0, and 0 + x is x): same rounding.
    log = parts[0][1] * np.log(parts[0][0])
    for v, w in parts[1:]:
        log = log + w * np.log(v)
    out: Floats = np.exp(log / sum(w for _, w in parts))
    return out


def _speed(ev: Evidence, p: Profile, d: Draws, n: int) -> dict[Framework, Floats]:
    """As ``score.speed_scores``: an unmeasured part drops out of the mix."""
    share = p.infer_share
    if all(f.train is None for f in ev.frameworks.values()):
        share = 1.0
    elif all(f.infer is None for f in ev.frameworks.values()):
        share = 0.0
    mixes = {fw: _mix(d.get((fw, "infer")), d.get((fw, "train")), share) for fw in ev.frameworks}
    return _ratio(mixes, n)


def _utilities(ev: Evidence, p: Profile, d: Draws, n: int) -> dict[Framework, Floats]:
    """Weighted utility per draw, summed in ``CRITERIA`` order as ``score.utilities``."""
    fixed = scores(ev, p)  # the criteria that do not depend on the draws
    varying: dict[Criterion, dict[Framework, Floats]] = {
        "speed": _speed(ev, p, d, n),
        "memory": _ratio({fw: d.get((fw, "memory")) for fw in ev.frameworks}, n),
    }
    out: dict[Framework, Floats] = {}
    for fw in ev.frameworks:
        u = np.zeros(n)
        for c in CRITERIA:
            u = u + p.weights[c] * (varying[c][fw] if c in varying else fixed[c][fw])
        out[fw] = u
    return out


def _vetoed(ev: Evidence, p: Profile, d: Draws, n: int) -> dict[Framework, Bools]:
    """Per draw, as ``score.vetoes``: the target vetoes, then the limits on the draws."""
    unmeasured = {
        fw: f.model_copy(update={"infer": None, "memory": None}) for fw, f in ev.frameworks.items()
    }
    fixed = {v.framework for v in vetoes(ev.model_copy(update={"frameworks": unmeasured}), p)}
    out = {fw: np.full(n, fw in fixed) for fw in ev.frameworks}
    for fw in ev.frameworks:
        mem, infer = d.get((fw, "memory")), d.get((fw, "infer"))
        for c in p.constraints:
            if c.kind == "memory_mb" and c.limit and mem is not None:
                out[fw] |= mem / 2**20 > c.limit
            elif c.kind == "latency_ms" and c.limit and infer is not None:
                out[fw] |= infer * 1e3 > c.limit
    return out


def decision_codes(
    ev: Evidence, p: Profile, samples: int = SAMPLES, seed: int = 0
) -> npt.NDArray[np.int8]:
    """The decision in every draw: an index into ``FRAMEWORKS``, or ``NEITHER``.

    As ``score.decide``: the highest utility among frameworks not vetoed, the first in
    ``FRAMEWORKS`` order on a tie.
    """
    d = draw_quantities(ev, samples, seed, p)
    u = _utilities(ev, p, d, samples)
    vetoed = _vetoed(ev, p, d, samples)
    codes = np.full(samples, NEITHER, dtype=np.int8)
    best = np.full(samples, -np.inf)
    for i, fw in enumerate(FRAMEWORKS):
        if fw not in u:
            continue
        wins = ~vetoed[fw] & (u[fw] > best)  # strict: an earlier framework keeps a tie
        codes[wins] = i
        best = np.where(wins, u[fw], best)
    return codes


def decisions(ev: Evidence, p: Profile, samples: int = SAMPLES, seed: int = 0) -> list[str]:
    """Every draw's decision by name ("torch", "tensorflow" or "neither")."""
    names = [*FRAMEWORKS, "neither"]  # NEITHER (-1) indexes the last
    return [names[c] for c in decision_codes(ev, p, samples, seed).tolist()]


def confidence(
    ev: Evidence, p: Profile, choice: str, samples: int = SAMPLES, seed: int = 0
) -> float:
    """P(the same decision) when every measured quantity is redrawn from its noise."""
    code = NEITHER if choice == "neither" else FRAMEWORKS.index(choice)
    same = int(np.count_nonzero(decision_codes(ev, p, samples, seed) == code))
    return same / samples
