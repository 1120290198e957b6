"""Instant answers without measuring: the learned performance predictor.

``Predictor.load()`` fits two ``PerfPredictor``s (log10 latency and log10 peak memory)
on the committed training set, ``data/datasets/predictor_train.csv``; ``predict`` answers
one (spec, framework, batch, settings) question with a median and an interval, and says
when the question lies outside what the training set covers. No framework is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from probes.environment import environment
from probes.protocol import FRAMEWORKS, Framework
from probes.settings import default_settings, settings_label
from probes.spec import ModelSpec, SpecGraph, build_graph
from recommender.perf_data import DEFAULT_DATASET, Dataset, load_dataset, to_dataset
from recommender.perf_eval import default_factory
from recommender.perf_features import (
    FEATURES,
    RANGE_COLUMNS,
    FrameworkSettingsT,
    query_features,
)
from recommender.perf_model import PerfPredictor

__all__ = ["Estimate", "PerfPredictor", "Prediction", "Predictor", "faster", "query_features"]

# Below this many rows of this machine, train on every machine's rows (and say so).
MIN_OWN_ROWS = 50


class Estimate(BaseModel):
    median: float
    lo: float = Field(description="Lower end of the interval (10% quantile, conformalised).")
    hi: float = Field(description="Upper end of the interval (90% quantile, conformalised).")


class Prediction(BaseModel):
    framework: Framework
    batch: int
    settings: str = Field(description="Settings label, e.g. 'function t2 fp32'.")
    latency_s: Estimate = Field(description="Steady-state inference latency at this batch.")
    memory_bytes: Estimate = Field(
        description="Peak RSS above the worker's RSS right after the framework import."
    )
    baseline_bytes: float = Field(
        description="The framework's RSS right after its import (median of the training "
        "set): add it to memory_bytes for the whole process."
    )
    out_of_range: list[str] = Field(
        default_factory=list,
        description="Why this answer is an extrapolation (empty: inside the training data).",
    )
    env_matches: bool = Field(description="The training set holds this machine's runs.")


class Predictor:
    """Latency and memory models fitted on one training set."""

    def __init__(self, data: Dataset, *, env_key: str | None = None) -> None:
        here = env_key or environment().key()
        own = np.array([r["env_key"] == here for r in data.rows])
        self.env_matches = int(own.sum()) >= MIN_OWN_ROWS
        self.data = data.subset(own) if self.env_matches else data
        groups = self.data.groups
        self.latency = default_factory().fit(self.data.X, self.data.log_latency, groups=groups)
        self.memory = default_factory().fit(self.data.X, self.data.log_memory, groups=groups)
        self.baselines = {
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

    def predict(
        self,
        spec: ModelSpec | SpecGraph | Mapping[str, float],
        framework: Framework,
        batch: int = 1,
        settings: FrameworkSettingsT | None = None,
    ) -> Prediction:
        """Median and interval of latency (s) and peak memory (bytes) for one question.

        ``spec`` is a spec, its graph, or its ``perf_features.spec_stats``.
        """
        graph = build_graph(spec) if isinstance(spec, ModelSpec) else spec
        s = settings or default_settings(framework)
        row = query_features(graph, framework, batch, s)
        X = np.array([[row[c] for c in FEATURES]])
        notes = [
            f"{FEATURES[c]} {v:.3g} {'above' if v > hi else 'below'} the training range "
            f"{lo:.3g} to {hi:.3g}"
            for _, c, v, lo, hi in self.latency.out_of_range(X)
            if FEATURES[c] in RANGE_COLUMNS  # the cost terms derive from these
        ]
        if not self.env_matches:
            notes.append(
                f"this machine ({environment().cpu_model}, {environment().cores_available} "
                f"cores) is not in the training set ({self.trained_on}); run "
                "scripts/predictor_dataset.py --measure here"
            )
        return Prediction(
            framework=framework,
            batch=batch,
            settings=settings_label(s),
            latency_s=_estimate(self.latency, X),
            memory_bytes=_estimate(self.memory, X),
            baseline_bytes=self.baselines[framework],
            out_of_range=notes,
            env_matches=self.env_matches,
        )

    def predict_both(
        self,
        spec: ModelSpec | SpecGraph | Mapping[str, float],
        batch: int = 1,
        settings: Mapping[str, FrameworkSettingsT] | None = None,
    ) -> dict[Framework, Prediction]:
        """One prediction per framework (``settings`` by framework; missing: defaults)."""
        graph = build_graph(spec) if isinstance(spec, ModelSpec) else spec
        chosen = settings or {}
        return {fw: self.predict(graph, fw, batch, chosen.get(fw)) for fw in FRAMEWORKS}


def faster(predictions: Mapping[Framework, Prediction]) -> Framework:
    """The framework with the lower predicted median latency."""
    return min(predictions, key=lambda fw: predictions[fw].latency_s.median)


def _estimate(model: PerfPredictor, X: npt.NDArray[np.float64]) -> Estimate:
    lo, hi = model.predict_interval(X)
    med = model.predict(X)
    return Estimate(median=float(10 ** med[0]), lo=float(10 ** lo[0]), hi=float(10 ** hi[0]))


@lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> Predictor:
    del mtime_ns  # part of the cache key only
    return Predictor(load_dataset(path))
