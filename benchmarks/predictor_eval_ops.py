"""Leave-one-family-out evaluation of the per-operator predictor on THIS machine (issue 18).

The set: every zoo model (its ``small`` size where it has one) plus generated variants
(other widths and resolutions, ``recommender/predictor/variants.py``); a family is a
zoo model with its variants. The kernel models come from this machine's calibration
(``fwadvisor calibrate``), which never sees a model; per fold, only the whole-model
correction, the conformal scales and the memory refit are fitted, on the other
families' measurements. ``--measure`` first measures the reference latencies through
the results store (resumable: a rerun skips what is stored), defaults first, then the
tuned configurations, until ``--budget-min``.

Prints, for default settings and for each framework's best measured tuned mode: latency
MAPE, share within +-10%, verdict agreement where the measured gap >= 15%, Spearman of
predicted vs measured torch/TF ratio, memory MAPE, interval coverage. ``--json`` too.

Run: PYTHONPATH=. .venv/bin/python benchmarks/predictor_eval_ops.py --measure --budget-min 30
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from probes.calibrate.grid import CONFIGS, DEFAULT_CONFIGS
from probes.config import Settings
from probes.measure.environment import environment
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import FRAMEWORKS, InferWorkload
from probes.runners.warm import local_runner
from probes.spec import ModelSpec, analyze, build_graph, resolve_spec, zoo_names
from probes.store import ResultStore
from recommender.predictor.calibrated import CalibratedPredictor
from recommender.predictor.choose import choose
from recommender.predictor.corrections import (
    STALL,
    FullRow,
    fit_corrections,
    specs_graphs,
    stalled_rows,
    store_rows,
)
from recommender.predictor.variants import variants
from service.cli.options import positive_int

GAP = 1.15


def family_specs(
    zoo: Path, widths: tuple[float, ...], scales: tuple[float, ...], max_mflops: float
) -> list[tuple[str, ModelSpec]]:
    out = []
    for name in zoo_names(zoo):
        spec = resolve_spec(name, zoo)
        base = spec.resized("small") if "small" in spec.sizes else spec
        for s in [base, *variants(base, widths, scales)]:
            if analyze(build_graph(s)).flops <= max_mflops * 1e6:
                out.append((name, s))
    return out


def measure(
    items: list[tuple[str, ModelSpec]],
    configs: list[str],
    batches: list[int],
    data_dir: Path,
    budget_min: float,
    rounds: int = 1,
) -> None:
    prober = Prober(
        local_runner(300.0),  # warm workers, as the product measures
        ResultStore(data_dir / "results.sqlite"),
        MeasureConfig(min_time_s=0.3, max_warmup_s=3.0),
    )
    start, n = time.perf_counter(), 0
    # defaults first, in pairs (both frameworks of a question together), batch by batch
    tiers = [
        [k for k in configs if k in DEFAULT_CONFIGS],
        [k for k in configs if k not in DEFAULT_CONFIGS],
    ]
    # Round r measures every question once more, under seed r (another stored result):
    # a question's repeats lie a whole round apart, so they sample the machine's drift.
    plan = [
        (k, b, s, r)
        for r in range(rounds)
        for tier in tiers
        for b in batches
        for _, s in items
        for k in tier
    ]
    for key, b, spec, rnd in plan:
        if time.perf_counter() - start > budget_min * 60:
            print(
                f"budget of {budget_min:g} min reached after {n} new probes; rerun to continue",
                flush=True,
            )
            return
        stored = prober.from_store
        r = prober.probe(
            spec, CONFIGS[key].framework, InferWorkload(batch=b), CONFIGS[key], seed=rnd
        )
        if prober.from_store == stored:
            n += 1
            t = (
                r.measurement.timing.median_s * 1e3
                if r.measurement and r.measurement.timing
                else float("nan")
            )
            print(
                f"  [{time.perf_counter() - start:5.0f} s] round {rnd + 1} {key:<24} b{b:<3} {spec.name:<24} {r.status} {t:.3g} ms",  # noqa: E501
                flush=True,
            )


def _spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3:
        return None
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def evaluate(
    base: CalibratedPredictor, rows: list[FullRow], names: dict[int, str]
) -> dict[str, object]:
    preds: dict[int, tuple[float, float, float, float | None]] = {}
    for fam in sorted({r.model for r in rows}):
        p = CalibratedPredictor(
            models=base.models, label=base.label, env_matches=True, trained_on=base.trained_on
        )
        fit_corrections(p, [r for r in rows if r.model != fam])
        for i, r in enumerate(rows):
            if r.model == fam:
                q = p.predict(r.graph, r.framework, r.batch, CONFIGS[r.key])  # type: ignore[arg-type]
                mem = q.memory_bytes.median if r.peak_bytes is not None else None
                preds[i] = (q.latency_s.median, q.latency_s.lo, q.latency_s.hi, mem)
    default = [i for i, r in enumerate(rows) if r.key in DEFAULT_CONFIGS]
    best: dict[tuple[int, int, str], int] = {}
    for i, r in enumerate(rows):
        if r.key not in DEFAULT_CONFIGS:
            k = (id(r.graph), r.batch, r.framework)
            if k not in best or r.latency_s < rows[best[k]].latency_s:
                best[k] = i
    return {
        "default": _metrics(rows, preds, default, names),
        "best tuned": _metrics(rows, preds, list(best.values()), names),
    }


def _metrics(
    rows: list[FullRow],
    preds: dict[int, tuple[float, float, float, float | None]],
    idx: list[int],
    names: dict[int, str],
) -> dict[str, object]:
    if not idx:
        return {"rows": 0}
    ape = [abs(preds[i][0] / rows[i].latency_s - 1) for i in idx]
    cover = [preds[i][1] <= rows[i].latency_s <= preds[i][2] for i in idx]
    mem = [
        abs(m / peak - 1)
        for i in idx
        if (m := preds[i][3]) is not None and (peak := rows[i].peak_bytes)
    ]
    pair: dict[tuple[int, int], dict[str, int]] = {}
    for i in idx:
        pair.setdefault((id(rows[i].graph), rows[i].batch), {})[rows[i].framework] = i
    ratios = [
        (
            rows[p["torch"]].latency_s / rows[p["tensorflow"]].latency_s,
            preds[p["torch"]][0] / preds[p["tensorflow"]][0],
        )
        for p in pair.values()
        if len(p) == 2
    ]
    decided = [(m, q) for m, q in ratios if m >= GAP or m <= 1 / GAP]
    worst = sorted(idx, key=lambda i: -abs(math.log(preds[i][0] / rows[i].latency_s)))[:5]
    return {
        "rows": len(idx),
        "latency_mape": float(np.mean(ape)),
        "latency_median_ape": float(np.median(ape)),
        "latency_mape_by_framework": {
            fw: float(
                np.mean([a for a, i in zip(ape, idx, strict=True) if rows[i].framework == fw])
            )
            for fw in FRAMEWORKS
            if any(rows[i].framework == fw for i in idx)
        },
        "within_10pct": float(np.mean([a <= 0.10 for a in ape])),
        "interval_coverage": float(np.mean(cover)),
        "pairs": len(ratios),
        "pairs_gap_15pct": len(decided),
        "verdict_agreement": float(np.mean([(m > 1) == (q > 1) for m, q in decided]))
        if decided
        else None,
        "ratio_spearman": _spearman([m for m, _ in ratios], [q for _, q in ratios]),
        "memory_mape": float(np.mean(mem)) if mem else None,
        "reference_repeatability": _repeatability([rows[i] for i in idx]),
        "worst": [
            f"{names[id(rows[i].graph)]} {rows[i].key} b{rows[i].batch}: predicted {preds[i][0] * 1e3:.3g} ms, measured {rows[i].latency_s * 1e3:.3g} ms"  # noqa: E501
            for i in worst
        ],
    }


def _repeatability(rows: list[FullRow]) -> dict[str, object] | None:
    """How well the references agree with themselves: each repeat of a question against
    the median of its other repeats. No predictor can beat this on these references."""
    ape = [
        abs(x / float(np.median(r.repeats[:j] + r.repeats[j + 1 :])) - 1)
        for r in rows
        if len(r.repeats) >= 2
        for j, x in enumerate(r.repeats)
    ]
    if not ape:
        return None
    return {
        "questions": sum(len(r.repeats) >= 2 for r in rows),
        "mape": float(np.mean(ape)),
        "within_10pct": float(np.mean([a <= 0.10 for a in ape])),
    }


def _pct(x: object) -> str:
    return "-" if not isinstance(x, float) else f"{100 * x:.1f}%"


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--measure", action="store_true", help="measure missing reference latencies first"
    )
    ap.add_argument("--budget-min", type=float, default=30.0)
    ap.add_argument(
        "--rounds",
        type=positive_int,
        default=1,
        help="measure every reference this many times, a round apart; rows are their median",
    )
    ap.add_argument(
        "--configs", default="torch/eager,tensorflow/function,torch/eager-t1,tensorflow/xla"
    )
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--widths", default="0.5")
    ap.add_argument("--scales", default="1.5")
    ap.add_argument("--max-mflops", type=float, default=400.0)
    ap.add_argument("--reference", choices=["median", "min"], default="median")
    ap.add_argument(
        "--clean-only", action="store_true", help="leave out rows whose probe was contended"
    )
    ap.add_argument(
        "--drop-stalled",
        action="store_true",
        help=f"leave out rows {STALL:g}x slower than the same question at one thread",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(list(argv) if argv is not None else None)
    settings = Settings()

    def floats(t: str) -> tuple[float, ...]:
        return tuple(float(x) for x in t.split(",") if x)

    items = family_specs(
        settings.zoo_dir, floats(args.widths), floats(args.scales), args.max_mflops
    )
    configs = [c for c in args.configs.split(",") if c]
    batches = [int(b) for b in args.batches.split(",")]
    if args.measure:
        print(
            f"{len(items)} specs x {len(configs)} configurations x {len(batches)} batches; load {os.getloadavg()[0]:.1f}",  # noqa: E501
            flush=True,
        )
        measure(items, configs, batches, settings.data_dir, args.budget_min, args.rounds)
    choice = choose(settings)
    if choice.predictor is None or not choice.predictor.env_matches:
        raise SystemExit("no calibration of this machine: run `fwadvisor calibrate` first")
    known = specs_graphs(items)
    names = {id(g): s for s, (_, g) in zip((s.name for _, s in items), known.values(), strict=True)}
    rows = [
        r
        for r in store_rows(
            ResultStore(settings.data_dir / "results.sqlite"),
            environment().key(),
            known,
            args.reference,
        )
        if r.key in configs and not (args.clean_only and r.contended)
    ]
    stalled = stalled_rows(rows) if args.drop_stalled else set()
    rows = [r for i, r in enumerate(rows) if i not in stalled]
    out = {
        "machine": f"{environment().cpu_model}, {environment().cores_available} cores",
        "load_1min": os.getloadavg()[0],
        "calibration": choice.calibration,
        "reference": args.reference,
        "clean_only": args.clean_only,
        "dropped_stalled": len(stalled),
        "specs": len(items),
        "families": len({f for f, _ in items}),
        "rows": len(rows),
        "results": evaluate(choice.predictor, rows, names),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    _print_tables(out, args, len(rows), len(stalled))


def _print_tables(
    out: dict[str, object], args: argparse.Namespace, rows: int, stalled: int
) -> None:
    print(
        f"{out['machine']}, load {out['load_1min']:.1f}; {out['calibration']}; reference: {args.reference}"  # noqa: E501
    )
    clean = " (uncontended probes only)" if args.clean_only else ""
    if args.drop_stalled:
        clean += f" ({stalled} stalled rows left out)"
    print(f"{rows} measured rows{clean}, {out['specs']} specs in {out['families']} families\n")
    print(
        "| settings | rows | latency MAPE (torch / TF) | median APE | within ±10% | verdict agreement (gap ≥ 15%) | Spearman ratio | memory MAPE | 80% interval coverage |"  # noqa: E501
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    res = out["results"]
    assert isinstance(res, dict)
    for group, m in res.items():
        if not m.get("rows"):
            continue
        agree = f"{_pct(m['verdict_agreement'])} ({m['pairs_gap_15pct']} pairs)"
        rho = "-" if m["ratio_spearman"] is None else f"{m['ratio_spearman']:.2f}"
        by = " / ".join(_pct(v) for v in m["latency_mape_by_framework"].values())
        print(
            f"| {group} | {m['rows']} | {_pct(m['latency_mape'])} ({by}) | {_pct(m['latency_median_ape'])} | {_pct(m['within_10pct'])} | {agree} | {rho} | {_pct(m['memory_mape'])} | {_pct(m['interval_coverage'])} |"  # noqa: E501
        )
    for group, m in res.items():
        if rep := m.get("reference_repeatability"):
            print(
                f"  references against themselves ({group}, {rep['questions']} questions measured more than once): MAPE {_pct(rep['mape'])}, within ±10% {_pct(rep['within_10pct'])}"  # noqa: E501
            )
    for group, m in res.items():
        for w in m.get("worst", []):
            print(f"  worst ({group}): {w}")


if __name__ == "__main__":
    main()
