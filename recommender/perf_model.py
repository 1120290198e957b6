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
the case the interval has to be honest about.
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

from recommender.perf_cost import CostModel, fit_cost
from recommender.prediction import OutOfRange, out_of_range

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
    cv : folds for the conformal correction (0: none, the raw quantile interval)
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
        cv: int = 5,
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
        self.cv = cv
        self.random_state = random_state

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any, groups: Any = None) -> PerfPredictor:
        """Fit on X (n, p) and y (n,). ``groups`` (n,) makes the conformal folds hold
        whole groups out."""
        if self.method not in ("linear", "gbm", "hybrid"):
            raise ValueError(f"method must be linear, gbm or hybrid, got {self.method!r}")
        lo, hi = self.quantiles
        if not 0 < lo < 0.5 < hi < 1:
            raise ValueError(f"quantiles must satisfy 0 < lo < 0.5 < hi < 1, got {self.quantiles}")
        Xa, ya = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        bad = [i for i in (*self.terms, *self.modifiers) if not 0 <= i < Xa.shape[1]]
        if bad:
            raise ValueError(f"terms/modifiers name columns {bad}; X has {Xa.shape[1]}")
        self.feature_min_: Floats = Xa.min(axis=0)
        self.feature_max_: Floats = Xa.max(axis=0)
        # Hundreds of rows: one thread is faster than an OpenMP team, and never fights
        # a probe that may be measuring on the other cores.
        with threadpool_limits(limits=1):
            self.parts_ = self._fit_parts(Xa, ya)
            self.margin_: float = self._conformal_margin(Xa, ya, groups)
        return self

    def _fit_parts(self, X: Floats, y: Floats) -> dict[str, Any]:
        parts: dict[str, Any] = {"base": None}
        resid = y
        if self.method in ("linear", "hybrid"):
            parts["base"] = self._fit_base(X, y)
            resid = y - self._base(parts, X)
        if self.method == "linear":
            qs = np.quantile(resid, [self.quantiles[0], 0.5, self.quantiles[1]])
            parts["offsets"] = (float(qs[0]), float(qs[1]), float(qs[2]))
            return parts
        trees = []
        for q in (self.quantiles[0], 0.5, self.quantiles[1]):
            t = HistGradientBoostingRegressor(
                loss="quantile",
                quantile=q,
                max_iter=self.n_trees,
                learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                early_stopping=False,
                random_state=self.random_state,
            )
            trees.append(t.fit(X, resid))
        parts["trees"] = trees
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

    def _raw(self, parts: dict[str, Any], X: Floats) -> tuple[Floats, Floats, Floats]:
        base = self._base(parts, X)
        if "offsets" in parts:
            lo, med, hi = parts["offsets"]
            return base + lo, base + med, base + hi
        lo_t, med_t, hi_t = parts["trees"]
        return base + lo_t.predict(X), base + med_t.predict(X), base + hi_t.predict(X)

    def _conformal_margin(self, X: Floats, y: Floats, groups: Any) -> float:
        """CQR: the (1 - miscoverage) quantile of out-of-fold conformity scores, never
        negative (the interval only widens)."""
        n_groups = len(set(np.asarray(groups).tolist())) if groups is not None else len(y)
        k = min(self.cv, n_groups)
        if k < 2 or len(y) < 2 * k:
            return 0.0
        splitter = (
            GroupKFold(n_splits=k)
            if groups is not None
            else KFold(n_splits=k, shuffle=True, random_state=self.random_state)
        )
        scores = np.empty(len(y))
        for train, test in splitter.split(X, y, groups):
            twin = clone(self).set_params(cv=0)
            lo, med, hi = twin._raw(twin._fit_parts(X[train], y[train]), X[test])
            lo, hi = np.minimum(lo, med), np.maximum(hi, med)  # as predict_interval
            scores[test] = np.maximum(lo - y[test], y[test] - hi)
        level = min(1.0, (self.quantiles[1] - self.quantiles[0]) * (1 + 1 / len(y)))
        return max(0.0, float(np.quantile(scores, level)))

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
        return np.minimum(lo, med) - self.margin_, np.maximum(hi, med) + self.margin_

    def out_of_range(self, X: Any, tol: float = 1e-9) -> list[OutOfRange]:
        """Cells outside the training range: (row, feature index, value, min, max)."""
        return out_of_range(self._check(X), self.feature_min_, self.feature_max_, tol)
