"""Tuner efficiency: the tuner's best with a 10% trial budget against the exhaustive grid.

Phase 1 (grid) measures every valid point of a benchmark search space for real, per
model and framework, with the throughput objective (batch in the space), in warm
workers as the product measures. Results land in a results store, so a rerun measures
nothing twice.
Phase 2 (replay) runs the real tuner (same code as `fwadvisor tune`) against a runner
that answers from the grid's measurements: each sampler and seed then sees exactly the
numbers the grid saw, and "reached X% of the optimum" is exact. The variant "one-knob
starts (before)" replays the informed starts as they were before 2026-12-06 (one knob
per start), on the same grid. The variant "tpe + informed + predicted" adds the
configuration this machine's per-operator calibration predicts fastest at the largest
batch (as a measure-mode answer's search does); it runs only when the data dir holds
this machine's calibration (copy one in, or run `fwadvisor calibrate`).

The benchmark space is the tuner's space minus inter_threads and minus the
max-autotune-no-cudagraphs compile mode: torch {threads, mode (eager/compile), precision,
channels_last (CNN), inference_mode, batch}; tensorflow {threads, mode
(eager/function/xla), precision, onednn, batch}. A compile point costs 10-40 s here (its
first call compiles); max-autotune would also benchmark candidate kernels per shape, and
doubling the compile points would put the grid well past an hour. ``--eager-only`` gives
the space before 2026-12-06 (no torch.compile).

Run: .venv/bin/python benchmarks/tuner_efficiency.py [--seeds 10] [--min-time 0.3]
      [--eager-only]
The grid's points are stored, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

from probes.config import Settings
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import FRAMEWORKS, Framework, InferWorkload, ProbeRequest, ProbeResult
from probes.runners.warm import local_runner
from probes.settings import FrameworkSettings, default_settings
from probes.spec import ModelSpec, build_graph, resolve_spec
from probes.store import ResultStore
from probes.tune.compare import tune
from probes.tune.models import TuneConfig
from probes.tune.space import search_space, to_params, to_settings
from probes.tune.study import informed_starts
from recommender.predictor.choose import predicted_fastest

MODELS = [("resnet18", "CNN"), ("text_lstm", "RNN"), ("bert_tiny", "transformer")]
BATCHES = [1, 8, 32]


def bench_space(fw: Framework, spec: ModelSpec, eager_only: bool = False) -> dict[str, list[Any]]:
    space = search_space(fw, build_graph(spec), "infer", "throughput", BATCHES)
    space.pop("inter_threads")
    if fw == "torch" and eager_only:
        space.pop("compile_mode")
        space["mode"] = ["eager"]
    elif fw == "torch":
        space["compile_mode"] = ["default"]
    return space


def key(fw: str, params: dict[str, Any]) -> str:
    return fw + repr(sorted(params.items()))


def run_grid(
    spec: ModelSpec, fw: Framework, prober: Prober, space: dict[str, list[Any]]
) -> dict[str, ProbeResult]:
    grid: dict[str, ProbeResult] = {}
    for combo in itertools.product(*space.values()):
        params = dict(zip(space, combo, strict=True))
        s = to_settings(fw, params)
        grid[key(fw, params)] = prober.probe(spec, fw, InferWorkload(batch=params["batch"]), s)
    return grid


class ReplayRunner:
    """Answers each probe with the grid's measurement of the same point."""

    def __init__(self, grid: dict[str, ProbeResult], space: dict[str, list[Any]]) -> None:
        self.grid, self.space = grid, space

    def run(self, request: ProbeRequest) -> ProbeResult:
        s = request.effective_settings()
        params = to_params(s, self.space, getattr(request.workload, "batch", None))
        hit = self.grid.get(key(request.framework, params or {}))
        if hit is None:
            return ProbeResult(
                status="unsupported",
                framework=request.framework,
                reason="outside the benchmark grid",
            )
        m, stop = hit.measurement, request.measure.stop_above_s
        if m and m.timing and stop and m.timing.median_s > stop:  # what the worker would do
            t = m.timing.model_copy(update={"stopped_early": True})
            return hit.model_copy(update={"measurement": m.model_copy(update={"timing": t})})
        return hit


def best_tput(grid: dict[str, ProbeResult]) -> tuple[float, str]:
    ok = [
        (
            r.measurement.throughput_sps or 0.0,
            r.measurement.settings_label + f" b={r.measurement.batch}",
        )
        for r in grid.values()
        if r.status == "ok" and r.measurement
    ]
    return max(ok)


Variant = tuple[str, str, bool]  # label, sampler, informed starts
BEFORE = "tpe + one-knob starts (before)"
#: informed starts plus the calibration's predicted-fastest configuration (as a
#: measure-mode answer's search has them); run only when the data dir holds this
#: machine's calibration (`fwadvisor calibrate`)
PREDICTED = "tpe + informed + predicted"
STARTS = "probes.tune.search.informed_starts"  # where the tuner looks them up
VARIANTS: list[Variant] = [
    ("tpe + informed (default)", "tpe", True),
    (PREDICTED, "tpe", True),
    (BEFORE, "tpe", True),
    ("tpe", "tpe", False),
    ("random + informed", "random", True),
    ("random", "random", False),
]


