"""``fwadvisor tune``: each framework at its own best settings, against its defaults."""

from __future__ import annotations

import argparse
from typing import Any

from probes.config import Settings
from probes.frameworks.facts import expand
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import ProbeLimits
from probes.runners.local import SubprocessRunner
from probes.spec import ModelSpec
from probes.store import ResultStore
from probes.tune.compare import tune
from probes.tune.models import FrameworkTuning, TrialSummary, TuneConfig, TuneReport
from service.cli.options import (
    MODEL_HELP,
    add_framework_option,
    positive_float,
    positive_int,
    positive_ints,
)
from service.cli.progress import progress
from service.cli.render import table


def _value(t: TrialSummary | None, objective: str) -> str:
    if t is None or not t.values:
        return "-"
    if objective == "throughput":
        return f"{t.values[0]:,.0f} samples/s"
    text = f"{t.values[0] * 1e3:.3f} ms"
    return text + (f", {t.values[1] / 2**20:,.0f} MiB" if len(t.values) > 1 else "")


def _framework_block(r: FrameworkTuning, objective: str) -> list[str]:
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(r.counts.items()))
    lines = [f"{r.framework}: {counts} (space of {r.space_size} settings; study {r.study_name})"]
    for label, t in (("default", r.default), ("best", r.best)):
        where = f"{t.settings} b={t.batch}" if t else "-"
        lines.append(f"  {label:8s} {where:45s} {_value(t, objective)}")
    if r.speedup is not None:
        lines.append(f"  tuned/default: {r.speedup:.2f}x")
    if r.pareto:
        lines.append("  Pareto front (latency vs peak memory):")
        lines += [
            f"    #{t.number:<3d} {t.settings} b={t.batch}: {_value(t, objective)}"
            for t in r.pareto
        ]
    failed = [t for t in r.history if t.state == "FAIL"]
    lines += [f"  trial #{t.number} failed: {(t.reason or '')[:90]}" for t in failed[:3]]
    return lines


def render(rep: TuneReport) -> str:
    head = f"tuning {rep.model}: objective {rep.objective} ({rep.workload}), storage {rep.storage}"
    lines = [head]
    for r in rep.frameworks:
        lines += _framework_block(r, rep.objective)
    rows = [
        [
            r.framework,
            _value(r.default, rep.objective),
            _value(r.best, rep.objective),
            "-" if r.speedup is None else f"{r.speedup:.2f}x",
        ]
        for r in rep.frameworks
    ]
    lines.append(table(["framework", "default", "tuned", "speed-up"], rows))
    lines.append(f"naive verdict: {rep.naive.note}")
    lines.append(f"tuned verdict: {rep.tuned.note}")
    if rep.flipped:
        lines.append(
            f"TUNING FLIPPED THE VERDICT: {rep.naive.winner} wins on defaults, "
            f"{rep.tuned.winner} wins tuned."
        )
    elif rep.naive.winner == rep.tuned.winner == "tie":
        lines.append("Within the measured noise both on defaults and tuned: no winner.")
    elif "tie" in (rep.naive.winner, rep.tuned.winner):
        before, after = rep.naive.winner, rep.tuned.winner
        lines.append(f"Tuning moved the verdict from {before} to {after} (not a flip).")
    elif rep.naive.winner and rep.tuned.winner:
        lines.append("Tuning did not change the winner.")
    return "\n".join(lines)


def cmd_tune(args: argparse.Namespace, settings: Settings, spec: ModelSpec) -> int:
    fws = expand(args.framework)
    cfg = TuneConfig(
        objective=args.objective,
        workload=args.workload,
        batch=args.batch,
        batches=args.batches,
        n_trials=args.trials,
        timeout_s=args.timeout,
        sampler=args.sampler,
        seed=args.seed,
        memory_budget_mb=args.memory_budget_mb,
        latency_slo_ms=args.slo_ms,
        warm_start=not args.no_warm_start,
        confirm_rounds=args.confirm_rounds,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    storage = args.storage or f"sqlite:///{settings.data_dir.resolve()}/optuna.sqlite3"
    store = ResultStore(settings.data_dir / "results.sqlite")
    prober = Prober(
        SubprocessRunner(timeout_s=args.probe_timeout),
        store,
        MeasureConfig(min_time_s=args.min_time),
        ProbeLimits(timeout_s=args.probe_timeout, memory_mb=args.memory_mb),
        settings.limits,
    )

    with progress(f"tune {spec.name}", enabled=not args.json) as say:

        def said(msg: str) -> None:
            if msg:  # the search sends empty lines as separators
                say(msg)

        rep = tune(spec, cfg, prober, storage, fws, args.device, said)
    print(rep.model_dump_json(indent=2) if args.json else render(rep))
    return 0 if all(r.best is not None for r in rep.frameworks) else 1


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "tune", help="Optuna-tune each framework and compare tuned vs default"
    )
    p.add_argument("model", metavar="NAME|FILE", help=MODEL_HELP)
    add_framework_option(p)
    p.add_argument(
        "--trials", type=positive_int, default=20, help="probe-running trials per framework"
    )
    p.add_argument(
        "--timeout", type=positive_float, default=None, help="wall-time budget per framework"
    )
    p.add_argument(
        "--objective",
        choices=["latency", "throughput", "pareto"],
        default="latency",
        help="what the search minimises or maximises",
    )
    p.add_argument("--workload", choices=["infer", "train"], default="infer", help="what is timed")
    p.add_argument("--batch", type=positive_int, default=1, help="batch for latency/pareto")
    p.add_argument(
        "--batches",
        type=positive_ints,
        default=[1, 8, 32],
        help="batches searched by --objective throughput",
    )
    p.add_argument("--storage", default=None, help="SQLAlchemy URL (default: SQLite in data dir)")
    p.add_argument(
        "--sampler",
        choices=["tpe", "tpe-multivariate", "random", "nsga2"],
        default="tpe",
        help="Optuna sampler",
    )
    p.add_argument("--seed", type=int, default=0, help="sampler seed")
    p.add_argument("--memory-budget-mb", type=positive_float, default=None, help="constraint")
    p.add_argument("--slo-ms", type=positive_float, default=None, help="latency SLO constraint")
    p.add_argument("--min-time", type=positive_float, default=0.5, help="timed loop per trial, s")
    p.add_argument("--probe-timeout", type=positive_float, default=300.0, help="seconds per probe")
    p.add_argument("--memory-mb", type=positive_int, default=None, help="per-probe RSS cap")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where probes run")
    p.add_argument(
        "--no-warm-start",
        action="store_true",
        help="start the search cold, not from this machine's stored results",
    )
    p.add_argument(
        "--confirm-rounds",
        type=int,
        default=3,
        help="paired rounds (torch, TF alternating) over each framework's default and best "
        "that decide the verdicts (default: 3; 0: compare the searches' own figures)",
    )
    return p
