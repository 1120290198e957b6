"""Convergence: same data, same batch order, same initial weights -> the same curve."""

from __future__ import annotations

import numpy as np
import pytest

from probes.checks.convergence import check_convergence
from probes.checks.datasets import make_dataset
from probes.errors import UnsupportedError
from probes.protocol import ConvergenceWorkload
from probes.runners.local import SubprocessRunner
from probes.spec import build_graph
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
