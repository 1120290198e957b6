"""Model-check defects of issue 19: predict mode's size limits, convergence on a model
it cannot train, train parity with dropout, and a comparison rule fair to Adam."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from probes.checks.datasets import make_dataset
from probes.checks.parity import _compare_adam, check_parity
from probes.checks.parity_rules import without_dropout
from probes.errors import LimitExceededError, UnsupportedError
from probes.runners.local import SubprocessRunner
from probes.spec import build_graph
from recommender.recommend import recommend
from service.cli.main import main
from tests.conftest import make_spec

HUGE: dict[str, Any] = {  # 10^12 parameters: refused before anything runs
    "name": "huge",
    "inputs": [{"name": "x", "shape": [1_000_000]}],
    "nodes": [{"id": "fc", "op": "dense", "inputs": ["x"], "params": {"units": 1_000_000}}],
    "outputs": ["fc"],
}


def test_predict_mode_applies_the_size_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: Any
) -> None:
    spec = make_spec(HUGE["nodes"], inputs=HUGE["inputs"])
    with pytest.raises(LimitExceededError, match="parameters; the limit"):
        recommend(spec, {}, "predict", settings=settings)
    f = tmp_path / "huge.json"
    f.write_text(json.dumps(HUGE))
    assert main(["recommend", str(f), "--mode", "predict"]) == 2
    assert "parameters; the limit" in capsys.readouterr().err


PER_PIXEL = [  # a segmentation-like head: 4 classes per pixel
    {
        "id": "c",
        "op": "conv2d",
        "inputs": ["x"],
        "params": {"filters": 4, "kernel": 3, "padding": "same"},
    },
]


def test_convergence_refuses_a_per_pixel_output_with_a_reason() -> None:
    spec = make_spec(PER_PIXEL, inputs=[{"name": "x", "shape": [3, 16, 16]}])
    with pytest.raises(
        UnsupportedError, match=r"must be \[classes\]; this model's is \[4, 16, 16\]"
    ):
        make_dataset(build_graph(spec))


def test_probe_convergence_cli_says_unsupported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "seg.json"
    f.write_text(
        json.dumps(
            {
                "name": "seg",
                "inputs": [{"name": "x", "shape": [3, 16, 16]}],
                "nodes": PER_PIXEL,
                "outputs": ["c"],
            }
        )
    )
    assert main(["probe", str(f), "--workload", "convergence", "--framework", "torch"]) == 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]  # after the progress line
    assert last.startswith("error: ") and "[classes]" in last and "Traceback" not in err


def test_convergence_honours_framework(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "probe",
            "mlp",
            "--workload",
            "convergence",
            "--framework",
            "torch",
            "--epochs",
            "1",
            "--json",
        ]
    )
    rep = json.loads(capsys.readouterr().out)
    assert code == 0 and [c["framework"] for c in rep["curves"]] == ["torch"]


DROPOUT = [
    {"id": "h", "op": "dense", "inputs": ["v"], "params": {"units": 16}},
    {"id": "d", "op": "dropout", "inputs": ["h"], "params": {"rate": 0.5}},
    {"id": "out", "op": "dense", "inputs": ["d"], "params": {"units": 3}},
]


def test_dropout_is_disabled_for_the_comparison() -> None:
    spec = make_spec(DROPOUT, inputs=[{"name": "v", "shape": [8]}])
    off, n = without_dropout(spec)
    assert n == 1 and off.nodes[1].params["rate"] == 0.0 and spec.nodes[1].params["rate"] == 0.5


def test_train_parity_with_dropout_passes_and_says_why(runner: SubprocessRunner) -> None:
    spec = make_spec(DROPOUT, inputs=[{"name": "v", "shape": [8]}])
    report = check_parity(spec, runner, batch=4, mode="train_step", lr=1.0)
    assert report.passed, [c for c in report.compared if not c.passed] or report.failures
    assert any("dropout disabled" in n for n in report.notes)


def test_adams_ill_conditioned_elements_are_excused_and_real_differences_are_not() -> None:
    lr = 0.01
    before = {"w/weight": np.zeros(4, np.float32)}
    # elements 0-1: |g| >> eps on both sides (a full lr step); 2: g near eps, so the two
    # updates differ by half of lr though the gradients agree to 1e-8; 3: one side never
    # updated the weight while the other took a full step (a real difference)
    ref = {"w/weight": np.array([-lr, lr, -0.3 * lr, -lr], np.float32)}
    same = {"w/weight": np.array([-lr, lr, -0.8 * lr, -lr], np.float32)}
    notes: list[str] = []
    assert all(c.passed for c in _compare_adam(ref, same, before, lr, 1e-4, notes))
    assert "1 weight element(s) with a gradient near eps" in notes[0]
    broken = {"w/weight": np.array([-lr, lr, -0.8 * lr, 0.0], np.float32)}
    assert not _compare_adam(ref, broken, before, lr, 1e-4, [])[0].passed


GELU: dict[str, Any] = {
    "name": "gelu_mlp",
    "inputs": [{"name": "v", "shape": [8]}],
    "nodes": [
        {"id": "h", "op": "dense", "inputs": ["v"], "params": {"units": 16}},
        {"id": "g", "op": "gelu", "inputs": ["h"]},
        {"id": "out", "op": "dense", "inputs": ["g"], "params": {"units": 3}},
    ],
    "outputs": ["out"],
}


def test_tf_to_onnx_export_of_gelu_runs_in_onnx_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keras' gelu became ONNX Erfc, which ONNX Runtime refuses; the erf form does not."""
    monkeypatch.setenv("FWADVISOR_DATA_DIR", str(tmp_path))
    f = tmp_path / "gelu.json"
    f.write_text(json.dumps(GELU))
    argv = ["deploy", str(f), "--framework", "tf", "--targets", "onnx", "--json"]
    assert main(argv) == 0
    cell = json.loads(capsys.readouterr().out)["exports"]["checks"][0]
    assert cell["target"] == "onnx" and cell["status"] == "verified", cell["reason"]
