"""What a performance predictor answers, and the question-to-answer path both share.

``Predictor`` (``recommender/predict.py``, scikit-learn, fits at load) and
``CompiledPredictor`` (``recommender/predict_compiled.py``, numpy only) differ only in
how they evaluate their models on a feature row: ``PredictorBase`` turns a question
into that row and the model's log10 intervals into a ``Prediction``, so the two
cannot drift apart. Nothing here imports scikit-learn or scipy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from probes.environment import environment
from probes.protocol import FRAMEWORKS, Framework
from probes.settings import default_settings, settings_label
from probes.spec import ModelSpec, SpecGraph, build_graph
from recommender.perf_features import (
    FEATURES,
    RANGE_COLUMNS,
    FrameworkSettingsT,
    query_features,
)

Floats = npt.NDArray[np.float64]
OutOfRange = tuple[int, int, float, float, float]  # row, feature index, value, min, max
LogInterval = tuple[float, float, float]  # log10 of (lo, median, hi)
SpecLike = ModelSpec | SpecGraph | Mapping[str, float]

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


class PredictorLike(Protocol):
    """What predict mode needs: ``Predictor`` and ``CompiledPredictor`` both are."""

    def predict(
        self,
        spec: SpecLike,
        framework: Framework,
        batch: int = 1,
        settings: FrameworkSettingsT | None = None,
    ) -> Prediction: ...


def out_of_range(
    data: Floats, feature_min: Floats, feature_max: Floats, tol: float = 1e-9
) -> list[OutOfRange]:
    """Cells of ``data`` (rows of features) outside the training range: (row, feature
    index, value, min, max)."""
    lo, hi = feature_min - tol, feature_max + tol
    rows, cols = np.nonzero((data < lo) | (data > hi))
    return [
        (int(r), int(c), float(data[r, c]), float(feature_min[c]), float(feature_max[c]))
        for r, c in zip(rows, cols, strict=True)
    ]


class PredictorBase(ABC):
    """A question -> feature row -> log10 intervals -> ``Prediction``."""

    env_matches: bool
    baselines: dict[Framework, float]
    trained_on: str  # the CPUs of the training rows, for the "not this machine" note

    @abstractmethod
    def log_intervals(self, X: Floats) -> tuple[LogInterval, LogInterval]:
        """log10 (lo, median, hi) of latency (s) and of memory (bytes), for one row."""

    @abstractmethod
    def range_cells(self, X: Floats) -> list[OutOfRange]:
        """The cells of X outside the training range."""

    def predict(
        self,
        spec: SpecLike,
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
            for _, c, v, lo, hi in self.range_cells(X)
            if FEATURES[c] in RANGE_COLUMNS  # the cost terms derive from these
        ]
        if not self.env_matches:
            notes.append(
                f"this machine ({environment().cpu_model}, {environment().cores_available} "
                f"cores) is not in the training set ({self.trained_on}); run "
                "scripts/predictor_dataset.py --measure here"
            )
        latency, memory = self.log_intervals(X)
        return Prediction(
            framework=framework,
            batch=batch,
            settings=settings_label(s),
            latency_s=_estimate(latency),
            memory_bytes=_estimate(memory),
            baseline_bytes=self.baselines[framework],
            out_of_range=notes,
            env_matches=self.env_matches,
        )

    def predict_both(
        self,
        spec: SpecLike,
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


def _estimate(log: LogInterval) -> Estimate:
    lo, med, hi = log
    return Estimate(median=10**med, lo=10**lo, hi=10**hi)
