"""The three evidence pipelines (see recommender/evidence/gatherer.py for what each mode means)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from probes.checks.custom_ops import custom_op_report
from probes.export.checks import check_exports
from probes.measure.environment import environment
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import (
    FRAMEWORKS,
    ExportTarget,
    Framework,
    InferWorkload,
    ProbeResult,
    TrainWorkload,
)
from probes.settings import FrameworkSettings, default_settings, settings_label
from probes.spec import ModelSpec, build_graph, spec_hash
from probes.tune.compare import redact, tune
from probes.tune.confirm import Confirmation, candidates_of, confirm
from probes.tune.models import TuneConfig, TuneReport
from probes.tune.space import to_settings
from recommender.evidence.configs import (
    blind_quantities,
    options_from_rounds,
    search_sigma,
    speed_is_blind,
    usable,
)
from recommender.evidence.gatherer import (
    SCREEN,
    Gatherer,
    custom_scores,
    export_targets,
    memory_of,
    needed_targets,
    quantity,
    target_evidence,
)
from recommender.evidence.model import ConfigOption, Evidence, FrameworkEvidence, Quantity
from recommender.evidence.progress import ClockedRunner, WorkClock, stepped
from recommender.knowledge.capabilities import load_matrix
from recommender.knowledge.ecosystem import Ecosystem, load_ecosystem
from recommender.predictor.choose import predicted_fastest
from recommender.questionnaire import Profile

Say = Callable[[str], None]
CACHED_NOTE = (
    "cached: each framework's stored figures were measured at different times, not in "
    "paired rounds; a busy machine at either time biases the comparison"
)
EXPORT_MEASURE = MeasureConfig(min_time_s=0.2, max_warmup_s=2.0)
#: An export still running after this is reported as not finished, and the target keeps
#: the capability matrix's level: a 100-step GRU lowered to ExecuTorch ran past 120 s
#: (and would hold an answer for the probe's whole 600 s limit); lenet5's exports take 1-37 s.
EXPORT_TIMEOUT_S = 120.0


def _ecosystem(eco: Ecosystem, fw: Framework) -> dict[str, float]:
    return {k: eco.score(k, fw).score for k in eco.factors}


def _timing(r: ProbeResult | None) -> ProbeResult | None:
    ok = r is not None and r.status == "ok" and r.measurement and r.measurement.timing
    return r if ok else None


def _search(spec: ModelSpec, p: Profile, g: Gatherer, prober: Prober, say: Say) -> TuneReport:
    """Each framework's own search for latency, a screen with ``SCREEN``'s short loop
    (no paired rounds yet: those come next, over the candidates of both frameworks at
    once, with the full method)."""
    limit = next((c.limit for c in p.constraints if c.kind == "memory_mb"), None)
    slo = next((c.limit for c in p.constraints if c.kind == "latency_ms"), None)
    cfg = TuneConfig(
        objective="latency",
        batch=p.batch,
        n_trials=g.trials,
        memory_budget_mb=limit,
        latency_slo_ms=slo,
        confirm_rounds=0,
    )
    screen = dataclasses.replace(prober, measure=SCREEN)
    ranked = predicted_fastest(spec, p.batch, g.settings)
    return tune(spec, cfg, screen, g.storage_url(), FRAMEWORKS, "cpu", say, predicted=ranked)


def _measured_options(
    spec: ModelSpec, p: Profile, g: Gatherer, prober: Prober, say: Say, clock: WorkClock
) -> tuple[dict[Framework, list[ConfigOption]], list[str]]:
    """Measure mode: search, then paired rounds over each framework's candidates."""
    rep = _search(spec, p, g, prober, stepped(say, clock, "search"))
    by_fw = {ft.framework: ft for ft in rep.frameworks}
    cands = [c for ft in rep.frameworks for c in candidates_of(ft)]
    clock.planned += g.rounds * (len(cands) - PLANNED_CANDIDATES)  # now known exactly
    rounds_say = stepped(say, clock, "paired rounds")
    conf = confirm(spec, prober, cands, InferWorkload(batch=p.batch), g.rounds, say=rounds_say)
    searched = {fw: search_sigma(by_fw.get(fw)) for fw in FRAMEWORKS}
    notes = [f"search: {g.trials} trials per framework; then {g.rounds} paired rounds"]
    for fw, s in searched.items():
        if s > 0.02:
            notes.append(
                f"{fw}: the {g.trials}-trial search covered part of its space; a better "
                f"configuration may exist (counted in the confidence as {s:.0%} on latency; "
                "more --trials narrows it)"
            )
    notes += busy_notes(conf)
    return options_from_rounds(conf, searched), notes


def busy_notes(conf: Confirmation) -> list[str]:
    """What the contention guard saw in the paired rounds, and what it changed."""
    busy = sum(sum(c.flagged) for c in conf.candidates)
    probes = sum(len(c.flagged) for c in conf.candidates)
    if not busy:
        return []
    if speed_is_blind(conf):
        return [
            f"speed not compared: {busy} of {probes} paired probes ran while other "
            f"processes held the CPU, even after {conf.extra_rounds} extra "
            "round(s). Load does not cancel between frameworks, so the measured ratio "
            "would be the load's: speed counts as unknown (either framework may win it) "
            "and the confidence says what the other criteria decide. Ask again on a quiet "
            "machine for a speed comparison"
        ]
    return [
        f"{busy} of the {probes} paired probes ran while the machine was busy (contention "
        "guard); their rounds are left out, and enough clean ones remain"
    ]


