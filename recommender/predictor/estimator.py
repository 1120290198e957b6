"""``PerfPredictor``: a scikit-learn regressor with a median and a quantile interval.

Generic over its inputs (any numeric X, any numeric y); the performance predictor feeds
it spec/settings features and log10 targets. The *base* is the additive cost model of
``perf_cost`` when ``terms`` names the columns holding log10 cost terms (and
``modifiers`` those that scale their prices), else a ridge line on standardised
features. Either extrapolates across model sizes, which trees cannot. Three methods:

- ``linear``: the base alone; the interval is its residual quantiles.
- ``gbm``: gradient-boosted trees with the quantile (pinball) loss, one per quantile.
- ``hybrid`` (default): the base plus quantile trees fitted to its residuals, so the
  trees only learn corrections on top of a model that extrapolates.

The interval comes from quantile regression and is then conformalised (CQR, Romano et
al. 2019): out-of-fold scores widen it until it covers the nominal share of held-out
points. With ``groups``, the folds hold whole groups out (here: whole models), which is
the case the interval has to be honest about. With ``calibrate_by`` (a column, here the
framework flag), each value of that column gets its own margin (Mondrian conformal
prediction, Vovk et al. 2005): one framework's errors do not set the other's interval.

The same out-of-fold loop chooses ``min_samples_leaf`` among ``leaf_sizes`` (the median
trees' out-of-fold absolute error), so the choice is nested inside any outer evaluation,
and keeps the out-of-fold medians (``oof_median_``) for error statistics.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

# scikit-learn and threadpoolctl ship no type information.
from sklearn.base import BaseEstimator, RegressorMixin, clone  # type: ignore[import-untyped]
from sklearn.ensemble import HistGradientBoostingRegressor  # type: ignore[import-untyped]
from sklearn.linear_model import Ridge  # type: ignore[import-untyped]
from sklearn.model_selection import GroupKFold, KFold  # type: ignore[import-untyped]
from sklearn.pipeline import Pipeline, make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]
from sklearn.utils.validation import (  # type: ignore[import-untyped]
    check_is_fitted,
    validate_data,
)
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from recommender.predictor.answers import OutOfRange, out_of_range
from recommender.predictor.cost import CostModel, fit_cost

Floats = npt.NDArray[np.float64]
Method = Literal["linear", "gbm", "hybrid"]


class PerfPredictor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Median regression with a conformalised quantile interval.

    Parameters
    ----------
    method : "linear", "gbm" or "hybrid"
    quantiles : (lo, hi) of the interval, e.g. (0.1, 0.9)
    alpha : ridge penalty (standardised features) of the ridge base
    terms, modifiers : column indices of the cost base's log10 terms and price modifiers
    term_groups : group of each term (shared prices); empty: one group per term
    penalty, spread : ridge penalties of the cost base (``perf_cost.fit_cost``)
    n_trees, learning_rate, max_leaf_nodes, min_samples_leaf : of the boosted trees
    leaf_sizes : candidates for ``min_samples_leaf``, chosen by the out-of-fold absolute
        error of the median (empty: ``min_samples_leaf``, not chosen)
    cv : folds for the conformal correction (0: none, the raw quantile interval)
    calibrate_by : column whose values get a conformal margin each (None: one margin)
    random_state : of the trees and of the folds
    """

    def __init__(
        self,
        method: Method = "hybrid",
        quantiles: tuple[float, float] = (0.1, 0.9),
        alpha: float = 1.0,
        terms: tuple[int, ...] = (),
        modifiers: tuple[int, ...] = (),
        term_groups: tuple[int, ...] = (),
        penalty: float = 0.3,
        spread: float = 0.3,
        n_trees: int = 30,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 8,
        min_samples_leaf: int = 5,
        leaf_sizes: tuple[int, ...] = (),
        cv: int = 5,
        calibrate_by: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.method = method
        self.quantiles = quantiles
        self.alpha = alpha
        self.terms = terms
        self.modifiers = modifiers
        self.term_groups = term_groups
        self.penalty = penalty
        self.spread = spread
        self.n_trees = n_trees
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.leaf_sizes = leaf_sizes
        self.cv = cv
        self.calibrate_by = calibrate_by
        self.random_state = random_state

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any, groups: Any = None) -> PerfPredictor:
        """Fit on X (n, p) and y (n,). ``groups`` (n,) makes the out-of-fold loop (leaf
        size, conformal margin, ``oof_median_``) hold whole groups out."""
        if self.method not in ("linear", "gbm", "hybrid"):
            raise ValueError(f"method must be linear, gbm or hybrid, got {self.method!r}")
        lo, hi = self.quantiles
        if not 0 < lo < 0.5 < hi < 1:
            raise ValueError(f"quantiles must satisfy 0 < lo < 0.5 < hi < 1, got {self.quantiles}")
        Xa, ya = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        cols = (
            *self.terms,
            *self.modifiers,
            *(() if self.calibrate_by is None else (self.calibrate_by,)),
        )
        bad = [i for i in cols if not 0 <= i < Xa.shape[1]]
        if bad:
            raise ValueError(
                f"terms/modifiers/calibrate_by name columns {bad}; X has {Xa.shape[1]}"
            )
        if any(int(leaf) < 1 for leaf in self.leaf_sizes):
            raise ValueError(f"leaf_sizes must be positive, got {self.leaf_sizes}")
        self.feature_min_: Floats = Xa.min(axis=0)
        self.feature_max_: Floats = Xa.max(axis=0)
        # Hundreds of rows: one thread is faster than an OpenMP team, and never fights
        # a probe that may be measuring on the other cores.
        with threadpool_limits(limits=1):
            self._out_of_fold(Xa, ya, groups)
            self.parts_ = self._fit_parts(Xa, ya, self.min_samples_leaf_)
        return self

    def _folds(self, X: Floats, y: Floats, groups: Any) -> list[tuple[Any, Any]]:
        n_groups = len(set(np.asarray(groups).tolist())) if groups is not None else len(y)
        k = min(self.cv, n_groups)
        if k < 2 or len(y) < 2 * k:
            return []
        splitter = (
            GroupKFold(n_splits=k)
            if groups is not None
            else KFold(n_splits=k, shuffle=True, random_state=self.random_state)
        )
        return list(splitter.split(X, y, groups))

    def _out_of_fold(self, X: Floats, y: Floats, groups: Any) -> None:
        """One out-of-fold loop: the leaf size (least out-of-fold absolute error of the
        median), the out-of-fold medians, and the CQR margins (the (1 - miscoverage)
        quantile of the conformity scores, never negative: the interval only widens)."""
        folds = self._folds(X, y, groups)
        leaves = tuple(int(v) for v in self.leaf_sizes) or (int(self.min_samples_leaf),)
        self.oof_median_: Floats = np.full(len(y), np.nan)
        self.margin_: float = 0.0
        self.calibration_values_: Floats = np.zeros(0)
        self.calibration_margins_: Floats = np.zeros(0)
        if not folds:
            self.min_samples_leaf_: int = leaves[0]
            return
        twin = clone(self).set_params(cv=0)
        bases = []
        for train, test in folds:
            parts = {"base": twin._fit_base(X[train], y[train]) if self.method != "gbm" else None}
            bases.append((parts, twin._base(parts, X[train]), twin._base(parts, X[test])))
        if self.method == "linear" or len(leaves) == 1:
            self.min_samples_leaf_ = leaves[0]
        else:
            errors = []
            for leaf in leaves:
                err = 0.0
                for (train, test), (_, b_train, b_test) in zip(folds, bases, strict=True):
                    t = twin._tree(0.5, leaf).fit(X[train], y[train] - b_train)
                    err += float(np.abs(b_test + t.predict(X[test]) - y[test]).sum())
                errors.append(err)
            self.min_samples_leaf_ = leaves[int(np.argmin(errors))]  # the first of a tie
        scores = np.empty(len(y))
        for (train, test), (parts, b_train, b_test) in zip(folds, bases, strict=True):
            fold = twin._fit_parts(X[train], y[train], self.min_samples_leaf_, parts, b_train)
            lo, med, hi = twin._raw(fold, X[test], b_test)
            self.oof_median_[test] = med
            lo, hi = np.minimum(lo, med), np.maximum(hi, med)  # as predict_interval
            scores[test] = np.maximum(lo - y[test], y[test] - hi)
        self.margin_ = self._margin(scores)
        if self.calibrate_by is not None:
            values = np.unique(X[:, self.calibrate_by])
            self.calibration_values_ = values
            self.calibration_margins_ = np.array(
                [self._margin(scores[X[:, self.calibrate_by] == v]) for v in values]
            )

    def _margin(self, scores: Floats) -> float:
        level = min(1.0, (self.quantiles[1] - self.quantiles[0]) * (1 + 1 / len(scores)))
        return max(0.0, float(np.quantile(scores, level)))

    def _tree(self, q: float, leaf: int) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            loss="quantile",
            quantile=q,
            max_iter=self.n_trees,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=leaf,
            early_stopping=False,
            random_state=self.random_state,
        )

    def _fit_parts(
        self,
        X: Floats,
        y: Floats,
        leaf: int,
        parts: dict[str, Any] | None = None,
        base: Floats | None = None,
    ) -> dict[str, Any]:
        """The base (unless given, with its values on X) and the corrections."""
        if parts is None:
            parts = {"base": self._fit_base(X, y) if self.method != "gbm" else None}
        parts = dict(parts)
        resid = y - (self._base(parts, X) if base is None else base)
        if self.method == "linear":
            qs = np.quantile(resid, [self.quantiles[0], 0.5, self.quantiles[1]])
            parts["offsets"] = (float(qs[0]), float(qs[1]), float(qs[2]))
            return parts
        q = (self.quantiles[0], 0.5, self.quantiles[1])
        parts["trees"] = [self._tree(level, leaf).fit(X, resid) for level in q]
        return parts

    def _fit_base(self, X: Floats, y: Floats) -> CostModel | Pipeline:
        if self.terms:
            T, Z = X[:, list(self.terms)], X[:, list(self.modifiers)]
            return fit_cost(T, Z, y, self.term_groups, penalty=self.penalty, spread=self.spread)
        return make_pipeline(StandardScaler(), Ridge(alpha=self.alpha)).fit(X, y)

    def _base(self, parts: dict[str, Any], X: Floats) -> Floats:
        base = parts["base"]
        if base is None:
            return np.zeros(len(X))
        if isinstance(base, CostModel):
            return base.predict(X[:, list(self.terms)], X[:, list(self.modifiers)])
        out: Floats = base.predict(X)
        return out

    def _raw(
        self, parts: dict[str, Any], X: Floats, base: Floats | None = None
    ) -> tuple[Floats, Floats, Floats]:
        b = self._base(parts, X) if base is None else base
        if "offsets" in parts:
            lo, med, hi = parts["offsets"]
            return b + lo, b + med, b + hi
        lo_t, med_t, hi_t = parts["trees"]
        return b + lo_t.predict(X), b + med_t.predict(X), b + hi_t.predict(X)

    def margins(self, X: Floats) -> Floats:
        """The conformal margin of each row: its ``calibrate_by`` value's, or the pooled
        one for a value the fit never saw."""
        out: Floats = np.full(len(X), self.margin_)
        if self.calibrate_by is not None:
            for v, m in zip(self.calibration_values_, self.calibration_margins_, strict=True):
                out[X[:, self.calibrate_by] == v] = m
        return out

    # -- prediction ------------------------------------------------------------------
    def _check(self, X: Any) -> Floats:
        check_is_fitted(self)
        out: Floats = validate_data(self, X, reset=False, dtype=np.float64)
        return out

    def predict(self, X: Any) -> Floats:
        """The median."""
        Xa = self._check(X)
        with threadpool_limits(limits=1):
            _, med, _ = self._raw(self.parts_, Xa)
        return med

    def predict_interval(self, X: Any) -> tuple[Floats, Floats]:
        """(lo, hi), conformalised; always lo <= predict(X) <= hi."""
        Xa = self._check(X)
        with threadpool_limits(limits=1):
            lo, med, hi = self._raw(self.parts_, Xa)
        margin = self.margins(Xa)
        return np.minimum(lo, med) - margin, np.maximum(hi, med) + margin

    def out_of_range(self, X: Any, tol: float = 1e-9) -> list[OutOfRange]:
        """Cells outside the training range: (row, feature index, value, min, max)."""
        return out_of_range(self._check(X), self.feature_min_, self.feature_max_, tol)
