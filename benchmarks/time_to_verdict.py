"""Time to verdict: the wall time of a measure-mode recommendation on a fresh data dir
(no stored results, no studies), and whether its verdict equals a long reference run's.

Each answer is a fresh data dir and a closed warm-worker pool, as a new
`fwadvisor recommend … --mode measure` would start. Each answer also gives where its
time went: the probes of each step (search, paired rounds, training, exports; the
machine peak is the search's first probes), their count and wall time, the time
outside probes, and the share of the search's probe time spent starting a process,
importing the framework and building the model (`Phases`). Since 2026-12-06 a warm
worker's own start, and its compiler import, count in the setup of the probe that
caused them. ``search_first_probe_setup_s`` is the setup of each worker's first probe:
the worker's start, plus that probe's own import and build (and a compiler import, if
it used the compiler). With ``--compare-fresh``
every answer is asked twice, once with warm workers (the default) and once with fresh
processes,
interleaved (the order swapped every repeat), so the two wall times share the
machine's drift. The reference (``--reference-trials``/``--reference-rounds``, skipped
with ``--no-reference``) is one long warm run per model.

Run: PYTHONPATH=. .venv/bin/python benchmarks/time_to_verdict.py
       [--models lenet5,resnet18:small,resnet18,bert_tiny] [--profile mobile]
       [--trials 6] [--repeats 1] [--compare-fresh] [--no-reference] [--json]
Targets (issue 16, quiet 2-core machine): lenet5 <= 60 s, resnet18 <= 4 min,
bert_tiny <= 3 min, each verdict equal to the reference's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from probes.config import REPO_DATA, Settings
from probes.protocol import ProbeRequest, ProbeResult
from probes.runners.base import ProbeRunner
from probes.runners.warm import POOL, local_runner
from probes.spec import resolve_spec
from recommender.evidence.gatherer import Gatherer
from recommender.questionnaire import load_answers
from recommender.recommend import recommend

DEFAULT_MODELS = "lenet5,resnet18:small,resnet18,bert_tiny"


class TallyRunner:
    """Attributes each probe's wall time, and its start/import/build phases, to the
    step the progress lines last named."""

    def __init__(self, inner: ProbeRunner) -> None:
        self.inner, self.step = inner, "search"
        self.steps: dict[str, dict[str, float]] = {}
        self.probes: list[dict[str, Any]] = []  # one row per probe: where its time went

    def progress(self, line: str) -> None:
        self.step = getattr(line, "step", self.step)

    def run(self, request: ProbeRequest) -> ProbeResult:
        t0 = time.perf_counter()
        result = self.inner.run(request)
        row = self.steps.setdefault(self.step, {"probes": 0, "wall_s": 0.0, "setup_s": 0.0})
        row["probes"] += 1
        row["wall_s"] += time.perf_counter() - t0
        ph = result.measurement.phases if result.measurement else None
        setup = 0.0
        if ph is not None:
            setup = (ph.spawn_to_main_s or 0.0) + (ph.import_s or 0.0) + ph.build_s
            row["setup_s"] += setup
        self.probes.append(probe_row(self.step, request, result, time.perf_counter() - t0, setup))
        return result


def probe_row(
    step: str, request: ProbeRequest, result: ProbeResult, wall: float, setup: float
) -> dict[str, Any]:
    """One probe's wall time split into setup, first call, warm-up and the timed loop."""
    m = result.measurement
    t = m.timing if m else None
    return {
        "step": step,
        "kind": request.workload.kind,
        "framework": request.framework,
        "settings": m.settings_label if m else None,
        "status": result.status,
        "process": m.runtime.get("process") if m else None,
        "wall_s": wall,
        "setup_s": setup,
        "first_call_s": t.first_call_s if t else None,
        "warmup_iters": t.warmup_iters if t else None,
        "timed_s": t.total_s if t else None,
    }


