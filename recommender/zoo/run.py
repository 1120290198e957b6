"""``run_zoo``: tune, export and recommend for every model of a zoo, resumably.

Per model: a latency study per framework at every batch the profiles use (batch 1,
the research batch, the server batch), then a measure-mode recommendation under each
profile (which reuses those studies and runs the training and export probes it
needs), then the union of export checks for the deployment matrix. Everything lands
in the results store and the Optuna storage, so an interrupted run loses at most the
probe in flight; a model that finished is written to ``out/models/<name>.json`` and a
rerun with the same configuration skips it. A model whose evaluation failed is written
too (the report shows why), but a rerun evaluates it again: the failure may have been
transient.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import yaml

from probes.config import REPO_DATA, Settings
from probes.errors import AdvisorError, brief
from probes.export.checks import check_exports
from probes.measure.environment import environment
from probes.protocol import FRAMEWORKS, Framework, InferWorkload, ProbeRequest, ProbeResult
from probes.runners.base import ProbeRunner
from probes.runners.store_only import StoreOnlyRunner
from probes.runners.warm import local_runner
from probes.spec import ModelSpec, analyze, build_graph
from probes.tune.compare import tune
from probes.tune.models import FrameworkTuning, TrialSummary, TuneConfig, TuneReport
from recommender.evidence.gatherer import Gatherer, export_targets, needed_targets
from recommender.evidence.pipelines import EXPORT_MEASURE, EXPORT_TIMEOUT_S
from recommender.knowledge.capabilities import load_matrix
from recommender.questionnaire import load_questionnaire, to_profile
from recommender.recommend import recommend
from recommender.zoo.models import (
    FrameworkRow,
    ModelOutcome,
    Point,
    ProfileVerdict,
    ZooConfig,
    ZooRun,
)

Say = Callable[[str], None]
EXAMPLES = REPO_DATA / "examples"
STARTS = ("default", "informed", "warm-start")  # trial sources queued before the sampler


def profile_answers(name: str) -> dict[str, object]:
    path = EXAMPLES / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in EXAMPLES.glob("*.yaml") if "targets" in p.read_text())
        raise AdvisorError(f"unknown profile '{name}' (known: {', '.join(known)})")
    answers: dict[str, object] = yaml.safe_load(path.read_text())
    load_questionnaire().resolve(answers)
    return answers


def _point(t: TrialSummary) -> Point | None:
    if t.state != "COMPLETE" or t.median_s is None:
        return None
    mem = t.peak_rss_bytes / 2**20 if t.peak_rss_bytes else None
    return Point(latency_ms=t.median_s * 1e3, memory_mb=mem, settings=t.settings or "")


def front(points: list[Point]) -> list[Point]:
    """The latency/memory Pareto front (both lower is better), by latency."""
    pts = [p for p in points if p.memory_mb is not None]
    out = [
        p
        for p in pts
        if not any(
            q.latency_ms <= p.latency_ms
            and (q.memory_mb or 0) <= (p.memory_mb or 0)
            and (q.latency_ms, q.memory_mb) != (p.latency_ms, p.memory_mb)
            for q in pts
        )
    ]
    return sorted(out, key=lambda p: p.latency_ms)


def _timing_ms(r: ProbeResult | None) -> tuple[float | None, float | None]:
    t = r.measurement.timing if r and r.measurement else None
    return (t.median_s * 1e3, t.iqr_s * 1e3) if t else (None, None)


def _memory_mb(r: ProbeResult | None) -> float | None:
    m = r.measurement.memory if r and r.measurement else None
    return m.peak_rss_bytes / 2**20 if m and m.peak_rss_bytes > 0 else None


def _spent(t: TrialSummary) -> bool:
    """Did this trial measure its own point? Not a duplicate answered from its twin, not
    pruned before any process started, not the stale trial of a killed tuner."""
    if (t.source or "").startswith("duplicate of"):
        return False
    if t.state == "COMPLETE":
        return True
    if t.state == "FAIL":
        return t.reason is not None
    return t.state == "PRUNED" and t.median_s is not None  # stopped early: it ran


def _row(
    b1: FrameworkTuning, big: FrameworkTuning, batch: int, flops: int, peak: float | None
) -> FrameworkRow:
    tuned_ms, iqr_ms = _timing_ms(b1.best_result)
    big_ms, big_iqr = _timing_ms(big.best_result)
    sps = batch / (big_ms / 1e3) if big_ms else None
    sps_iqr = sps * big_iqr / big_ms if sps and big_iqr and big_ms else None
    eff = min(1.0, flops * sps / 1e9 / peak) if sps and peak and flops else None
    default = b1.default.median_s if b1.default and b1.default.median_s else None
    trials = [p for t in b1.history if (p := _point(t))]
    spent = [t for t in b1.history if _spent(t)]
    starts = sum(1 for t in spent if t.source in STARTS)
    return FrameworkRow(
        framework=b1.framework,
        default_ms=default * 1e3 if default else None,
        tuned_ms=tuned_ms,
        tuned_iqr_ms=iqr_ms,
        tuned_settings=b1.best.settings if b1.best else None,
        speedup=b1.speedup,
        throughput_batch=batch,
        throughput_sps=sps,
        throughput_iqr_sps=sps_iqr,
        peak_memory_mb=_memory_mb(b1.best_result),
        efficiency=eff,
        trials=trials,
        pareto=front(trials),
        start_trials=starts,
        explored_trials=len(spent) - starts,
    )


def _failures(reports: list[TuneReport]) -> list[str]:
    """Every failed tuning probe, also when other trials of its study succeeded: one line
    per framework, batch and distinct reason, with how many of the study's trials it hit.
    Reasons that differ only in their numbers (an OOM's RSS) count as one, first shown."""
    out = []
    for rep in reports:
        for ft in rep.frameworks:
            where = f"{ft.framework} b{rep.config.batch}"
            spent = [t for t in ft.history if _spent(t)]
            failed = [t.reason or "" for t in spent if t.state == "FAIL"]
            first: dict[str, str] = {}
            counts = Counter(first.setdefault(re.sub(r"\d+", "#", r), r) for r in failed)
            for why, n in counts.most_common():
                out.append(f"{where}: {why[:1000]} ({n} of {len(spent)} trials)")
            if ft.best is None and not failed:
                last = next((t.reason for t in ft.history if t.reason), None)
                out.append(f"{where}: no trial completed" + (f" ({last[:1000]})" if last else ""))
    return out


def budget_warnings(models: list[ModelOutcome], trials: int) -> list[str]:
    """Say when the trial budget went entirely to the tuner's starting points (the
    defaults, then the informed and warm starts of probes/tune/study.py), so that
    tuning searched nothing and its speed-ups and tuned verdicts mean little."""
    rows = [
        (o.model, r)
        for o in models
        if o.status == "done"
        for r in o.frameworks
        if r.explored_trials is not None
    ]
    idle = [(m, r) for m, r in rows if r.explored_trials == 0]
    if not idle:
        return []
    starts = max(r.start_trials or 0 for _, r in idle)
    extra = starts - 1
    tried = "only the default settings" + (
        f" and {'one' if extra == 1 else extra} informed or warm start{'s' * (extra > 1)}"
        if extra > 0
        else ""
    )
    if len(idle) == len(rows):
        return [
            f"--trials {trials}: tuning tried {tried} and never searched beyond them; "
            f"speed-ups and tuned verdicts are not meaningful (use --trials above {starts})."
        ]
    which = ", ".join(f"{m}/{r.framework}" for m, r in idle)
    return [
        f"--trials {trials}: for {which}, tuning tried {tried} and never searched beyond "
        "them; their speed-ups are not meaningful."
    ]


#: The runner of ``--report-only``: it runs nothing, so only stored results answer.
REPORT_ONLY = StoreOnlyRunner(
    "failed", "--report-only runs no probe and nothing is stored for this one"
)


class FailOnce:
    """Remembers failed export probes for the rest of a run. The results store keeps
    only successes (a timeout may be transient), so without this every profile asked
    for the same doomed conversion again: three times 3 minutes and 18 GB for VGG-16's
    tf2onnx."""

    def __init__(self, inner: ProbeRunner) -> None:
        self.inner = inner
        self.failed: dict[str, ProbeResult] = {}

    def run(self, request: ProbeRequest) -> ProbeResult:
        if request.workload.kind != "export":
            return self.inner.run(request)
        key = request.model_dump_json(include={"spec", "framework", "workload", "settings"})
        if key in self.failed:
            return self.failed[key]
        result = self.inner.run(request)
        if result.status not in ("ok", "unsupported"):
            self.failed[key] = result
        return result


class ZooRunner:
    """Evaluates models one after another (never two at once: they would share cores)."""

    def __init__(
        self,
        cfg: ZooConfig,
        settings: Settings,
        out: Path,
        runner: ProbeRunner | None = None,
        report_only: bool = False,
    ) -> None:
        """``report_only``: evaluate nothing and run no probe; report the stored records."""
        self.cfg, self.settings, self.out = cfg, settings, out
        self.report_only = report_only
        self.answers = {p: profile_answers(p) for p in cfg.profiles}
        inner = (
            REPORT_ONLY
            if report_only
            else runner or local_runner(settings.probe_timeout_s, fresh=settings.fresh_processes)
        )
        self.gatherer = Gatherer(
            settings, "measure", cfg.trials, runner=FailOnce(inner), storage=cfg.storage
        )
        self.prober = self.gatherer.prober()
        self.peak: float | None = None

    def done_path(self, name: str) -> Path:
        return self.out / "models" / f"{name}.json"

    def stored(self, name: str) -> ModelOutcome | None:
        """The record of an earlier run with this configuration, done or failed."""
        path = self.done_path(name)
        if not path.exists():
            return None
        got = ModelOutcome.model_validate_json(path.read_text())
        return got if got.fingerprint == self.cfg.fingerprint() else None

    def finished(self, name: str) -> ModelOutcome | None:
        """A record a rerun can skip: only a model that was done. A failed one is
        evaluated again (its crash may have been transient)."""
        got = self.stored(name)
        return got if got is not None and got.status == "done" else None

    def _frameworks(self, spec: ModelSpec, say: Say) -> tuple[list[Framework], list[str]]:
        """The frameworks that can run on the configured device, and why the others
        cannot. On the CPU: both, unasked. On CUDA, one default batch-1 probe per
        framework asks first (the tuner's default trial reuses it from the store), so a
        machine or cluster without a GPU gives a per-model answer, not dozens of failed
        trials."""
        device = self.cfg.device
        if device == "cpu":
            return list(FRAMEWORKS), []
        ok: list[Framework] = []
        why: list[str] = []
        for fw in FRAMEWORKS:
            r = self.prober.probe(spec, fw, InferWorkload(batch=1), None, device)
            if r.status == "unsupported":
                say(f"{spec.name}: {fw} cannot run on {device}: {r.reason}")
                why.append(f"{fw} on {device}: unsupported: {r.reason}")
            else:
                ok.append(fw)
        return ok, why

    def evaluate(self, spec: ModelSpec, say: Say) -> ModelOutcome:
        """One model; a failure becomes a failed outcome with its reason, never a raise."""
        start = time.monotonic()
        base = {"model": spec.name, "fingerprint": self.cfg.fingerprint()}
        try:
            out = self._evaluate(spec, say)
        except Exception as e:  # one model's failure must not end the run
            say(f"{spec.name}: failed: {brief(e)}")
            out = ModelOutcome(**base, status="failed", reason=brief(e, 1000))
        out.wall_s = time.monotonic() - start
        self.done_path(spec.name).parent.mkdir(parents=True, exist_ok=True)
        tmp = self.done_path(spec.name).with_suffix(".tmp")
        tmp.write_text(out.model_dump_json(indent=1))
        tmp.replace(self.done_path(spec.name))
        return out

    def _evaluate(self, spec: ModelSpec, say: Say) -> ModelOutcome:
        a = analyze(build_graph(spec))
        device = self.cfg.device
        frameworks, unsupported = self._frameworks(spec, say)
        if not frameworks:
            raise AdvisorError("; ".join(unsupported))
        if self.peak is None:
            self.peak = self.prober.machine_peak_gflops(device)
        profiles = {p: to_profile(ans) for p, ans in self.answers.items()}
        batches = sorted({1, *(pr.batch for pr in profiles.values())})
        reports = {}
        for b in batches:
            say(f"{spec.name}: tuning at batch {b}")
            cfg = TuneConfig(objective="latency", batch=b, n_trials=self.cfg.trials)
            reports[b] = tune(
                spec, cfg, self.prober, self.gatherer.storage_url(), tuple(frameworks), device, say
            )
        b1, big = reports[1], reports[batches[-1]]
        rows = [
            _row(f1, fb, batches[-1], a.flops, self.prober.machine_peak_gflops(device))
            for f1, fb in zip(b1.frameworks, big.frameworks, strict=True)
        ]
        verdicts = []
        for name, answers in self.answers.items():
            say(f"{spec.name}: recommendation for the {name} profile")
            rec = recommend(
                spec,
                dict(answers),
                "measure",
                settings=self.settings,
                trials=self.cfg.trials,
                progress=say,
                gatherer=self.gatherer,
            )
            verdicts.append(
                ProfileVerdict(
                    profile=name,
                    choice=rec.choice,
                    leaning=rec.leaning,
                    confidence=rec.confidence,
                    margin=rec.margin,
                    utilities=dict(rec.utilities),
                    summary=rec.summary,
                    vetoes=[f"{v.framework}: {v.constraint} ({v.reason})" for v in rec.vetoes],
                    caveats=list(rec.caveats),
                    assumed=dict(rec.assumed),
                    latency_ratio=[
                        rec.latency_ratio.ratio,
                        rec.latency_ratio.lo,
                        rec.latency_ratio.hi,
                    ]
                    if rec.latency_ratio
                    else None,
                    speed_compared=rec.speed_compared,
                )
            )
        matrix = load_matrix()
        targets = sorted({t for pr in profiles.values() for t in needed_targets(pr)})
        exports = check_exports(
            spec,
            self.prober,
            targets=export_targets(matrix, targets),
            measure=EXPORT_MEASURE,
            timeout_s=EXPORT_TIMEOUT_S,
        )
        return ModelOutcome(
            model=spec.name,
            status="done",
            fingerprint=self.cfg.fingerprint(),
            params=a.params,
            flops=a.flops,
            frameworks=rows,
            naive=b1.naive,
            tuned=b1.tuned,
            flipped=b1.flipped,
            exports=[c.model_copy(update={"detail": None}) for c in exports.checks],
            verdicts=verdicts,
            failures=unsupported + _failures(list(reports.values())),
            machine_peak_gflops=self.peak,
        )


def _settle_peak(runner: ZooRunner, outcomes: list[ModelOutcome], say: Say) -> None:
    """The machine peak when no model of this run measured it: from an earlier model's
    record, else from the results store (or a measurement, unless report-only)."""
    ok = [o for o in outcomes if o.status == "done"]  # a peak matters only to these
    if runner.peak is None and ok:  # every model came from an earlier run
        runner.peak = next((o.machine_peak_gflops for o in ok if o.machine_peak_gflops), None)
    if runner.peak is None and ok:
        try:  # report-only: from the results store or not at all (REPORT_ONLY runs nothing)
            runner.peak = runner.prober.machine_peak_gflops(runner.cfg.device)
        except Exception as e:  # the report says "unknown"; the run stands
            say(f"machine peak not measured: {brief(e)}")
        if runner.peak is None and runner.report_only:
            say("machine peak unknown: no stored record or result has it (--report-only)")


def run_zoo(
    specs: list[ModelSpec],
    runner: ZooRunner,
    say: Say,
    max_minutes: float | None = None,
) -> ZooRun:
    """Every model in turn, skipping those already finished (failed ones run again);
    stops starting models once ``max_minutes`` have passed. With ``runner.report_only``,
    only the stored records, and no probe at all."""
    start = time.monotonic()
    outcomes, not_run = [], {}
    for i, spec in enumerate(specs, start=1):
        if runner.report_only:
            got = runner.stored(spec.name)
            if got is None:
                not_run[spec.name] = "no stored result for this configuration (--report-only)"
            else:
                outcomes.append(got)
            continue
        done = runner.finished(spec.name)
        if done is not None:
            say(f"[{i}/{len(specs)}] {spec.name}: finished earlier ({done.status}); skipped")
            outcomes.append(done)
            continue
        used = (time.monotonic() - start) / 60
        if max_minutes is not None and used >= max_minutes:
            not_run[spec.name] = f"not started: the {max_minutes:g}-minute budget was used"
            continue
        say(f"[{i}/{len(specs)}] {spec.name}: starting ({used:.1f} min so far)")

        def model_say(msg: str, i: int = i) -> None:
            say(f"[{i}/{len(specs)}] {msg}")

        outcomes.append(runner.evaluate(spec, model_say))
    _settle_peak(runner, outcomes, say)
    warnings = budget_warnings(outcomes, runner.cfg.trials)
    for w in warnings:
        say(f"warning: {w}")
    return ZooRun(
        config=runner.cfg,
        environment=environment(),
        machine_peak_gflops=runner.peak,
        models=outcomes,
        not_run=not_run,
        warnings=warnings,
        wall_s=time.monotonic() - start,
    )
