"""Leave-one-model-out evaluation of the performance predictor.

Every zoo model (both sizes together) is held out in turn; the predictor is trained on
the others and predicts the held-out rows. Reported: MAPE of the median for latency and
memory, the share of measured values inside [lo, hi] (overall and per framework), how
often the predicted faster framework (default settings on both sides, the comparison
predict mode makes) is the measured one, and whether the uncertainty predict mode puts
on the torch/TensorFlow ratio covers the measured ratio.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from probes.settings import default_settings
from recommender.predictor.answers import Z80, shared_fraction
from recommender.predictor.dataset import Dataset, settings_from_fields
from recommender.predictor.estimator import PerfPredictor
from recommender.predictor.features import (
    FEATURES,
    MODIFIER_COLUMNS,
    SETTING_COLUMNS,
    TERM_COLUMNS,
    TERM_GROUPS,
)

Floats = npt.NDArray[np.float64]
Factory = Callable[[], PerfPredictor]
# Candidates for the residual trees' min_samples_leaf, chosen inside each fit by
# out-of-fold error (PerfPredictor.leaf_sizes): 5 lets a leaf fit one model's rows.
LEAF_SIZES = (5, 10, 20, 40)
# Settings a torch row and a TensorFlow row can share; any other setting makes a row
# framework-specific (tf XLA has no torch counterpart).
SHARED_SETTINGS = ("log2_threads", "bf16")


def default_factory(**params: Any) -> PerfPredictor:
    """The predictor's estimator: the cost base on ``TERM_COLUMNS``, priced by
    ``MODIFIER_COLUMNS`` (``params`` override the rest, e.g. ``method``)."""
    cols = {c: i for i, c in enumerate(FEATURES)}
    base: dict[str, Any] = {
        "terms": tuple(cols[c] for c in TERM_COLUMNS),
        "modifiers": tuple(cols[c] for c in MODIFIER_COLUMNS),
        "term_groups": TERM_GROUPS,
        "leaf_sizes": LEAF_SIZES,
        "calibrate_by": cols["is_tf"],  # one conformal margin per framework
    }
    return PerfPredictor(**{**base, **params})


@dataclass(frozen=True)
class HeldOut:
    """Out-of-model predictions (log10), aligned with the dataset's rows."""

    latency: tuple[Floats, Floats, Floats]  # lo, median, hi
    memory: tuple[Floats, Floats, Floats]
    # Per row, the error correlation its fold's predictor estimated (pair_correlation
    # of the fold's own out-of-fold medians): what predict mode would use.
    latency_rho: Floats
    memory_rho: Floats


class Verdict(BaseModel):
    model: str
    size: str
    batch: int
    measured: str
    predicted: str
    measured_ratio: float  # slower / faster, measured
    confidence: float  # P(predicted verdict) under the predicted ratio's uncertainty


class ModelScore(BaseModel):
    model: str
    rows: int
    latency_mape: float
    memory_mape: float


class EvalReport(BaseModel):
    rows: int
    models: int
    latency_mape: float
    latency_mape_default: float  # rows measured at the framework's default settings
    latency_median_ape: float
    memory_mape: float
    memory_median_ape: float
    latency_mape_optimal: float  # diagnostic: median x exp(-sigma^2), not used anywhere
    latency_coverage: float
    latency_coverage_by_framework: dict[str, float]
    memory_coverage: float
    nominal_coverage: float
    verdict_agreement: float
    verdict_agreement_clear: float | None  # only pairs whose measured ratio is >= 1.1
    verdict_confidence: float  # mean confidence of the predicted verdicts
    ratio_coverage: float  # measured log(TF/torch) inside predict mode's 80% interval
    ratio_coverage_independent: float  # the same with the two sigmas independent
    latency_error_correlation: float  # of held-out torch and TF errors, matched pairs
    latency_rho: float  # mean over folds of the correlation each fit estimated
    verdicts: list[Verdict]
    per_model: list[ModelScore]


