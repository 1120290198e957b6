"""The convergence run's loop, shared by both frameworks (imports none).

A backend builds a `Trainer` (its optimizer step and its validation predictions); this
module runs the epochs in the data's batch order, times the steps and scores each epoch
the same way for both frameworks.
"""

from __future__ import annotations

import time

import numpy as np

from probes.frameworks import Trainer
from probes.payloads import EpochStats


def val_metric(pred: np.ndarray, y: np.ndarray, task: str) -> float:
    """Validation accuracy (classification: ``y`` holds class ids) or MSE, in float64."""
    if task == "classification":
        return float(np.mean(np.argmax(pred, axis=1) == y))
    return float(np.mean((pred.astype(np.float64) - y) ** 2))


def fit(trainer: Trainer, data: dict[str, np.ndarray], batch: int, task: str) -> list[EpochStats]:
    """One epoch per row of ``data["orders"]``, full batches only (every step has the same
    shape, so nothing retraces); ``train_time_s`` is cumulative and excludes evaluation."""
    stats, elapsed = [], 0.0
    for epoch, order in enumerate(data["orders"], start=1):
        with trainer.epoch():
            t0 = time.perf_counter()
            starts = range(0, len(order) - batch + 1, batch)
            losses = [trainer.step(order[i : i + batch]) for i in starts]
            elapsed += time.perf_counter() - t0
        stats.append(
            EpochStats(
                epoch=epoch,
                train_loss=float(np.mean(losses)),
                val_metric=val_metric(trainer.predict(), data["y_val"], task),
                train_time_s=elapsed,
            )
        )
    return stats
