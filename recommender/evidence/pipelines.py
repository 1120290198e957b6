"""The three evidence pipelines (see recommender/evidence/gatherer.py for what each mode means)."""

from __future__ import annotations

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
from probes.tune.models import TuneConfig
from probes.tune.space import to_settings
from recommender.evidence.gatherer import (
    Gatherer,
    custom_scores,
    export_targets,
    memory_of,
    needed_targets,
    quantity,
    target_evidence,
)
from recommender.knowledge.capabilities import load_matrix
from recommender.knowledge.ecosystem import Ecosystem, load_ecosystem
from recommender.questionnaire import Profile
from recommender.score import Evidence, FrameworkEvidence

Say = Callable[[str], None]
EXPORT_MEASURE = MeasureConfig(min_time_s=0.2, max_warmup_s=2.0)


def _ecosystem(eco: Ecosystem, fw: Framework) -> dict[str, float]:
    return {k: eco.score(k, fw).score for k in eco.factors}


def _timing(r: ProbeResult | None) -> ProbeResult | None:
    ok = r is not None and r.status == "ok" and r.measurement and r.measurement.timing
    return r if ok else None


def _best_infer(
    spec: ModelSpec, p: Profile, g: Gatherer, prober: Prober, say: Say
) -> dict[Framework, tuple[ProbeResult | None, str]]:
    """Measure: tune each framework for latency. Cached: the stored default and the
    stored tuned best, whichever is faster."""
    out: dict[Framework, tuple[ProbeResult | None, str]] = {}
    if g.mode == "measure":
        limit = next((c.limit for c in p.constraints if c.kind == "memory_mb"), None)
        slo = next((c.limit for c in p.constraints if c.kind == "latency_ms"), None)
        cfg = TuneConfig(
            objective="latency",
            batch=p.batch,
            n_trials=g.trials,
            memory_budget_mb=limit,
            latency_slo_ms=slo,
        )
        rep = tune(spec, cfg, prober, g.storage_url(), FRAMEWORKS, "cpu", say)
        say(f"tuning: {rep.tuned.note}")
        for ft in rep.frameworks:
            best = ft.best.settings if ft.best else "none"
            out[ft.framework] = (ft.best_result, f"tuned, {g.trials} trials: {best}")  # type: ignore[index]
        return out
    key = spec_hash(spec)
    for fw in FRAMEWORKS:
        candidates: list[FrameworkSettings] = [default_settings(fw)]
        for tb in prober.store.tuned(  # type: ignore[union-attr]
            framework=fw, workload="infer", objective="latency", env_key=environment().key()
        ):
            if tb.spec_hash == key:
                candidates.append(to_settings(fw, tb.params))
        found = [
            (r, s)
            for s in candidates
            if (r := _timing(prober.probe(spec, fw, InferWorkload(batch=p.batch), s)))
        ]
        if not found:
            out[fw] = (None, "not in the store")
            continue
        r, s = min(found, key=lambda rs: rs[0].measurement.timing.median_s)  # type: ignore[union-attr]
        out[fw] = (r, f"cached: {settings_label(s)}")
    return out


def gather_measured(spec: ModelSpec, p: Profile, g: Gatherer, say: Say) -> Evidence:
    prober = g.prober()
    matrix, eco = load_matrix(), load_ecosystem()
    caveats: list[str] = []
    best = _best_infer(spec, p, g, prober, say)
    train: dict[Framework, ProbeResult | None] = {}
    if p.infer_share < 1:
        for fw in FRAMEWORKS:
            say(f"{fw}: training step at default settings")
            train[fw] = _timing(prober.probe(spec, fw, TrainWorkload(batch=max(8, p.batch))))
        caveats.append("training time is at default settings (inference is tuned)")
    targets = needed_targets(p)
    exp_targets = export_targets(matrix, targets)
    say(f"exports: {', '.join(exp_targets)}")
    exports = check_exports(spec, prober, targets=exp_targets, measure=EXPORT_MEASURE)
    has_custom = any(n.op == "custom" for n in build_graph(spec).nodes)
    custom = None
    if has_custom and p.weights["custom_ops"] > 0:
        say("custom-op probe")
        probe_targets: list[ExportTarget] = [
            t for t in exp_targets if t in ("native", "onnx", "litert")
        ]
        custom = custom_op_report(spec, prober, compile=False, targets=probe_targets)
    tev = target_evidence(matrix, exports, targets)
    cust = custom_scores(eco, custom)
    frameworks = {}
    for fw in FRAMEWORKS:
        r, source = best.get(fw, (None, "missing"))
        t = _timing(r)
        tr = train.get(fw)
        fails = [] if t else [f"inference latency: {r.reason if r else source}"]
        frameworks[fw] = FrameworkEvidence(
            framework=fw,
            infer=quantity(t.measurement.timing, source) if t and t.measurement else None,
            train=quantity(tr.measurement.timing, "default settings")
            if tr and tr.measurement
            else None,
            memory=memory_of(t, source),
            targets=tev[fw],
            custom_ops=cust[fw][0],
            custom_ops_why=cust[fw][1],
            ecosystem=_ecosystem(eco, fw),
            failures=fails,
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