def answer(model: str, profile: str, trials: int, rounds: int, fresh: bool) -> dict[str, Any]:
    """One recommendation from scratch: its verdict, wall time and the load around it."""
    name, _, size = model.partition(":")
    spec = resolve_spec(name, REPO_DATA / "zoo").resized(size or None)
    answers = load_answers(REPO_DATA / "examples" / f"{profile}.yaml")
    POOL.close_all()  # every answer starts its workers, as a new CLI process would
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        settings = Settings(data_dir=Path(d), fresh_processes=fresh)
        tally = TallyRunner(local_runner(settings.probe_timeout_s, fresh=fresh))
        g = Gatherer(settings, "measure", trials, rounds, runner=tally)
        rec = recommend(spec, answers, "measure", gatherer=g, progress=tally.progress)
    wall = time.perf_counter() - start
    in_probes = sum(r["wall_s"] for r in tally.steps.values())
    search = tally.steps.get("search", {"wall_s": 0.0, "setup_s": 0.0})
    POOL.close_all()
    return {
        "model": model,
        "processes": "fresh" if fresh else "warm",
        "trials": trials,
        "rounds": rounds,
        "choice": rec.choice,
        "leaning": rec.leaning,
        "confidence": rec.confidence,
        "wall_s": wall,
        "steps": tally.steps,
        "probes": tally.probes,
        "outside_probes_s": wall - in_probes,
        "search_setup_share": search["setup_s"] / search["wall_s"] if search["wall_s"] else None,
        "search_first_probe_setup_s": sum(
            p["setup_s"]
            for p in tally.probes
            if p["step"] == "search" and p["process"] == "warm (probe 1)"
        ),
        "load1_before": load_before,
        "load1_after": os.getloadavg()[0],
    }


def _say(row: dict[str, Any], quiet: bool) -> None:
    if not quiet:
        print(
            f"  {row['model']} {row['processes']} trials={row['trials']} "
            f"rounds={row['rounds']}: {row['choice']} (leaning {row['leaning']}, "
            f"{row['confidence']:.0%}) in {row['wall_s']:.1f} s, load "
            f"{row['load1_before']:.2f} -> {row['load1_after']:.2f}",
            flush=True,
        )
        for step, t in row["steps"].items():
            print(f"    {step}: {t['probes']} probes, {t['wall_s']:.1f} s", flush=True)
        share = row["search_setup_share"]
        print(
            f"    outside probes: {row['outside_probes_s']:.1f} s; start+import+build "
            f"{'-' if share is None else f'{share:.0%}'} of the search's probe time "
            f"({row['search_first_probe_setup_s']:.1f} s of it in warm workers' first probes)",
            flush=True,
        )


def run_model(args: argparse.Namespace, model: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for i in range(args.repeats):
        order = [False, True] if i % 2 == 0 else [True, False]
        for fresh in order if args.compare_fresh else [False]:
            rows.append(answer(model, args.profile, args.trials, args.rounds, fresh))
            _say(rows[-1], args.json)
    ref = None
    if not args.no_reference:
        ref = answer(model, args.profile, args.reference_trials, args.reference_rounds, False)
        _say(ref, args.json)
    walls = {
        how: [r["wall_s"] for r in rows if r["processes"] == how]
        for how in ("warm", "fresh")
        if any(r["processes"] == how for r in rows)
    }
    return {
        "model": model,
        "answers": rows,
        "reference": ref,
        "median_wall_s": {how: statistics.median(w) for how, w in walls.items()},
        "verdicts_equal_reference": None
        if ref is None
        else all(r["choice"] == ref["choice"] for r in rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=DEFAULT_MODELS, help="comma list, NAME[:SIZE]")
    ap.add_argument("--profile", default="mobile", help="data/examples/PROFILE.yaml")
    ap.add_argument("--trials", type=int, default=6, help="tuning trials per framework")
    ap.add_argument("--rounds", type=int, default=3, help="paired confirmation rounds")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument(
        "--compare-fresh", action="store_true", help="also with fresh processes (interleaved)"
    )
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--reference-trials", type=int, default=24)
    ap.add_argument("--reference-rounds", type=int, default=8)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = []
    for model in args.models.split(","):
        if not args.json:
            print(f"{model}:", flush=True)
        results.append(run_model(args, model))
    if args.json:
        print(json.dumps({"profile": args.profile, "results": results}, indent=2))
        return
    print("\n| model | median wall s (warm) | median wall s (fresh) | verdicts = reference |")
    print("|---|---:|---:|---|")
    for r in results:
        med = r["median_wall_s"]
        print(
            f"| {r['model']} | {med.get('warm', float('nan')):.1f} | "
            f"{med.get('fresh', float('nan')):.1f} | {r['verdicts_equal_reference']} |"
        )


if __name__ == "__main__":
    main()