def matched_pairs(ds: Dataset) -> list[tuple[int, int]]:
    """(torch row, tensorflow row) asking the same question of both frameworks: the same
    model, size and batch, the same threads and precision, and no other setting changed
    from the framework's defaults."""
    cols = [FEATURES.index(c) for c in SETTING_COLUMNS if c not in SHARED_SETTINGS]
    shared = [FEATURES.index(c) for c in SHARED_SETTINGS]
    found: dict[tuple[object, ...], dict[str, int]] = {}
    for i, r in enumerate(ds.rows):
        if np.any(ds.X[i, cols] != 0):
            continue
        key = (r["model"], r["size"], r["batch"], *ds.X[i, shared].tolist())
        found.setdefault(key, {})[r["framework"]] = i
    return [(d["torch"], d["tensorflow"]) for d in found.values() if len(d) == 2]


def pair_correlation(errors: Floats, pairs: list[tuple[int, int]]) -> float:
    """Pearson correlation of the torch and the TensorFlow error over matched pairs (0
    when there are fewer than 3 pairs or no spread; NaN errors are skipped)."""
    e = np.array([(errors[t], errors[f]) for t, f in pairs]).reshape(-1, 2)
    e = e[~np.isnan(e).any(axis=1)]
    if len(e) < 3 or np.any(e.std(axis=0) == 0):
        return 0.0
    return float(np.corrcoef(e[:, 0], e[:, 1])[0, 1])


def oof_correlation(est: PerfPredictor, y: Floats, pairs: list[tuple[int, int]]) -> float:
    """The torch/TensorFlow error correlation of a fitted predictor, from its own
    out-of-fold medians on its training rows (``y``, ``pairs`` index those rows)."""
    return pair_correlation(est.oof_median_ - y, pairs)


def lomo(ds: Dataset, make: Factory = default_factory) -> HeldOut:
    """Fit without each model, predict its rows."""
    groups = np.array(ds.groups)
    n = len(groups)
    out = {t: [np.empty(n) for _ in range(3)] for t in ("lat", "mem")}
    rho = {t: np.empty(n) for t in ("lat", "mem")}
    for g in sorted(set(groups.tolist())):
        test = groups == g
        train = ~test
        pairs = matched_pairs(ds.subset(train))
        for t, y in (("lat", ds.log_latency), ("mem", ds.log_memory)):
            est = make().fit(ds.X[train], y[train], groups=groups[train])
            lo, hi = est.predict_interval(ds.X[test])
            out[t][0][test], out[t][1][test], out[t][2][test] = lo, est.predict(ds.X[test]), hi
            rho[t][test] = oof_correlation(est, y[train], pairs)
    lat, mem = out["lat"], out["mem"]
    return HeldOut((lat[0], lat[1], lat[2]), (mem[0], mem[1], mem[2]), rho["lat"], rho["mem"])


def mape(log_true: Floats, log_pred: Floats) -> float:
    """Mean absolute percentage error of the values (not their logs)."""
    true, pred = 10.0**log_true, 10.0**log_pred
    return float(np.mean(np.abs(pred - true) / true))


def median_ape(log_true: Floats, log_pred: Floats) -> float:
    return float(np.median(np.abs(10.0 ** (log_pred - log_true) - 1)))


def is_default(row: dict[str, str]) -> bool:
    fw = row["framework"]
    return settings_from_fields(fw, row) == default_settings(fw)


def coverage(log_true: Floats, lo: Floats, hi: Floats) -> float:
    return float(np.mean((log_true >= lo) & (log_true <= hi)))


def default_pairs(ds: Dataset) -> list[tuple[int, int]]:
    """(torch row, tensorflow row) with default settings, per (model, size, batch)."""
    found: dict[tuple[str, str, str], dict[str, int]] = {}
    for i, r in enumerate(ds.rows):
        if is_default(r):
            found.setdefault((r["model"], r["size"], r["batch"]), {})[r["framework"]] = i
    return [(d["torch"], d["tensorflow"]) for d in found.values() if len(d) == 2]


def ratio_sigma(held: HeldOut, ti: int, fi: int, correlated: bool = True) -> float:
    """The log10 standard deviation of log(TF/torch) that predict mode implies: each
    side's sigma from its 80% interval, correlated by the fold's error correlation
    (``correlated=False``: independent, as predict mode had it before)."""
    lo, _, hi = held.latency
    st, sf = (hi[ti] - lo[ti]) / (2 * Z80), (hi[fi] - lo[fi]) / (2 * Z80)
    c = shared_fraction(float(held.latency_rho[ti])) if correlated else 0.0
    return float(np.sqrt(max(st**2 + sf**2 - 2 * c * st * sf, 0.0)))