def _cached_options(
    spec: ModelSpec, p: Profile, prober: Prober
) -> dict[Framework, list[ConfigOption]]:
    """Cached mode: the stored default and stored tuned bests (not paired)."""
    out: dict[Framework, list[ConfigOption]] = {}
    key = spec_hash(spec)
    for fw in FRAMEWORKS:
        candidates: list[tuple[FrameworkSettings, str]] = [(default_settings(fw), "default")]
        assert prober.store is not None
        for tb in prober.store.tuned(
            framework=fw, workload="infer", objective="latency", env_key=environment().key()
        ):
            if tb.spec_hash == key:
                candidates.append((to_settings(fw, tb.params), "tuned best (stored)"))
        for s, origin in candidates:
            r = _timing(prober.probe(spec, fw, InferWorkload(batch=p.batch), s))
            if r is None or r.measurement is None:
                continue
            source = f"cached: {settings_label(s)}"
            out.setdefault(fw, []).append(
                ConfigOption(
                    label=settings_label(s),
                    origin=origin,
                    infer=quantity(r.measurement.timing, source),
                    memory=memory_of(r, source),
                )
            )
    return out


def _training(
    spec: ModelSpec, p: Profile, prober: Prober, say: Say
) -> tuple[dict[Framework, Quantity | None], list[str]]:
    """One training step per framework at default settings; a probe the contention
    guard flagged is taken once more, and a pair still contended is not ranked."""
    work = TrainWorkload(batch=max(8, p.batch))
    results: dict[Framework, ProbeResult | None] = {}
    for fw in FRAMEWORKS:
        say(f"{fw}: training step at default settings")
        results[fw] = _timing(prober.probe(spec, fw, work))
        if _flagged(results[fw]):
            say(f"{fw}: the machine was busy; the training step once more")
            results[fw] = _timing(prober.probe(spec, fw, work, use_store=False)) or results[fw]
    train = {
        fw: quantity(r.measurement.timing, "default settings") if r and r.measurement else None
        for fw, r in results.items()
    }
    notes = ["training time is at default settings (inference is tuned)"]
    if any(_flagged(r) for r in results.values()):
        train = blind_quantities(train, "training step")
        notes.append(
            "training speed not compared: the machine was busy during a training step "
            "(contention guard) and a retry did not clear it; it counts as unknown"
        )
    return train, notes


def _flagged(r: ProbeResult | None) -> bool:
    c = r.measurement.contention if r and r.measurement else None
    return bool(c and c.flagged)


PLANNED_CANDIDATES = 4  # per round: a default and a best per framework, usually


def _plan(p: Profile, g: Gatherer, exp: list[ExportTarget]) -> WorkClock:
    """A clock for the probes measure mode plans: the search, the paired rounds, the
    training step and the exports."""
    train = 2 if p.infer_share < 1 else 0
    planned = 2 * g.trials + g.rounds * PLANNED_CANDIDATES + train + 2 * len(exp)
    return WorkClock(planned=planned)


def gather_measured(spec: ModelSpec, p: Profile, g: Gatherer, say: Say) -> Evidence:
    prober = g.prober()
    matrix, eco = load_matrix(), load_ecosystem()
    caveats: list[str] = []
    targets = needed_targets(p)
    exp_targets = export_targets(matrix, targets)
    clock = WorkClock(planned=0)
    if g.mode == "measure":
        clock = _plan(p, g, exp_targets)
        prober.runner = ClockedRunner(prober.runner, clock)
        say(
            f"measuring {spec.name}: a {g.trials}-trial search per framework, "
            f"{g.rounds} paired rounds, {'a training step, ' if p.infer_share < 1 else ''}"
            f"exports ({', '.join(exp_targets)}); about {clock.planned} probes"
        )
        options, notes = _measured_options(spec, p, g, prober, say, clock)
    else:
        options, notes = _cached_options(spec, p, prober), [CACHED_NOTE]
    caveats += notes
    train: dict[Framework, Quantity | None] = {}
    if p.infer_share < 1:
        train, train_notes = _training(spec, p, prober, stepped(say, clock, "training"))
        caveats += train_notes
    stepped(say, clock, "exports")(f"{', '.join(exp_targets)}")
    exports = check_exports(
        spec,
        prober,
        targets=exp_targets,
        measure=EXPORT_MEASURE,
        progress=stepped(say, clock, "exports"),
        timeout_s=EXPORT_TIMEOUT_S,
    )
    has_custom = any(n.op == "custom" for n in build_graph(spec).nodes)
    custom = None
    if has_custom and p.weights["custom_ops"] > 0:
        say("custom-op probe")
        probe_targets: list[ExportTarget] = [
            t for t in exp_targets if t in ("native", "onnx", "litert")
        ]
        custom = custom_op_report(
            spec, prober, compile=False, targets=probe_targets, export_timeout_s=EXPORT_TIMEOUT_S
        )
    tev = target_evidence(matrix, exports, targets)
    cust = custom_scores(eco, custom)
    frameworks = {}
    for fw in FRAMEWORKS:
        opts = options.get(fw, [])
        tr = train.get(fw)
        fails = [] if usable(opts) else ["inference latency: no configuration measured"]
        frameworks[fw] = FrameworkEvidence(
            framework=fw,
            train=tr,
            targets=tev[fw],
            custom_ops=cust[fw][0],
            custom_ops_why=cust[fw][1],
            ecosystem=_ecosystem(eco, fw),
            failures=fails,
            options=opts,
        )
        caveats += [f"{fw}: {f}" for f in fails]
    return Evidence(
        model=spec.name,
        mode=g.mode,
        frameworks=frameworks,
        caveats=caveats,
        links=[
            f"results store: {g.settings.data_dir / 'results.sqlite'} (spec {spec_hash(spec)})",
            f"tuning studies: {redact(g.storage_url())}",
            f"exports: fwadvisor deploy {spec.name} --targets {','.join(exp_targets)}",
        ],
    )
