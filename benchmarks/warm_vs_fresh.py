"""Warm workers against fresh processes: the same probe, alternately in a warm worker
and in a fresh process (interleaved, the order swapped every pair: W F, F W, ...), so
that drift of the machine lands on both. Per model and framework it prints the paired
ratios of the medians (warm / fresh; 1.0 = the same), their geometric mean and range,
the memory peaks (above the probe's own baseline) and each probe's wall time.

Run: PYTHONPATH=. .venv/bin/python benchmarks/warm_vs_fresh.py [--pairs 3] [--json]
      [--models lenet5,mlp,resnet18:small] [--min-time 0.5] [--compiled] [--threads N]
``--compiled`` runs each framework's graph compiler (torch.compile, XLA): a warm
PyTorch worker imports torch.compile's modules once (`probes.worker.preload`), so its
peaks must still count them as a fresh process's do. ``--threads 1``: one worker serves
every thread count (each forked child sets its own), so a one-thread probe runs in
a worker that was not started for it.
Default: about 4 minutes on 2 cores. The first warm probe of each (model, framework)
starts its worker; later ones reuse it (its wall time is reported apart).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
from typing import Any

from probes.config import Settings
from probes.frameworks.facts import facts
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import FRAMEWORKS, Framework, InferWorkload, ProbeResult
from probes.runners.local import SubprocessRunner
from probes.runners.warm import WarmPool, WarmRunner
from probes.spec import ModelSpec, resolve_spec

DEFAULT_MODELS = "lenet5,mlp,resnet18:small"
NO_PEAK: dict[str, float | None] = {"cpu": None}  # efficiency is not compared here


def _spec(name: str) -> ModelSpec:
    model, _, size = name.partition(":")
    return resolve_spec(model, Settings().zoo_dir).resized(size or None)


def _row(r: ProbeResult) -> dict[str, float]:
    m = r.measurement
    assert r.status == "ok" and m and m.timing and m.memory, r.reason
    return {
        "median_s": m.timing.median_s,
        "iqr_rel": m.timing.iqr_s / m.timing.median_s,
        "peak_mib": m.memory.peak_rss_bytes / 2**20,
        "wall_s": r.wall_s or math.nan,
    }


def _pairs(
    spec: ModelSpec,
    fw: Framework,
    n: int,
    probers: dict[str, Prober],
    compiled: bool,
    threads: int | None,
) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {"warm": [], "fresh": []}
    knobs = {**(facts(fw).informed[0] if compiled else {}), "intra_threads": threads}
    settings = facts(fw).settings_cls(**knobs)
    for i in range(n):
        for how in ("warm", "fresh") if i % 2 == 0 else ("fresh", "warm"):
            r = probers[how].probe(spec, fw, InferWorkload(batch=1), settings, use_store=False)
            runs[how].append(_row(r))
    pairs = zip(runs["warm"], runs["fresh"], strict=True)
    ratios = [w["median_s"] / f["median_s"] for w, f in pairs]
    return {
        "ratios": ratios,
        "geomean_ratio": math.exp(statistics.fmean(math.log(x) for x in ratios)),
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
        "runs": runs,
    }


def _median(rows: list[dict[str, float]], field: str) -> float:
    return statistics.median(r[field] for r in rows)


def _line(name: str, fw: str, c: dict[str, Any]) -> str:
    w, f = c["runs"]["warm"], c["runs"]["fresh"]
    later = [r["wall_s"] for r in w[1:]] or [math.nan]
    return (
        f"| {name} | {fw} | {', '.join(f'{x:.3f}' for x in c['ratios'])} | "
        f"{c['geomean_ratio']:.3f} [{c['min_ratio']:.3f}, {c['max_ratio']:.3f}] | "
        f"{_median(w, 'median_s') * 1e3:.3f} / {_median(f, 'median_s') * 1e3:.3f} | "
        f"{_median(w, 'peak_mib'):.1f} / {_median(f, 'peak_mib'):.1f} | "
        f"{w[0]['wall_s']:.1f}, {statistics.median(later):.1f} / {_median(f, 'wall_s'):.1f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=DEFAULT_MODELS, help="comma list, NAME[:SIZE]")
    ap.add_argument("--pairs", type=int, default=3, help="warm/fresh pairs per row")
    ap.add_argument("--min-time", type=float, default=0.5, help="timed loop per probe (s)")
    ap.add_argument("--compiled", action="store_true", help="torch.compile and XLA")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    method = MeasureConfig(min_time_s=args.min_time)
    pool = WarmPool()
    probers = {
        "warm": Prober(WarmRunner(SubprocessRunner(), pool), measure=method, _peaks=NO_PEAK),
        "fresh": Prober(SubprocessRunner(), measure=method, _peaks=NO_PEAK),
    }
    load_before = os.getloadavg()[0]
    cases: list[dict[str, Any]] = []
    if not args.json:
        modes = "graph compilers" if args.compiled else "default settings"
        modes += f", {args.threads} thread(s)" if args.threads else ""
        print(
            f"{args.pairs} interleaved warm/fresh pairs per row, batch 1, {modes}, "
            f"min {args.min_time} s"
        )
        print(
            "\n| model | framework | warm/fresh ratios | geomean [min, max] | median ms "
            "warm / fresh | peak MiB warm / fresh | wall s warm (first, later) / fresh |"
        )
        print("|---|---|---|---|---:|---:|---:|")
    try:
        for name in args.models.split(","):
            spec = _spec(name)
            for fw in FRAMEWORKS:
                c = _pairs(spec, fw, args.pairs, probers, args.compiled, args.threads)
                cases.append({"model": name, "framework": fw, **c})
                if not args.json:
                    print(_line(name, fw, c), flush=True)
    finally:
        pool.close_all()
    load = {"load1_before": load_before, "load1_after": os.getloadavg()[0]}
    if args.json:
        print(
            json.dumps(
                {
                    "pairs": args.pairs,
                    "min_time_s": args.min_time,
                    "compiled": args.compiled,
                    "threads": args.threads,
                    **load,
                    "cases": cases,
                },
                indent=2,
            )
        )
    else:
        print(f"\n1-min load: {load['load1_before']:.2f} before, {load['load1_after']:.2f} after")


if __name__ == "__main__":
    main()