def verdicts(ds: Dataset, held: HeldOut) -> list[Verdict]:
    log_pred = held.latency[1]
    out = []
    for ti, fi in default_pairs(ds):
        t, f = ds.log_latency[ti], ds.log_latency[fi]
        r = ds.rows[ti]
        gap = abs(log_pred[fi] - log_pred[ti]) / max(ratio_sigma(held, ti, fi), 1e-12)
        out.append(
            Verdict(
                model=r["model"],
                size=r["size"],
                batch=int(r["batch"]),
                measured="torch" if t < f else "tensorflow",
                predicted="torch" if log_pred[ti] < log_pred[fi] else "tensorflow",
                measured_ratio=float(10 ** abs(t - f)),
                confidence=float(0.5 * (1 + math.erf(gap / math.sqrt(2)))),
            )
        )
    return sorted(out, key=lambda v: (v.model, v.size, v.batch))


def ratio_coverage(ds: Dataset, held: HeldOut, correlated: bool = True) -> float:
    """Share of default pairs whose measured log(TF/torch) lies within +-Z80 ratio
    sigmas of the predicted one (nominal 80%)."""
    med = held.latency[1]
    hits = [
        abs((med[fi] - med[ti]) - (ds.log_latency[fi] - ds.log_latency[ti]))
        <= Z80 * ratio_sigma(held, ti, fi, correlated)
        for ti, fi in default_pairs(ds)
    ]
    return float(np.mean(hits)) if hits else 0.0


def evaluate(ds: Dataset, make: Factory = default_factory) -> EvalReport:
    held = lomo(ds, make)
    (llo, lmed, lhi), (mlo, mmed, mhi) = held.latency, held.memory
    vs = verdicts(ds, held)
    clear = [v for v in vs if v.measured_ratio >= 1.1]
    groups = np.array(ds.groups)
    per_model = [
        ModelScore(
            model=g,
            rows=int((groups == g).sum()),
            latency_mape=mape(ds.log_latency[groups == g], lmed[groups == g]),
            memory_mape=mape(ds.log_memory[groups == g], mmed[groups == g]),
        )
        for g in sorted(set(ds.groups))
    ]
    q = make().quantiles
    dflt = np.array([is_default(r) for r in ds.rows])
    fws = np.array([r["framework"] for r in ds.rows])
    sigma = (lhi - llo) / (2 * Z80) * np.log(10)  # natural-log sigma of each prediction
    return EvalReport(
        rows=len(ds.rows),
        models=len(per_model),
        latency_mape=mape(ds.log_latency, lmed),
        latency_mape_default=mape(ds.log_latency[dflt], lmed[dflt]) if dflt.any() else 0.0,
        latency_median_ape=median_ape(ds.log_latency, lmed),
        memory_mape=mape(ds.log_memory, mmed),
        memory_median_ape=median_ape(ds.log_memory, mmed),
        latency_mape_optimal=mape(ds.log_latency, lmed - sigma**2 / np.log(10)),
        latency_coverage=coverage(ds.log_latency, llo, lhi),
        latency_coverage_by_framework={
            fw: coverage(ds.log_latency[fws == fw], llo[fws == fw], lhi[fws == fw])
            for fw in sorted(set(fws.tolist()))
        },
        memory_coverage=coverage(ds.log_memory, mlo, mhi),
        nominal_coverage=q[1] - q[0],
        verdict_agreement=float(np.mean([v.measured == v.predicted for v in vs])) if vs else 0.0,
        verdict_agreement_clear=(
            float(np.mean([v.measured == v.predicted for v in clear])) if clear else None
        ),
        verdict_confidence=float(np.mean([v.confidence for v in vs])) if vs else 0.0,
        ratio_coverage=ratio_coverage(ds, held),
        ratio_coverage_independent=ratio_coverage(ds, held, correlated=False),
        latency_error_correlation=pair_correlation(lmed - ds.log_latency, matched_pairs(ds)),
        latency_rho=float(np.mean([held.latency_rho[groups == g][0] for g in set(ds.groups)])),
        verdicts=vs,
        per_model=per_model,
    )
