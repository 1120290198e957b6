"""An additive cost model, fitted in log space: the physics part of the predictor.

Latency is a sum of costs: a fixed cost per call, a cost per node (dispatch), per
sequential recurrent step, per FLOP of each op family, per byte of activations and of
weights. Each column ``k`` of ``log_terms`` holds log10 of one such amount, scaled to
nominal seconds; the model learns one price per term, and how modifiers (framework,
settings) scale that price:

    y = log10( sum_k 10**log_terms[:, k] * exp(a_k + sum_m B[k, m] * Z[:, m]) )

The sum is what a straight line in log space cannot express (small models are
dispatch-bound, large ones compute-bound), and it extrapolates across model sizes,
which trees cannot.

Prices are hierarchical: terms of one group (say, the FLOPs of each op family) share a
group price and effect, and each term's own deviation from them is shrunk towards 0.
So an op family that only one training model has gets the group's price, not a guess
fitted to that one model, and a model with a family unseen in training still gets a
sensible price.

Fitting needs scipy; ``CostModel.predict`` needs only numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
LN10 = math.log(10.0)


@dataclass(frozen=True)
class CostModel:
    a: Floats  # (K,) log price of each term, relative to its nominal price
    B: Floats  # (K, M) how each modifier scales each price

    def logits(self, log_terms: Floats, Z: Floats) -> Floats:
        out: Floats = LN10 * log_terms + self.a[None, :] + Z @ self.B.T
        return out

    def predict(self, log_terms: Floats, Z: Floats) -> Floats:
        L = self.logits(log_terms, Z)
        top = L.max(axis=1, keepdims=True)
        out: Floats = (top[:, 0] + np.log(np.exp(L - top).sum(axis=1))) / LN10
        return out


def fit_cost(
    log_terms: Floats,
    Z: Floats,
    y: Floats,
    groups: tuple[int, ...] = (),
    *,
    penalty: float = 0.3,
    spread: float = 0.3,
    prior: float = 0.05,
) -> CostModel:
    """Least squares in log10 space, with a free overall scale (the unit of y) and ridge
    penalties: ``prior`` on the group prices,
    ``penalty`` on the group effects of modifiers, ``spread`` on each term's deviation
    from its group. ``groups`` gives each term's group (default: one group per term).
    Deterministic: starts from the nominal prices, no effects."""
    # Imported here, not at the top: predicting with a CostModel needs only numpy, and
    # the compiled predictor (recommender/predictor/compiled.py) must not load scipy.
    from scipy.optimize import least_squares  # type: ignore[import-untyped]

    n, K = log_terms.shape
    M = Z.shape[1]
    g = np.asarray(groups if groups else range(K), dtype=np.int64)
    if len(g) != K:
        raise ValueError(f"{len(g)} term groups for {K} terms")
    G = int(g.max()) + 1
    H = np.zeros((K, G))  # term -> group one-hot
    H[np.arange(K), g] = 1.0
    # a free scale (the unit of y), group prices, their deviations, group effects, theirs
    sizes = [1, G, K, G * M, K * M]
    cuts = np.cumsum(sizes)[:-1]

    def unpack(p: Floats) -> CostModel:
        scale, ag, d, bg, D = np.split(p, cuts)
        return CostModel(a=scale + H @ ag + d, B=H @ bg.reshape(G, M) + D.reshape(K, M))

    weights: Floats = np.repeat([0.0, prior, spread, penalty, spread], sizes)

    def residuals(p: Floats) -> Floats:
        out: Floats = np.concatenate([unpack(p).predict(log_terms, Z) - y, weights[1:] * p[1:]])
        return out

    def jacobian(p: Floats) -> Floats:
        L = unpack(p).logits(log_terms, Z)
        w = np.exp(L - L.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True) * LN10  # d y / d logit_k
        wz = (w[:, :, None] * Z[:, None, :]).reshape(n, K * M)  # d y / d B[k, m]
        dB_group = (w @ H)[:, :, None] * Z[:, None, :]
        top = np.hstack([w.sum(axis=1, keepdims=True), w @ H, w, dB_group.reshape(n, G * M), wz])
        out: Floats = np.vstack([top, np.diag(weights)[1:]])
        return out

    p0 = np.zeros(int(sum(sizes)))
    p0[0] = LN10 * float(
        np.mean(y - CostModel(np.zeros(K), np.zeros((K, M))).predict(log_terms, Z))
    )
    sol = least_squares(residuals, p0, jac=jacobian, method="trf", tr_solver="lsmr")
    return unpack(np.asarray(sol.x, dtype=np.float64))
