"""What a performance predictor answers, and the question-to-answer path both share.

``Predictor`` (``recommender/predictor/instant.py``, scikit-learn, fits at load) and
``CompiledPredictor`` (``recommender/predictor/compiled.py``, numpy only) differ only in
how they evaluate their models on a feature row: ``PredictorBase`` turns a question
into that row and the model's log10 intervals into a ``Prediction``, so the two
cannot drift apart. Nothing here imports scikit-learn or scipy.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from probes.measure.environment import environment
from probes.protocol import FRAMEWORKS, Framework
from probes.settings import default_settings, settings_label
from probes.spec import ModelSpec, SpecGraph, build_graph
from probes.spec import spec_hash as hash_of_spec
from recommender.predictor.features import (
    FEATURES,
    RANGE_COLUMNS,
    SETTING_COLUMNS,
    FrameworkSettingsT,
    query_features,
)
from recommender.predictor.plain import range_note

Floats = npt.NDArray[np.float64]
OutOfRange = tuple[int, int, float, float, float]  # row, feature index, value, min, max
LogInterval = tuple[float, float, float]  # log10 of (lo, median, hi)
SpecLike = ModelSpec | SpecGraph | Mapping[str, float]

# Below this many rows of this machine, train on every machine's rows (and say so).
MIN_OWN_ROWS = 50
Z80 = 1.2816  # the interval is 10%-90%: +-1.28 sigma
MEMORY_SIGMA = 0.05  # a measured peak's relative uncertainty, as measure mode uses
TARGETS = ("latency", "memory")


def shared_fraction(rho: float) -> float:
    """The share of each framework's error variance that both frameworks' predictions
    share, from the correlation of their errors: a negative correlation (the errors
    tend to cancel in neither direction we can represent) counts as none."""
    return min(max(rho, 0.0), 1.0) if math.isfinite(rho) else 0.0


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
    measured: bool = Field(
        default=False,
        description="The answer is a training-set measurement of this very question (same "
        "spec, batch and settings, on this machine), not a prediction; the interval is its "
        "measurement noise.",
    )


class Measurement(BaseModel):
    """One training row, kept so that the question it answers is answered by it."""

    spec_hash: str
    framework: Framework
    batch: int
    settings: list[float] = Field(description="The row's SETTING_COLUMNS.")
    latency_s: float
    latency_sigma: float = Field(description="IQR / median / 1.349 of the timed calls.")
    memory_bytes: float


class PredictorLike(Protocol):
    """What predict mode needs: ``Predictor`` and ``CompiledPredictor`` both are."""

    @property
    def error_correlation(self) -> Mapping[str, float]: ...

    def predict_both(
        self,
        spec: SpecLike,
        batch: int = 1,
        settings: Mapping[str, FrameworkSettingsT] | None = None,
        *,
        spec_hash: str | None = None,
    ) -> dict[Framework, Prediction]: ...


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
    # Per target ("latency", "memory"): the correlation of the torch and TensorFlow
    # errors on matched questions, from the fit's out-of-fold medians (whole models
    # held out). Predict mode splits each sigma into a shared and an own part with it.
    error_correlation: dict[str, float]
    # The training rows of this machine by (spec hash, framework, batch); empty when
    # the training set is another machine's.
    measurements: dict[tuple[str, str, int], list[Measurement]]

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
        *,
        spec_hash: str | None = None,
    ) -> Prediction:
        """Median and interval of latency (s) and peak memory (bytes) for one question.

        ``spec`` is a spec, its graph, or its ``perf_features.spec_stats``. A question the
        training set measured on this machine (same spec hash, framework, batch and
        settings) is answered by that measurement (``measured``); the spec hash comes
        from a ``ModelSpec``, or from ``spec_hash`` with a graph or statistics.
        """
        if isinstance(spec, ModelSpec):
            spec_hash = spec_hash or hash_of_spec(spec)
            graph: SpecGraph | Mapping[str, float] = build_graph(spec)
        else:
            graph = spec
        s = settings or default_settings(framework)
        row = query_features(graph, framework, batch, s)
        X = np.array([[row[c] for c in FEATURES]])
        notes = [
            range_note(FEATURES[c], v, lo, hi)
            for _, c, v, lo, hi in self.range_cells(X)
            if FEATURES[c] in RANGE_COLUMNS  # the cost terms derive from these
        ]
        if not self.env_matches:
            notes.append(
                f"this machine ({environment().cpu_model}, {environment().cores_available} "
                f"cores) is not among the machines the predictor learned from "
                f"({self.trained_on}); run `fwadvisor calibrate --quick` (about a minute) "
                "to predict from this machine's own timings"
            )
        common = {
            "framework": framework,
            "batch": batch,
            "settings": settings_label(s),
            "baseline_bytes": self.baselines[framework],
            "out_of_range": notes,
            "env_matches": self.env_matches,
        }
        m = self.measurement(spec_hash, framework, batch, [row[c] for c in SETTING_COLUMNS])
        if m is not None:
            return Prediction(
                **common,
                latency_s=_around(m.latency_s, m.latency_sigma),
                memory_bytes=_around(m.memory_bytes, MEMORY_SIGMA),
                measured=True,
            )
        latency, memory = self.log_intervals(X)
        return Prediction(**common, latency_s=_estimate(latency), memory_bytes=_estimate(memory))

    def measurement(
        self, spec_hash: str | None, framework: str, batch: int, settings: list[float]
    ) -> Measurement | None:
        """The training row of this machine that asked this very question, if any."""
        if spec_hash is None or not self.env_matches:
            return None
        found = self.measurements.get((spec_hash, framework, batch), [])
        return next((m for m in found if m.settings == settings), None)

    def predict_both(
        self,
        spec: SpecLike,
        batch: int = 1,
        settings: Mapping[str, FrameworkSettingsT] | None = None,
        *,
        spec_hash: str | None = None,
    ) -> dict[Framework, Prediction]:
        """One prediction per framework (``settings`` by framework; missing: defaults)."""
        if isinstance(spec, ModelSpec):
            spec_hash = spec_hash or hash_of_spec(spec)
            graph: SpecGraph | Mapping[str, float] = build_graph(spec)
        else:
            graph = spec
        chosen = settings or {}
        return {
            fw: self.predict(graph, fw, batch, chosen.get(fw), spec_hash=spec_hash)
            for fw in FRAMEWORKS
        }


def index_measurements(
    found: Iterable[Measurement],
) -> dict[tuple[str, str, int], list[Measurement]]:
    out: dict[tuple[str, str, int], list[Measurement]] = {}
    for m in found:
        out.setdefault((m.spec_hash, m.framework, m.batch), []).append(m)
    return out


def faster(predictions: Mapping[Framework, Prediction]) -> Framework:
    """The framework with the lower predicted median latency."""
    return min(predictions, key=lambda fw: predictions[fw].latency_s.median)


def _estimate(log: LogInterval) -> Estimate:
    lo, med, hi = log
    return Estimate(median=10**med, lo=10**lo, hi=10**hi)


def _around(value: float, sigma: float) -> Estimate:
    """A measured value with its 10-90% interval for a log-normal noise of ``sigma``."""
    return Estimate(
        median=value, lo=value * math.exp(-Z80 * sigma), hi=value * math.exp(Z80 * sigma)
    )
