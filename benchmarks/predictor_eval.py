"""Leave-one-model-out evaluation of the performance predictor (issue 6, part 4).

Each zoo model (both sizes together) is held out in turn; the predictor trains on the
rest of data/datasets/predictor_train.csv and predicts the held-out rows. Prints MAPE,
interval coverage and verdict agreement per method, then the default method's details.
Targets: latency MAPE <= 25%, verdict agreement >= 90%.

Run: .venv/bin/python benchmarks/predictor_eval.py [--methods "cost + trees,..."]
(method names: the keys of VARIANTS)
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

from recommender.predictor.dataset import DEFAULT_DATASET, load_dataset
from recommender.predictor.evaluation import EvalReport, default_factory, evaluate

# name -> estimator parameters over default_factory's (the cost base on the cost terms)
VARIANTS: dict[str, dict[str, Any]] = {
    "ridge": {"method": "linear", "terms": ()},
    "ridge + trees": {"method": "hybrid", "terms": ()},
    "trees": {"method": "gbm"},
    "cost": {"method": "linear"},
    # as before: trees with min_samples_leaf 5, one conformal margin for both frameworks
    "cost + trees (before: leaf 5; one margin)": {
        "method": "hybrid",
        "leaf_sizes": (),
        "min_samples_leaf": 5,
        "calibrate_by": None,
    },
    "cost + trees": {"method": "hybrid"},
}
DEFAULT = "cost + trees"  # what recommender.predictor.instant uses


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--methods", default=",".join(VARIANTS))
    args = ap.parse_args()
    ds = load_dataset(args.data)
    fws = Counter(r["framework"] for r in ds.rows)
    print(
        f"{len(ds.rows)} rows ({fws['torch']} torch, {fws['tensorflow']} tensorflow), "
        f"{len(set(ds.groups))} models, {len({r['env_key'] for r in ds.rows})} machine(s)\n"
    )
    print(
        "| method | latency MAPE | (default settings) | latency median APE | memory MAPE | "
        "memory median APE | latency coverage (torch / TF) | memory coverage | "
        "verdict agreement | agreement, ratio ≥ 1.1 | ratio coverage (sigmas independent) | s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    reports: dict[str, EvalReport] = {}
    for method in args.methods.split(","):
        t0 = time.perf_counter()
        rep = evaluate(ds, partial(default_factory, **VARIANTS[method]))
        reports[method] = rep
        n_clear = sum(v.measured_ratio >= 1.1 for v in rep.verdicts)
        print(
            f"| {method} | {_pct(rep.latency_mape)} | {_pct(rep.latency_mape_default)} | "
            f"{_pct(rep.latency_median_ape)} | {_pct(rep.memory_mape)} | "
            f"{_pct(rep.memory_median_ape)} | "
            f"{_pct(rep.latency_coverage)} ({_pct(rep.latency_coverage_by_framework.get('torch'))}"
            f" / {_pct(rep.latency_coverage_by_framework.get('tensorflow'))}) | "
            f"{_pct(rep.memory_coverage)} | "
            f"{_pct(rep.verdict_agreement)} ({len(rep.verdicts)}) | "
            f"{_pct(rep.verdict_agreement_clear)} ({n_clear}) | {_pct(rep.ratio_coverage)} "
            f"({_pct(rep.ratio_coverage_independent)}) | "
            f"{time.perf_counter() - t0:.1f} |",
            flush=True,
        )
    name = DEFAULT if DEFAULT in reports else next(iter(reports))
    best = reports[name]
    print(f"\nnominal interval coverage {_pct(best.nominal_coverage)}\n")
    print(
        f"{name}: held-out torch/TF latency error correlation (matched pairs) "
        f"{best.latency_error_correlation:+.2f}; each fit's own estimate, mean over folds "
        f"{best.latency_rho:+.2f}"
    )
    print(
        f"{name}: mean confidence of the predicted verdicts {_pct(best.verdict_confidence)} "
        f"(agreement {_pct(best.verdict_agreement)})"
    )
    print(
        f"{name}: diagnostic only, latency MAPE of median x exp(-sigma^2), the MAPE-optimal "
        f"point of a log-normal (used nowhere): {_pct(best.latency_mape_optimal)}\n"
    )
    print(f"per held-out model ({name}):\n")
    print("| model | rows | latency MAPE | memory MAPE |")
    print("|---|---:|---:|---:|")
    for m in best.per_model:
        print(f"| {m.model} | {m.rows} | {_pct(m.latency_mape)} | {_pct(m.memory_mape)} |")
    wrong = [v for v in best.verdicts if v.measured != v.predicted]
    print(f"\nverdicts the predictor gets wrong ({len(wrong)} of {len(best.verdicts)}):\n")
    for v in wrong:
        print(
            f"- {v.model}/{v.size} batch {v.batch}: measured {v.measured} "
            f"({v.measured_ratio:.2f}x), predicted {v.predicted}"
        )


if __name__ == "__main__":
    main()
