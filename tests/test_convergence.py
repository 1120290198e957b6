"""Convergence: same data, same batch order, same initial weights -> the same curve."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

from probes.checks.convergence import check_convergence
from probes.checks.datasets import make_dataset
from probes.errors import UnsupportedError
from probes.frameworks import Trainer
from probes.protocol import ConvergenceWorkload
from probes.runners.local import SubprocessRunner
from probes.spec import build_graph
from probes.worker.training import fit, val_metric
from tests.conftest import make_spec, zoo_spec


def test_digits_mapped_to_model_inputs() -> None:
    d = make_dataset(build_graph(zoo_spec("lenet5")))
    assert d.name == "sklearn digits" and d.x_train.shape[1:] == (1, 32, 32)
    assert len(d.x_train) + len(d.x_val) == 1797 and set(np.unique(d.y_train)) == set(range(10))
    d = make_dataset(build_graph(zoo_spec("mlp")))
    assert d.x_train.shape[1:] == (64,) and d.x_train.max() <= 1.0
    d = make_dataset(build_graph(zoo_spec("conv_autoencoder")))
    assert d.task == "reconstruction" and d.y_train.shape == d.x_train.shape


def test_synthetic_teacher_matches_io_and_is_seeded() -> None:
    g = build_graph(zoo_spec("text_lstm"))
    a, b = make_dataset(g, seed=1), make_dataset(g, seed=1)
    assert a.name.startswith("synthetic") and a.x_train.dtype == np.int64
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_train, b.y_train)
    assert 1 < len(np.unique(a.y_train)) <= 2
    g = build_graph(zoo_spec("gru_seq"))
    d = make_dataset(g)
    assert d.y_train.shape[1:] == (16, 8)
    orders = d.arrays(epochs=3, seed=0)["orders"]
    assert orders.shape == (3, len(d.x_train)) and sorted(orders[0]) == list(range(len(d.x_train)))


def test_unsupported_multi_output() -> None:
    spec = make_spec(
        [{"id": "a", "op": "relu", "inputs": ["x"]}, {"id": "b", "op": "tanh", "inputs": ["x"]}],
        outputs=["a", "b"],
    )
    with pytest.raises(UnsupportedError):
        make_dataset(build_graph(spec))


@pytest.mark.parametrize(
    "name",
    ["mlp", pytest.param("gru_seq", marks=pytest.mark.slow)],  # 25 s; LSTM/GRU train
)  # parity (test_parity) covers the recurrent gradients in the default run
def test_curves_agree_between_frameworks(name: str, runner: SubprocessRunner) -> None:
    rep = check_convergence(zoo_spec(name), runner, ConvergenceWorkload(epochs=2, batch=64))
    assert [c.status for c in rep.curves] == ["ok", "ok"], [c.reason for c in rep.curves]
    torch, tf = (np.array([[e.train_loss, e.val_metric] for e in c.epochs]) for c in rep.curves)
    assert torch.shape == (2, 2)
    np.testing.assert_allclose(torch, tf, rtol=1e-3, atol=1e-4)
    assert rep.curves[0].epochs[-1].train_loss < rep.curves[0].epochs[0].train_loss  # learns
    if name == "mlp":
        assert rep.metric == "val_accuracy" and rep.curves[0].epochs_to_target is not None


def test_the_shared_loop_runs_full_batches_in_order_and_scores_each_epoch() -> None:
    """The loop both backends share, with a fake framework half: steps see the given
    batch order (the ragged tail dropped), the epoch context wraps only the steps, and
    the metric is computed on the predictions after each epoch."""
    seen: list[list[int]] = []
    events: list[str] = []

    @contextlib.contextmanager
    def epoch() -> Iterator[None]:
        events.append("enter")
        yield
        events.append("exit")

    def step(rows: np.ndarray) -> float:
        seen.append(rows.tolist())
        return float(len(seen))

    def predict() -> np.ndarray:
        events.append("predict")
        return np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]], np.float32)

    orders = np.array([[4, 3, 2, 1, 0], [0, 1, 2, 3, 4]])
    data = {"orders": orders, "y_val": np.array([0, 1, 1])}
    stats = fit(Trainer(step=step, predict=predict, epoch=epoch), data, 2, "classification")
    assert seen == [[4, 3], [2, 1], [0, 1], [2, 3]]
    assert events == ["enter", "exit", "predict"] * 2
    assert [s.epoch for s in stats] == [1, 2] and [s.train_loss for s in stats] == [1.5, 3.5]
    assert stats[0].val_metric == pytest.approx(2 / 3)
    assert 0 <= stats[0].train_time_s <= stats[1].train_time_s
    assert val_metric(np.array([[1.0], [3.0]]), np.array([[1.0], [1.0]]), "regression") == 2.0
