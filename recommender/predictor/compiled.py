"""The fitted predictor as plain arrays, evaluated with numpy alone.

``Predictor`` fits scikit-learn models at load: about 5 s and 200 MB of resident
memory for a process that only wants answers, such as a web worker. Everything its
``predict`` evaluates is small and simple, though: the cost model's prices (``a``,
``B``), three quantile ensembles of regression trees per target, the conformal margins
(one per framework), the feature ranges, the torch/TensorFlow error correlations and
the training rows that answer their own questions. ``recommender/predictor/export.py``
(which may import scikit-learn) writes them to a JSON ``CompiledModel`` once;
``CompiledPredictor`` reads it and answers the same questions, equal to ``Predictor`` to
float rounding (``tests/test_predict_compiled.py``). This module imports neither
scikit-learn nor scipy; ``recommender/predictor/cache.py`` finds, builds and caches the
file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from probes.protocol import Framework
from recommender.predictor.answers import (
    Floats,
    LogInterval,
    Measurement,
    OutOfRange,
    PredictorBase,
    index_measurements,
    out_of_range,
)
from recommender.predictor.cost import CostModel
from recommender.predictor.features import FEATURES

# Bump when the layout or the meaning of a field changes: part of the cache key.
FORMAT_VERSION = 2


class Trees(BaseModel):
    """One ``HistGradientBoostingRegressor``: ``baseline + sum of its trees``.

    Per tree, per node (node 0 is the root). Leaf values already include the
    learning rate (scikit-learn shrinks them when a tree is grown). A split sends x
    left when ``x[feature] <= threshold``, and a missing (NaN) x to ``missing_left``.
    """

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="constants")

    baseline: float
    feature: list[list[int]]
    threshold: list[list[float]]
    left: list[list[int]]
    right: list[list[int]]
    is_leaf: list[list[bool]]
    value: list[list[float]]
    missing_left: list[list[bool]]


class Regressor(BaseModel):
    """One ``PerfPredictor`` on a log10 target: cost base + quantile trees + margin."""

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="constants")

    terms: list[int] = Field(description="Columns of X holding the cost model's log10 terms.")
    modifiers: list[int] = Field(description="Columns of X that scale the terms' prices.")
    a: list[float] | None = Field(description="Cost model log prices; None: no cost base.")
    B: list[list[float]] | None = Field(description="Cost model modifier effects (K, M).")
    quantiles: tuple[Trees, Trees, Trees] | None = Field(
        description="lo, median, hi corrections on top of the base (method gbm or hybrid)."
    )
    offsets: tuple[float, float, float] | None = Field(
        description="lo, median, hi residual quantiles instead of trees (method linear)."
    )
    margin: float = Field(description="Conformal widening of the interval (log10).")
    margin_column: int | None = Field(
        default=None, description="Column whose value chooses the margin (None: ``margin``)."
    )
    margin_values: list[float] = Field(default_factory=list)
    margins: list[float] = Field(
        default_factory=list,
        description="The margin of each of margin_values; any other value gets ``margin``.",
    )
    feature_min: list[float]
    feature_max: list[float]


class CompiledModel(BaseModel):
    """Everything ``Predictor.predict`` needs, fitted on one training set for one machine."""

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="constants")

    format: int = FORMAT_VERSION
    features: list[str] = Field(description="The columns of X, in order (perf_features).")
    latency: Regressor
    memory: Regressor
    baselines: dict[Framework, float]
    env_matches: bool
    trained_on: str
    error_correlation: dict[str, float] = Field(
        description="Per target: the out-of-fold torch/TensorFlow error correlation."
    )
    measurements: list[Measurement] = Field(
        description="This machine's training rows, which answer their own questions."
    )
    env_key: str = Field(description="The environment whose rows were chosen.")
    dataset_sha256: str = Field(description="Of the training-set CSV it was fitted on.")


class _Forest:
    """A regressor's three ensembles as flat node arrays, so that one walk evaluates
    every tree at once. Leaves point to themselves, so a walk can go on until every
    tree stands on a leaf."""

    def __init__(self, ensembles: tuple[Trees, Trees, Trees]) -> None:
        # Node 0 is a leaf worth 0, the root of a missing tree when the ensembles have
        # different lengths: adding 0.0 changes no sum.
        feature, threshold, value, left, right = [0], [0.0], [0.0], [0], [0]
        is_leaf, missing_left = [True], [False]
        count = max(len(e.feature) for e in ensembles)
        roots = np.zeros((len(ensembles), count), np.int64)
        for i, trees in enumerate(ensembles):
            for t in range(len(trees.feature)):
                first = roots[i, t] = len(feature)
                for n, leaf in enumerate(trees.is_leaf[t]):
                    own = first + n
                    left.append(own if leaf else first + trees.left[t][n])
                    right.append(own if leaf else first + trees.right[t][n])
                feature += trees.feature[t]
                threshold += trees.threshold[t]
                value += trees.value[t]
                is_leaf += trees.is_leaf[t]
                missing_left += trees.missing_left[t]
        self.roots = roots
        self.feature, self.left, self.right = (np.array(a) for a in (feature, left, right))
        self.threshold, self.value = np.array(threshold), np.array(value)
        self.is_leaf, self.missing_left = np.array(is_leaf), np.array(missing_left)
        self.baseline = np.array([e.baseline for e in ensembles])
        _read_only(vars(self).values())

    def predict(self, x: Floats) -> Floats:
        """(lo, median, hi) corrections for one feature row."""
        node = self.roots.ravel()
        while not self.is_leaf[node].all():
            v = x[self.feature[node]]
            go_left = (v <= self.threshold[node]) | (np.isnan(v) & self.missing_left[node])
            node = np.where(go_left, self.left[node], self.right[node])
        # scikit-learn adds the trees one by one onto the baseline; cumsum adds in the
        # same order, so the sums round the same way.
        leaves = self.value[node].reshape(self.roots.shape)
        out: Floats = np.cumsum(np.hstack([self.baseline[:, None], leaves]), axis=1)[:, -1]
        return out


class _Target:
    """One compiled ``PerfPredictor``: ``predict_interval`` and ``predict`` in one."""

    def __init__(self, r: Regressor) -> None:
        self.terms, self.modifiers = list(r.terms), list(r.modifiers)
        self.cost = None if r.a is None else CostModel(np.array(r.a), np.array(r.B))
        self.forest = _Forest(r.quantiles) if r.quantiles else None
        self.offsets = np.array(r.offsets) if r.offsets else np.zeros(3)
        self.margin = r.margin
        self.margin_column = r.margin_column
        self.margin_by = dict(zip(r.margin_values, r.margins, strict=True))
        self.feature_min, self.feature_max = np.array(r.feature_min), np.array(r.feature_max)
        _read_only([*vars(self).values(), *(vars(self.cost).values() if self.cost else ())])

    def interval(self, X: Floats) -> LogInterval:
        """As PerfPredictor: lo <= median <= hi, widened by the conformal margin."""
        base = 0.0
        if self.cost is not None:
            base = float(self.cost.predict(X[:, self.terms], X[:, self.modifiers])[0])
        corr = self.forest.predict(X[0]) if self.forest else self.offsets
        lo, med, hi = (base + float(c) for c in corr)
        margin = self.margin
        if self.margin_column is not None:
            margin = self.margin_by.get(float(X[0, self.margin_column]), self.margin)
        return min(lo, med) - margin, med, max(hi, med) + margin


def _read_only(values: Iterable[object]) -> None:
    """Freeze the arrays among ``values``: a cached predictor is shared by every caller."""
    for v in values:
        if isinstance(v, np.ndarray):
            v.flags.writeable = False


class CompiledPredictor(PredictorBase):
    """``Predictor``'s answers from a ``CompiledModel``, with numpy alone."""

    def __init__(self, model: CompiledModel) -> None:
        if model.format != FORMAT_VERSION or tuple(model.features) != FEATURES:
            raise ValueError(
                f"compiled predictor format {model.format} for {len(model.features)} "
                f"features; this code reads format {FORMAT_VERSION} with {len(FEATURES)}"
            )
        self.model = model
        self.env_matches = model.env_matches
        self.baselines = dict(model.baselines)
        self.trained_on = model.trained_on
        self.error_correlation = dict(model.error_correlation)
        self.measurements = index_measurements(model.measurements)
        self.latency, self.memory = _Target(model.latency), _Target(model.memory)

    @classmethod
    def from_file(cls, path: Path) -> CompiledPredictor:
        return cls(CompiledModel.model_validate_json(path.read_bytes()))

    def log_intervals(self, X: Floats) -> tuple[LogInterval, LogInterval]:
        return self.latency.interval(X), self.memory.interval(X)

    def range_cells(self, X: Floats) -> list[OutOfRange]:
        return out_of_range(X, self.latency.feature_min, self.latency.feature_max)