def one_knob_starts(
    default: dict[str, Any],
    space: dict[str, list[Any]],
    native_bf16: bool,
    modes: tuple[dict[str, Any], ...] = (),
) -> list[dict[str, Any]]:
    """The informed starts before 2026-12-06, for comparison: the largest batch, then
    each graph compiler, then bf16, one knob at a time."""
    base = dict(default)
    if "batch" in space:
        base["batch"] = max(space["batch"])
    out = [base]
    out += [{**base, **m} for m in modes if all(k in space and v in space[k] for k, v in m.items())]
    if native_bf16 and "bf16" in space.get("precision", []):
        out.append({**base, "precision": "bf16"})
    unique = [p for i, p in enumerate(out) if p not in out[:i]]
    return [p for p in unique if p != default]


def replay(
    spec: ModelSpec,
    fw: Framework,
    grid: dict[str, ProbeResult],
    space: dict[str, list[Any]],
    variant: Variant,
    budget: int,
    seed: int,
    picks: dict[Framework, list[FrameworkSettings]] | None = None,
) -> float:
    """Share of the grid optimum that the tuner's best reaches with ``budget`` trials."""
    _, sampler, informed = variant
    cfg = TuneConfig(
        objective="throughput",
        batches=BATCHES,
        n_trials=budget,
        sampler=sampler,
        seed=seed,
        warm_start=False,
        informed_starts=informed,
    )
    starts = one_knob_starts if variant[0] == BEFORE else informed_starts
    with tempfile.TemporaryDirectory() as tmp, mock.patch(STARTS, starts):
        rep = tune(
            spec,
            cfg,
            Prober(ReplayRunner(grid, space)),
            f"sqlite:///{Path(tmp)}/s.db",
            (fw,),
            spaces={fw: space},
            predicted=picks if variant[0] == PREDICTED else None,
        )
    best = rep.frameworks[0].best
    return (best.values[0] if best and best.values else 0.0) / best_tput(grid)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--budgets", default="0.1,0.2,0.3", help="shares of the grid's points")
    ap.add_argument("--eager-only", action="store_true", help="leave torch.compile out")
    args = ap.parse_args()
    shares = [float(b) for b in args.budgets.split(",")]
    settings = Settings()
    store = ResultStore(settings.data_dir / "bench" / "tuner_grid.sqlite")
    # Bounded per point: slow corners (TF eager bf16 at batch 32) would take minutes each.
    method = MeasureConfig(min_time_s=args.min_time, min_iters=5, max_warmup_s=2.0, max_time_s=3.0)
    prober = Prober(local_runner(300.0), store, method)  # warm workers, as the product
    results: dict[tuple[str, float], list[float]] = {}
    calibrated = bool(predicted_fastest(resolve_spec("mlp", settings.zoo_dir), 1, settings))
    variants = [v for v in VARIANTS if calibrated or v[0] != PREDICTED]
    if not calibrated:
        print(f"No calibration of this machine in {settings.data_dir}: no '{PREDICTED}' row.")
    head = " | ".join(f"{v[0]}" for v in variants)
    print(
        f"Per model: median (worst) share of the grid optimum over {args.seeds} seeds, "
        f"at a {shares[0]:.0%} budget\n"
    )
    print(
        "| model | framework | grid points | budget | grid optimum (samples/s) | "
        f"default (samples/s) | optimum/default | {head} |"
    )
    print("|---|---|---:|---:|---|---:|---:|" + "---:|" * len(variants))
    for name, _kind in MODELS:
        spec = resolve_spec(name, settings.zoo_dir).resized("small")
        for fw in FRAMEWORKS:
            space = bench_space(fw, spec, args.eager_only)
            grid = run_grid(spec, fw, prober, space)
            opt, opt_label = best_tput(grid)
            dflt = grid[key(fw, to_params(default_settings(fw), space, BATCHES[0]) or {})]
            d_tput = dflt.measurement.throughput_sps if dflt.measurement else None
            picks = predicted_fastest(spec, max(BATCHES), settings)
            cells = []
            for share in shares:
                budget = max(1, math.floor(share * len(grid)))
                for v in variants:
                    found = [
                        replay(spec, fw, grid, space, v, budget, s, picks)
                        for s in range(args.seeds)
                    ]
                    results.setdefault((v[0], share), []).extend(found)
                    if share == shares[0]:
                        cells.append(
                            f"{100 * statistics.median(found):.1f}% ({100 * min(found):.1f}%)"
                        )
            print(
                f"| {name} | {fw} | {len(grid)} | {max(1, math.floor(shares[0] * len(grid)))}"
                f" | {opt:,.0f} ({opt_label}) | {d_tput or 0:,.0f} | "
                f"{opt / (d_tput or math.inf):.2f}x | " + " | ".join(cells) + " |",
                flush=True,
            )
    print(
        "\nAll models, frameworks and seeds: median share of the grid optimum (share of runs "
        ">= 97%)\n"
    )
    print("| variant | " + " | ".join(f"{s:.0%} budget" for s in shares) + " |")
    print("|---|" + "---:|" * len(shares))
    for v in variants:
        cells = []
        for s in shares:
            vals = results[(v[0], s)]
            hit = sum(x >= 0.97 for x in vals) / len(vals)
            cells.append(f"{100 * statistics.median(vals):.1f}% ({100 * hit:.0f}%)")
        print(f"| {v[0]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
