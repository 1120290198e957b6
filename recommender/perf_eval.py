"""Leave-one-model-out evaluation of the performance predictor.

Every zoo model (both sizes together) is held out in turn; the predictor is trained on
the others and predicts the held-out rows. Reported: MAPE of the median for latency and
memory, the share of measured values inside [lo, hi], and how often the predicted
faster framework (default settings on both sides) is the measured one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from probes.settings import default_settings
from recommender.perf_data import Dataset, settings_from_fields
from recommender.perf_features import FEATURES, MODIFIER_COLUMNS, TERM_COLUMNS, TERM_GROUPS
from recommender.perf_model import PerfPredictor

Floats = npt.NDArray[np.float64]
Factory = Callable[[], PerfPredictor]


def default_factory(**params: Any) -> PerfPredictor:
    """The predictor's estimator: the cost base on ``TERM_COLUMNS``, priced by
    ``MODIFIER_COLUMNS`` (``params`` override the rest, e.g. ``method``)."""
    cols = {c: i for i, c in enumerate(FEATURES)}
    base: dict[str, Any] = {
        "terms": tuple(cols[c] for c in TERM_COLUMNS),
        "modifiers": tuple(cols[c] for c in MODIFIER_COLUMNS),
        "term_groups": TERM_GROUPS,
    }
    return PerfPredictor(**{**base, **params})


@dataclass(frozen=True)
class HeldOut:
    """Out-of-model predictions (log10), aligned with the dataset's rows."""

    latency: tuple[Floats, Floats, Floats]  # lo, median, hi
    memory: tuple[Floats, Floats, Floats]


class Verdict(BaseModel):
    model: str
    size: str
    batch: int
    measured: str
    predicted: str
    measured_ratio: float  # slower / faster, measured


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
    latency_coverage: float
    memory_coverage: float
    nominal_coverage: float
    verdict_agreement: float
    verdict_agreement_clear: float | None  # only pairs whose measured ratio is >= 1.1
    verdicts: list[Verdict]
    per_model: list[ModelScore]


def lomo(ds: Dataset, make: Factory = default_factory) -> HeldOut:
    """Fit without each model, predict its rows."""
    groups = np.array(ds.groups)
    out = {t: [np.empty(len(groups)) for _ in range(3)] for t in ("lat", "mem")}
    for g in sorted(set(groups.tolist())):
        test = groups == g
        train = ~test
        for t, y in (("lat", ds.log_latency), ("mem", ds.log_memory)):
            est = make().fit(ds.X[train], y[train], groups=groups[train])
            lo, hi = est.predict_interval(ds.X[test])
            out[t][0][test], out[t][1][test], out[t][2][test] = lo, est.predict(ds.X[test]), hi
    lat, mem = out["lat"], out["mem"]
    return HeldOut((lat[0], lat[1], lat[2]), (mem[0], mem[1], mem[2]))


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


def verdicts(ds: Dataset, log_pred: Floats) -> list[Verdict]:
    out = []
    for ti, fi in default_pairs(ds):
        t, f = ds.log_latency[ti], ds.log_latency[fi]
        r = ds.rows[ti]
        out.append(
            Verdict(
                model=r["model"],
                size=r["size"],
                batch=int(r["batch"]),
                measured="torch" if t < f else "tensorflow",
                predicted="torch" if log_pred[ti] < log_pred[fi] else "tensorflow",
                measured_ratio=float(10 ** abs(t - f)),
            )
        )
    return sorted(out, key=lambda v: (v.model, v.size, v.batch))


def evaluate(ds: Dataset, make: Factory = default_factory) -> EvalReport:
    held = lomo(ds, make)
    (llo, lmed, lhi), (mlo, mmed, mhi) = held.latency, held.memory
    vs = verdicts(ds, lmed)
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
    return EvalReport(
        rows=len(ds.rows),
        models=len(per_model),
        latency_mape=mape(ds.log_latency, lmed),
        latency_mape_default=mape(ds.log_latency[dflt], lmed[dflt]) if dflt.any() else 0.0,
        latency_median_ape=median_ape(ds.log_latency, lmed),
        memory_mape=mape(ds.log_memory, mmed),
        memory_median_ape=median_ape(ds.log_memory, mmed),
        latency_coverage=coverage(ds.log_latency, llo, lhi),
        memory_coverage=coverage(ds.log_memory, mlo, mhi),
        nominal_coverage=q[1] - q[0],
        verdict_agreement=float(np.mean([v.measured == v.predicted for v in vs])) if vs else 0.0,
        verdict_agreement_clear=(
            float(np.mean([v.measured == v.predicted for v in clear])) if clear else None
        ),
        verdicts=vs,
        per_model=per_model,
    )
