"""Peak memory above the framework's import baseline: analytic weights and activations
plus a framework constant, ``gamma + alpha x weight bytes + beta x activation bytes x
batch``. The priors are fitted (non-negative, relative error) on the 180 fp32 default-
mode rows of ``data/datasets/predictor_train.csv`` (MAPE 16% torch, 17% TensorFlow);
this machine's full-model measurements refit them (``fit_memory``)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

MIN_ROWS = 3  # a refit needs this many of this machine's measurements
PRIOR_ROWS = 10.0


class MemoryModel(BaseModel):
    gamma: float
    alpha: float
    beta: float
    baseline_bytes: float
    sigma: float  # ln, one sigma of a new model's error
    fitted_on: int = 0  # this machine's rows (0: the priors)

    def predict(self, weight_bytes: float, act_bytes: float) -> float:
        return self.gamma + self.alpha * weight_bytes + self.beta * act_bytes


PRIORS = {
    "torch": MemoryModel(
        gamma=12.9e6, alpha=1.71, beta=1.10, baseline_bytes=233 * 2**20, sigma=0.25
    ),
    "tensorflow": MemoryModel(
        gamma=21.7e6, alpha=3.42, beta=0.229, baseline_bytes=707 * 2**20, sigma=0.25
    ),
}


def fit_memory(prior: MemoryModel, rows: list[tuple[float, float, float, float]]) -> MemoryModel:
    """Refit the framework constant (and the baseline) on this machine's (weight bytes,
    activation bytes x batch, peak above baseline, baseline) rows; the per-byte factors
    keep their priors (a full refit on a dozen rows of a few models overfits: 111%
    held-out memory MAPE against 15% with the priors)."""
    if len(rows) < MIN_ROWS:
        return prior
    rest = [p - prior.alpha * w - prior.beta * a for w, a, p, _ in rows]
    n = len(rows)  # shrunk towards the prior as if by PRIOR_ROWS rows of it
    gamma = max((n * float(np.median(rest)) + PRIOR_ROWS * prior.gamma) / (n + PRIOR_ROWS), 0.0)
    pred = np.array([gamma + prior.alpha * w + prior.beta * a for w, a, _, _ in rows])
    err = np.log(np.maximum(pred, 1e6) / np.maximum([p for _, _, p, _ in rows], 1e6))
    return prior.model_copy(
        update={
            "gamma": gamma,
            "baseline_bytes": float(np.median([b for *_, b in rows])),
            "sigma": max(float(np.sqrt(np.mean(err**2))), 0.1),
            "fitted_on": len(rows),
        }
    )
