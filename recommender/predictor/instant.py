"""Instant answers without measuring: the learned performance predictor.

``Predictor.load()`` fits two ``PerfPredictor``s (log10 latency and log10 peak memory)
on the committed training set, ``data/datasets/predictor_train.csv``; ``predict`` answers
one (spec, framework, batch, settings) question with a median and an interval, and says
when the question lies outside what the training set covers. No framework is imported.

This is the scikit-learn predictor, for scripts, benchmarks and the exporter. A process
that only answers (predict mode, the web service) uses ``CompiledPredictor``
(``recommender/predictor/cache.py``), which gives the same answers with numpy alone;
``PredictorBase`` (``recommender/predictor/answers.py``) is the question-to-answer path both
share.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from probes.measure.environment import environment
from probes.protocol import FRAMEWORKS, Framework
from recommender.predictor.answers import (
    MIN_OWN_ROWS,
    Estimate,
    Floats,
    LogInterval,
    Measurement,
    OutOfRange,
    Prediction,
    PredictorBase,
    faster,
    index_measurements,
)
from recommender.predictor.dataset import DEFAULT_DATASET, Dataset, load_dataset, to_dataset
from recommender.predictor.estimator import PerfPredictor
from recommender.predictor.evaluation import default_factory, matched_pairs, oof_correlation
from recommender.predictor.features import FEATURES, SETTING_COLUMNS, query_features

__all__ = ["Estimate", "PerfPredictor", "Prediction", "Predictor", "faster", "query_features"]


class Predictor(PredictorBase):
    """Latency and memory models fitted on one training set."""

    def __init__(self, data: Dataset, *, env_key: str | None = None) -> None:
        here = env_key or environment().key()
        own = np.array([r["env_key"] == here for r in data.rows])
        self.env_matches = int(own.sum()) >= MIN_OWN_ROWS
        self.data = data.subset(own) if self.env_matches else data
        groups = self.data.groups
        self.latency = default_factory().fit(self.data.X, self.data.log_latency, groups=groups)
        self.memory = default_factory().fit(self.data.X, self.data.log_memory, groups=groups)
        pairs = matched_pairs(self.data)
        self.error_correlation = {
            "latency": oof_correlation(self.latency, self.data.log_latency, pairs),
            "memory": oof_correlation(self.memory, self.data.log_memory, pairs),
        }
        self.measurements = index_measurements(_measurements(self.data) if self.env_matches else [])
        self.baselines: dict[Framework, float] = {
            fw: float(
                np.median(
                    [float(r["baseline_rss_bytes"]) for r in self.data.rows if r["framework"] == fw]
                    or [0.0]
                )
            )
            for fw in FRAMEWORKS
        }
        cpus = sorted({r["cpu_model"] for r in self.data.rows if r["cpu_model"]})
        self.trained_on = ", ".join(cpus) or "unknown CPUs"

    @classmethod
    def load(cls, path: Path = DEFAULT_DATASET) -> Predictor:
        """Fit on a training-set CSV (cached per path and file modification time)."""
        return _load(path.resolve(), path.stat().st_mtime_ns)

    @classmethod
    def from_rows(cls, rows: list[dict[str, str]], *, env_key: str | None = None) -> Predictor:
        return cls(to_dataset(rows), env_key=env_key)

    def log_intervals(self, X: Floats) -> tuple[LogInterval, LogInterval]:
        return _interval(self.latency, X), _interval(self.memory, X)

    def range_cells(self, X: Floats) -> list[OutOfRange]:
        return self.latency.out_of_range(X)


def _measurements(data: Dataset) -> list[Measurement]:
    """The training rows as answers to their own questions (the spec hash must be known)."""
    cols = [FEATURES.index(c) for c in SETTING_COLUMNS]
    return [
        Measurement(
            spec_hash=r["spec_hash"],
            framework=r["framework"],
            batch=int(r["batch"]),
            settings=data.X[i, cols].tolist(),
            latency_s=float(r["median_s"]),
            latency_sigma=float(r["iqr_s"] or 0) / float(r["median_s"]) / 1.349,
            memory_bytes=max(float(r["peak_rss_bytes"]), 2.0**20),  # as the target's floor
        )
        for i, r in enumerate(data.rows)
        if r.get("spec_hash")
    ]


def _interval(model: PerfPredictor, X: Floats) -> LogInterval:
    lo, hi = model.predict_interval(X)
    return float(lo[0]), float(model.predict(X)[0]), float(hi[0])


@lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> Predictor:
    del mtime_ns  # part of the cache key only
    return Predictor(load_dataset(path))
