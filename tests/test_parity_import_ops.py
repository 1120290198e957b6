"""Parity of the spec ops added for imported models, forward and one training step."""

from __future__ import annotations

import pytest

from probes.checks.parity import check_parity
from probes.runners.local import SubprocessRunner
from tests.conftest import make_spec

UPCONV = [
    {"id": "c", "op": "conv2d", "inputs": ["x"], "params": {"filters": 4, "kernel": 3}},
    {
        "id": "up1",
        "op": "conv_transpose2d",
        "inputs": ["c"],
        "params": {"filters": 5, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1},
    },
    {
        "id": "up2",
        "op": "conv_transpose2d",
        "inputs": ["up1"],
        "params": {"filters": 2, "kernel": [2, 3], "stride": [2, 1], "bias": False},
    },
]


def test_conv_transpose2d_shapes() -> None:
    from probes.spec import build_graph

    g = build_graph(make_spec(UPCONV))
    assert g.tensors["up1"].shape == (5, 12, 12)  # (6-1)*2 - 2 + 3 + 1
    assert g.tensors["up2"].shape == (2, 24, 14)


@pytest.mark.parametrize("mode", ["forward", "train_step"])
def test_conv_transpose2d_parity(mode: str, runner: SubprocessRunner) -> None:
    report = check_parity(make_spec(UPCONV), runner, mode=mode)  # type: ignore[arg-type]
    assert report.passed, report.model_dump()
    assert report.compared[0].max_abs_value > 1e-2
