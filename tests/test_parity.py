"""Both frameworks compute the same numbers: every zoo model, and one training step."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pytest

from probes.checks.parity import check_parity, compare
from probes.protocol import ProbeRequest, ProbeResult
from probes.runners.local import SubprocessRunner
from tests.conftest import ZOO_NAMES, make_spec, zoo_spec


# resnet50 has exactly resnet18's ops; it runs with the slow tests (full size there too)
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "resnet50" else n for n in ZOO_NAMES]
)
def test_zoo_forward_parity_small(name: str, runner: SubprocessRunner) -> None:
    report = check_parity(zoo_spec(name, "small"), runner)
    assert report.passed, report.model_dump()
    # Guard against a trivial pass: the model must produce non-degenerate outputs.
    assert report.compared[0].max_abs_value > 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_forward_parity_default_size(name: str, runner: SubprocessRunner) -> None:
    assert check_parity(zoo_spec(name, None), runner).passed


CNN: list[dict[str, Any]] = [
    # No bias before batch norm: its true gradient is 0, and Adam would turn float noise
    # (~1e-9, different in each framework) into full +-lr steps of random sign.
    {
        "id": "c1",
        "op": "conv2d",
        "inputs": ["x"],
        "params": {"filters": 6, "kernel": 3, "stride": 2, "padding": 1, "bias": False},
    },
    {"id": "bn", "op": "batch_norm", "inputs": ["c1"]},
    {"id": "r", "op": "relu", "inputs": ["bn"]},
    {
        "id": "dw",
        "op": "conv2d",
        "inputs": ["r"],
        "params": {"filters": 6, "kernel": 3, "padding": "same", "groups": 6},
    },
    {"id": "mp", "op": "max_pool2d", "inputs": ["dw"], "params": {"kernel": 2}},
    {"id": "f", "op": "flatten", "inputs": ["mp"]},
    {"id": "out", "op": "dense", "inputs": ["f"], "params": {"units": 5}},
]
MLP: list[dict[str, Any]] = [
    {"id": "h", "op": "dense", "inputs": ["v"], "params": {"units": 16}},
    {"id": "a", "op": "gelu", "inputs": ["h"]},
    {"id": "ln", "op": "layer_norm", "inputs": ["a"]},
    {"id": "out", "op": "dense", "inputs": ["ln"], "params": {"units": 3}},
]
LSTM: list[dict[str, Any]] = [
    {
        "id": "l1",
        "op": "lstm",
        "inputs": ["s"],
        "params": {"hidden_size": 8, "bidirectional": True},
    },
    {
        "id": "l2",
        "op": "lstm",
        "inputs": ["l1"],
        "params": {"hidden_size": 6, "return_sequences": False},
    },
    {"id": "out", "op": "dense", "inputs": ["l2"], "params": {"units": 2}},
]
TRAIN_SPECS: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "mlp": (MLP, [{"name": "v", "shape": [12]}]),
    "cnn": (CNN, [{"name": "x", "shape": [3, 12, 12]}]),
    "lstm": (LSTM, [{"name": "s", "shape": [7, 5]}]),
}


@pytest.mark.parametrize("kind", sorted(TRAIN_SPECS))
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_train_step_parity(
    kind: str, optimizer: Literal["sgd", "adam"], runner: SubprocessRunner
) -> None:
    nodes, inputs = TRAIN_SPECS[kind]
    # SGD at lr=1: updated weights differ exactly by the gradient difference, so this is a
    # gradient check at the parity tolerance. Adam's first step is ~lr*sign(g) anyway.
    lr = 1.0 if optimizer == "sgd" else 0.01
    report = check_parity(
        make_spec(nodes, inputs=inputs),
        runner,
        batch=4,
        mode="train_step",
        optimizer=optimizer,
        lr=lr,
    )
    assert report.passed, [c for c in report.compared if not c.passed] or report.failures
    assert report.loss["torch"] == pytest.approx(report.loss["tensorflow"], rel=1e-4)
    names = {c.name for c in report.compared}
    assert "loss" in names and "out/weight" in names and len(names) > 3


def test_zoo_train_step_parity_bert(runner: SubprocessRunner) -> None:
    spec = zoo_spec("bert_tiny", "small")
    assert check_parity(spec, runner, mode="train_step").passed


class SkewedRunner:
    """Gives TensorFlow a different seed: the comparison must notice."""

    def __init__(self, inner: SubprocessRunner) -> None:
        self.inner = inner

    def run(self, request: ProbeRequest) -> ProbeResult:
        if request.framework == "tensorflow":
            request = request.model_copy(update={"seed": request.seed + 1})
        return self.inner.run(request)


def test_parity_detects_different_weights(runner: SubprocessRunner) -> None:
    report = check_parity(zoo_spec("lenet5"), SkewedRunner(runner))
    assert not report.passed and report.max_abs_diff and report.max_abs_diff > 1e-3


def test_compare_tolerance_rule() -> None:
    a = np.array([100.0, 0.0], dtype=np.float32)
    assert compare("o", a, a + np.float32(0.009)).passed  # 0.009 <= 1e-4 * 100
    assert not compare("o", a, a + np.float32(0.02)).passed
    assert not compare("o", np.zeros(3), np.zeros(4)).passed
    assert not compare("o", np.array([np.nan]), np.array([np.nan])).passed
