"""What makes a train-step comparison fair, beyond equal weights and inputs.

- **Dropout** draws its masks from each framework's own generator, so two correct
  builds train on different sub-networks. The comparison disables dropout (rate 0) and
  the report says so.
- **Adam's first step** moves each weight by ``lr * g / (|g| + eps)``. Where ``|g|`` is
  near ``eps`` the update is ill-conditioned (its derivative is ``lr * eps / (|g| +
  eps)^2``): gradients that agree to 1e-9 give updates anywhere in (-lr, lr). Elements
  that moved by less than 99% of ``lr`` on both sides (``|g|`` below ~99 eps on both)
  are counted and excused, since any update in [-lr, lr] fits a near-zero gradient;
  every other element is compared to the tolerance as with SGD.
"""

from __future__ import annotations

import numpy as np

from probes.spec import ModelSpec

SATURATED = 0.99  # |update| >= this * lr: |g| >= ~99 eps, a well-conditioned update


def without_dropout(spec: ModelSpec) -> tuple[ModelSpec, int]:
    """(the spec with every dropout's rate 0, how many dropout nodes it had)."""
    n = 0
    nodes = []
    for node in spec.nodes:
        if node.op == "dropout" and node.params.get("rate", 0.5) != 0:
            node = node.model_copy(update={"params": {**node.params, "rate": 0.0}})
            n += 1
        nodes.append(node)
    return (spec.model_copy(update={"nodes": nodes}) if n else spec), n


def adam_excused(ref: np.ndarray, other: np.ndarray, before: np.ndarray, lr: float) -> np.ndarray:
    """A mask of the elements whose first Adam step is ill-conditioned on both sides.
    (Both: a side that did not move at all while the other moved by lr is a real
    difference, e.g. a weight one framework never updated.)"""
    if ref.shape != other.shape or ref.shape != before.shape:
        return np.zeros(ref.shape, dtype=bool)
    b = before.astype(np.float64)
    moved_ref = np.abs(ref.astype(np.float64) - b)
    moved_other = np.abs(other.astype(np.float64) - b)
    excused: np.ndarray = (moved_ref < SATURATED * lr) & (moved_other < SATURATED * lr)
    return excused
