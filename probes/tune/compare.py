"""Tune each framework, then compare: default vs default (naive) next to best vs best."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from optuna.trial import TrialState

from probes.features import distance, spec_features
from probes.measure.environment import environment
from probes.probe import Prober
from probes.protocol import (
    FRAMEWORKS,
    Framework,
    InferWorkload,
    ProbeResult,
    TrainWorkload,
    Workload,
)
from probes.settings import Device, FrameworkSettings
from probes.spec import ModelSpec, build_graph, spec_hash
from probes.store import ResultStore, TunedBest
from probes.tune.confirm import Confirmation, candidates_of, confirm
from probes.tune.models import FrameworkTuning, TrialSummary, TuneConfig, TuneReport, Verdict
from probes.tune.search import FrameworkTuner
from probes.tune.space import space_size
from probes.tune.study import storage_for, summarize_trial

WARM_STARTS = 3


def redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]+@", r"//\1:***@", url)


def warm_params(
    store: ResultStore | None,
    spec: ModelSpec,
    fw: Framework,
    cfg: TuneConfig,
    space: dict[str, list[Any]],
) -> list[dict[str, Any]]:
    """Best settings found for the most similar *other* models on this machine."""
    if store is None or not cfg.warm_start:
        return []
    feats = spec_features(build_graph(spec))
    rows = [
        r
        for r in store.tuned(
            framework=fw,
            workload=cfg.workload,
            objective=cfg.objective,
            env_key=environment().key(),
        )
        if r.spec_hash != spec_hash(spec)
    ]
    rows.sort(key=lambda r: distance(feats, r.features))
    out = []
    for r in rows[:WARM_STARTS]:
        params = {k: v for k, v in r.params.items() if k in space and v in space[k]}
        if len(params) == len(space) and params not in out:
            out.append(params)
    return out


def pareto_front(trials: list[TrialSummary]) -> list[TrialSummary]:
    pts = [t for t in trials if t.state == "COMPLETE" and t.feasible and t.values]
    front = [
        t
        for t in pts
        if not any(
            all(o <= s for o, s in zip(u.values or [], t.values or [], strict=True))
            and u.values != t.values
            for u in pts
        )
    ]
    return sorted(front, key=lambda t: (t.values or [0.0])[0])


def _pick_best(trials: list[TrialSummary], cfg: TuneConfig) -> TrialSummary | None:
    ok = [t for t in trials if t.state == "COMPLETE" and t.feasible and t.values]
    if not ok:
        return None
    if cfg.objective == "throughput":
        return max(ok, key=lambda t: (t.values or [0.0])[0])
    return min(ok, key=lambda t: (t.values or [0.0])[0])


def summarize_study(tuner: FrameworkTuner) -> FrameworkTuning:
    frozen = tuner.study.get_trials(deepcopy=False)
    history = [summarize_trial(t) for t in frozen]
    counts = {s.name: sum(t.state == s for t in frozen) for s in TrialState}
    best = _pick_best(history, tuner.cfg)
    # the default's measurement: a requeued default (its first try was abandoned) wins
    defaults = [t for t in history if t.source == "default"]
    default = next(
        (t for t in defaults if t.state == "COMPLETE"), defaults[-1] if defaults else None
    )
    speedup = None
    if best and default and default.values and best.values and default.state == "COMPLETE":
        b, d = best.values[0], default.values[0]
        speedup = b / d if tuner.cfg.objective == "throughput" else d / b
    best_result = None
    if best is not None:
        raw = frozen[best.number].user_attrs.get("result")
        best_result = ProbeResult.model_validate(raw) if raw else None
    return FrameworkTuning(
        framework=tuner.fw,
        study_name=tuner.study.study_name,
        search_space=tuner.space,
        space_size=space_size(tuner.space),
        counts={k: v for k, v in counts.items() if v},
        default=default,
        best=best,
        best_result=best_result,
        speedup=speedup,
        pareto=pareto_front(history) if tuner.cfg.objective == "pareto" else [],
        history=history,
    )


TIE = "tie"


def relative_iqr(tuner: FrameworkTuner, t: TrialSummary | None) -> float:
    """IQR / median of the probe behind trial ``t`` (its own, or its twin's when ``t``
    answered a duplicate); 0.0 when no timing is stored (then any ratio decides)."""
    if t is None:
        return 0.0
    frozen = tuner.study.get_trials(deepcopy=False)
    for ft in [frozen[t.number], *(f for f in frozen if f.params == t.params)]:
        raw = ft.user_attrs.get("result")
        if raw:
            m = ProbeResult.model_validate(raw).measurement
            if m and m.timing and m.timing.median_s > 0:
                return m.timing.iqr_s / m.timing.median_s
    return 0.0


def noise_threshold(noise_a: float, noise_b: float) -> float:
    """The smallest ratio that is a win: 1 + (IQR_a/median_a + IQR_b/median_b) / 2.
    Below it the two ranges median +- IQR/2 (each median's middle half of timed
    iterations, taken as symmetric) overlap, to first order: the medians differ by less
    than their combined half-IQRs, so which framework is faster is within the noise."""
    return 1.0 + (noise_a + noise_b) / 2


def verdict(
    a: TrialSummary | None,
    b: TrialSummary | None,
    cfg: TuneConfig,
    label: str,
    noise: tuple[float, float] = (0.0, 0.0),
) -> Verdict:
    """Who wins, by what ratio; a ``tie`` when the ratio is within the measured noise
    (``noise``: each side's IQR / median; see ``noise_threshold``)."""
    if (
        a is None
        or b is None
        or not a.values
        or not b.values
        or a.state != "COMPLETE"
        or b.state != "COMPLETE"
    ):
        return Verdict(winner=None, ratio=None, note=f"{label}: no result for both frameworks")
    higher = cfg.objective == "throughput"
    va, vb = a.values[0], b.values[0]
    faster = FRAMEWORKS[0] if (va > vb if higher else va < vb) else FRAMEWORKS[1]
    ratio = max(va, vb) / min(va, vb)
    what = "throughput" if higher else "latency"
    if a.contended or b.contended:
        what += " (measured while the machine was busy: not a reliable ratio)"
    threshold = noise_threshold(*noise)
    if ratio < threshold:
        return Verdict(
            winner=TIE,
            ratio=ratio,
            note=f"{label}: tie on {what}: {faster} ahead by only {ratio:.2f}x, within the "
            f"measured noise (below {threshold:.2f}x) ({a.settings} vs {b.settings})",
        )
    return Verdict(
        winner=faster,
        ratio=ratio,
        note=f"{label}: {faster} wins by {ratio:.2f}x on {what} ({a.settings} vs {b.settings})",
    )


def _workload(cfg: TuneConfig) -> Workload:
    if cfg.workload == "train":
        return TrainWorkload(batch=cfg.batch)
    return InferWorkload(batch=cfg.batch)


def paired_verdict(conf: Confirmation, origin: str, label: str) -> Verdict | None:
    """The verdict of the paired rounds between each framework's ``origin`` candidate
    (the search's fastest falls back to the default when they are the same)."""
    picks = {}
    for fw in FRAMEWORKS:
        rows = conf.of(fw)
        row = next((c for c in rows if c.candidate.origin == origin), None)
        row = row or next((c for c in rows if c.candidate.origin == "default"), None)
        if row is None:
            return None
        picks[fw] = row.candidate
    pair = conf.pair(picks["torch"], picks["tensorflow"])
    if pair is None:
        return None
    win = pair.faster
    return Verdict(
        winner=TIE if win == "tie" else win,
        ratio=max(pair.ratio, 1 / pair.ratio),
        note=f"{label}: {pair.note()} ({pair.torch} vs {pair.tensorflow})",
        paired=True,
        lo=pair.lo,
        hi=pair.hi,
        contended_rounds=pair.flagged_rounds,
    )


def is_flip(naive: Verdict, tuned: Verdict) -> bool:
    """Tuning flipped the verdict only when one framework won on defaults and the other
    won tuned; a tie on either side (or no result) is not a flip."""
    wins = (naive.winner, tuned.winner)
    return all(w in FRAMEWORKS for w in wins) and wins[0] != wins[1]


def tune(
    spec: ModelSpec,
    cfg: TuneConfig,
    prober: Prober,
    storage_url: str,
    frameworks: tuple[Framework, ...] = FRAMEWORKS,
    device: Device = "cpu",
    progress: Callable[[str], None] | None = None,
    spaces: dict[str, dict[str, list[Any]]] | None = None,
    predicted: Mapping[Framework, Sequence[FrameworkSettings]] | None = None,
) -> TuneReport:
    """Tune each framework in turn (never concurrently: they would share the cores).
    ``spaces`` optionally narrows a framework's search space (used by benchmarks);
    ``predicted``: settings a latency model ranks first, tried right after the defaults."""
    storage = storage_for(storage_url, cfg.heartbeat_s, cfg.grace_s)
    results: list[FrameworkTuning] = []
    noise: dict[str, tuple[float, float]] = {}  # framework -> (default, best) IQR/median
    for fw in frameworks:  # one after the other: measurements never share the cores
        tuner = FrameworkTuner(
            spec, fw, cfg, prober, storage, device, progress, (spaces or {}).get(fw)
        )
        ranked = (predicted or {}).get(fw, ())
        tuner.enqueue_starts(warm_params(prober.store, spec, fw, cfg, tuner.space), ranked)
        tuner.run()
        summary = summarize_study(tuner)
        results.append(summary)
        noise[fw] = (relative_iqr(tuner, summary.default), relative_iqr(tuner, summary.best))
        if prober.store is not None and summary.best is not None:
            prober.store.put_tuned(
                TunedBest(
                    study=summary.study_name,
                    spec_hash=spec_hash(spec),
                    model=spec.name,
                    framework=fw,
                    workload=cfg.workload,
                    objective=cfg.objective,
                    env_key=environment().key(),
                    features=tuner.features,
                    params=summary.best.params,
                    value=summary.best.values[0] if summary.best.values else None,
                )
            )
    by_fw = {r.framework: r for r in results}
    t, f = by_fw.get("torch"), by_fw.get("tensorflow")
    nt, nf = noise.get("torch", (0.0, 0.0)), noise.get("tensorflow", (0.0, 0.0))
    naive = verdict(
        t.default if t else None,
        f.default if f else None,
        cfg,
        "default vs default",
        (nt[0], nf[0]),
    )
    tuned = verdict(
        t.best if t else None, f.best if f else None, cfg, "tuned vs tuned", (nt[1], nf[1])
    )
    confirmation = None
    if t and f and cfg.confirm_rounds > 0 and cfg.objective != "throughput":
        confirmation = confirm(
            spec,
            prober,
            [*candidates_of(t, near=1.0), *candidates_of(f, near=1.0)],
            _workload(cfg),
            cfg.confirm_rounds,
            say=progress,
        )
        naive = paired_verdict(confirmation, "default", "default vs default") or naive
        tuned = paired_verdict(confirmation, "fastest in search", "tuned vs tuned") or tuned
    flipped = is_flip(naive, tuned)
    return TuneReport(
        model=spec.name,
        objective=cfg.objective,
        workload=cfg.workload,
        config=cfg,
        storage=redact(storage_url),
        frameworks=results,
        naive=naive,
        tuned=tuned,
        flipped=flipped,
        confirmation=confirmation,
    )
