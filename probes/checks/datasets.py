"""Training data for the convergence workload, built in the parent (numpy only).

Image-like inputs and 64-feature vectors get scikit-learn's digits (shipped inside the
package: no download), resized and channel-replicated to the model's input. Everything
else gets a seeded synthetic "teacher" task matched to the model's inputs and outputs,
so the task is learnable by construction. Both frameworks receive the same arrays and
the same per-epoch batch order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from probes.errors import UnsupportedError
from probes.spec import SpecGraph

DIGITS_CLASSES = 10


@dataclass
class Dataset:
    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    def arrays(self, epochs: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([seed, 0xDA7A])
        orders = np.stack([rng.permutation(len(self.x_train)) for _ in range(epochs)])
        return {
            "x_train": self.x_train,
            "y_train": self.y_train,
            "x_val": self.x_val,
            "y_val": self.y_val,
            "orders": orders,
        }


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def _resize(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """[N, 8, 8] -> [N, C, H, W] by nearest-neighbour index mapping."""
    c, h, w = shape
    rows = np.arange(h) * images.shape[1] // h
    cols = np.arange(w) * images.shape[2] // w
    out: np.ndarray = images[:, rows][:, :, cols]
    return np.repeat(out[:, None], c, axis=1).astype(np.float32)


def _split(x: np.ndarray, y: np.ndarray, seed: int, val: float = 0.2) -> tuple[np.ndarray, ...]:
    idx = np.random.default_rng([seed, 0x5917]).permutation(len(x))
    n_val = int(len(x) * val)
    return x[idx[n_val:]], y[idx[n_val:]], x[idx[:n_val]], y[idx[:n_val]]


def _teacher_labels(
    x: np.ndarray, dtype: str, classes: int, max_value: int, rng: np.random.Generator
) -> np.ndarray:
    if dtype == "int64":  # bag-of-tokens teacher: learnable by embedding + pooling/RNN
        table = rng.standard_normal((max_value, classes))
        scores = table[x].sum(axis=1)
    else:
        flat = x.reshape(len(x), -1)
        scores = flat @ rng.standard_normal((flat.shape[1], classes))
    labels: np.ndarray = np.argmax(scores, axis=1).astype(np.int64)
    return labels


def _check_output(task: str, inp: tuple[int, ...], out: tuple[int, ...]) -> None:
    """The outputs convergence can train: one label per sample ([classes]) or the input
    itself (reconstruction). A per-pixel output crashed inside both frameworks."""
    if task == "classification" and len(out) != 1:
        raise UnsupportedError(
            f"convergence trains one label per sample, so a classifier's output must be "
            f"[classes]; this model's is {list(out)} (per-pixel or per-step outputs are "
            "not supported)"
        )
    if task == "reconstruction" and out != inp:
        raise UnsupportedError(
            f"reconstruction's output must have the input's shape {list(inp)}; "
            f"this model's is {list(out)}"
        )


def make_dataset(graph: SpecGraph, seed: int = 0, n: int = 1280) -> Dataset:
    spec = graph.spec
    if len(spec.inputs) != 1 or len(spec.outputs) != 1:
        raise UnsupportedError("convergence needs a single-input, single-output model")
    inp, out = spec.inputs[0], graph.tensors[spec.outputs[0]]
    shape = tuple(inp.shape)
    _check_output(spec.task, shape, tuple(out.shape))
    image_like = inp.dtype == "float32" and (len(shape) == 3 or shape == (64,))
    if spec.task in ("classification", "reconstruction") and image_like:
        images, labels = _digits()
        x = _resize(images, shape) if len(shape) == 3 else images.reshape(len(images), 64)
        y = x if spec.task == "reconstruction" else labels
        if spec.task == "classification" and out.shape[-1] < DIGITS_CLASSES:
            raise UnsupportedError(f"digits has 10 classes; the model outputs {out.shape[-1]}")
        return Dataset("sklearn digits", spec.task, *_split(x, y, seed))
    rng = np.random.default_rng([seed, 0x7EAC])
    if inp.dtype == "int64":
        x = rng.integers(0, inp.max_value or 2, (n, *shape), dtype=np.int64)
    else:
        x = rng.standard_normal((n, *shape)).astype(np.float32)
    if spec.task == "classification":
        if len(out.shape) != 1:
            raise UnsupportedError(f"classification output must be [classes], got {out.shape}")
        y = _teacher_labels(x, inp.dtype, min(out.shape[0], 10), inp.max_value or 2, rng)
    elif spec.task == "reconstruction":
        y = x
    else:  # regression: a fixed random linear map of the input, shaped like the output
        flat = x.reshape(n, -1).astype(np.float32)
        proj = rng.standard_normal((flat.shape[1], int(np.prod(out.shape)))) / np.sqrt(
            flat.shape[1]
        )
        y = (flat @ proj).astype(np.float32).reshape(n, *out.shape)
    return Dataset(f"synthetic teacher ({spec.task})", spec.task, *_split(x, y, seed))
