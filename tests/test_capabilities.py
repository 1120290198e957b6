"""The capability matrix: every cell sourced, and this model's exports outrank it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from probes.export.checks import ExportCheck, ExportReport
from recommender.knowledge.capabilities import (
    DEFAULT_PATH,
    TARGETS,
    CapabilityError,
    load_matrix,
    merge,
    parse_matrix,
)

RAW: dict[str, Any] = yaml.safe_load(DEFAULT_PATH.read_text())


def _raw() -> dict[str, Any]:
    return copy.deepcopy(RAW)


def test_shipped_matrix_loads_with_every_target_and_source() -> None:
    m = load_matrix()
    assert tuple(m.targets) == TARGETS
    for t in m.targets.values():
        for cell in (t.torch, t.tensorflow):
            for route in (cell, *cell.also):
                assert route.source.startswith("https://") and route.checked.year >= 2025


@pytest.mark.parametrize(
    "target,framework,status,text",
    [
        ("serving", "torch", "archived", "TorchServe"),
        ("server_cpp", "torch", "deprecated", "TorchScript"),
        ("android", "torch", "deprecated", "PyTorch Mobile"),
        ("go", "tensorflow", "unsupported", "Go bindings"),
        ("serving", "tensorflow", "deprecated", "Triton TensorFlow backend"),
    ],
)
def test_required_facts_are_encoded(target: str, framework: str, status: str, text: str) -> None:
    cell = load_matrix().targets[target].cell(framework)  # type: ignore[arg-type]
    assert any(r.status == status and text in r.tool for r in (cell, *cell.also))


def test_executorch_and_litert_are_the_mobile_routes() -> None:
    m = load_matrix()
    android = m.targets["android"]
    assert "ExecuTorch" in android.torch.tool and android.torch.status == "GA"
    assert "1.0 reached GA in Oct 2025" in (android.torch.note or "")
    assert "LiteRT" in android.tensorflow.tool
    assert "TensorFlow Lite is now LiteRT" in (android.tensorflow.note or "")


def test_a_cell_without_a_source_is_refused_with_its_path() -> None:
    raw = _raw()
    del raw["targets"]["android"]["torch"]["source"]
    with pytest.raises(CapabilityError, match=r"targets\.android\.torch\.source: Field required"):
        parse_matrix(raw)


def test_an_also_route_without_a_source_or_with_a_non_url_is_refused() -> None:
    raw = _raw()
    raw["targets"]["serving"]["torch"]["also"][0]["source"] = "trust me"
    with pytest.raises(CapabilityError, match=r"also\.0\.source.*http"):
        parse_matrix(raw)


def test_missing_target_and_bad_level_are_refused() -> None:
    raw = _raw()
    del raw["targets"]["tpu"]
    with pytest.raises(CapabilityError, match="missing \\['tpu'\\]"):
        parse_matrix(raw)
    raw = _raw()
    raw["targets"]["ios"]["tensorflow"]["level"] = "great"
    with pytest.raises(CapabilityError, match=r"ios\.tensorflow\.level"):
        parse_matrix(raw)


def _check(fw: str, target: str, status: str, reason: str | None = None) -> ExportCheck:
    return ExportCheck(framework=fw, target=target, status=status, reason=reason)


def _report(*checks: ExportCheck) -> ExportReport:
    targets = list(dict.fromkeys(c.target for c in checks))
    return ExportReport(model="m", batch=1, targets=targets, checks=list(checks), wall_s=0)


def _cell(cells: list[Any], target: str, fw: str) -> Any:
    return next(c for c in cells if c.target == target and c.framework == fw)


def test_without_exports_every_cell_is_static() -> None:
    cells = merge(load_matrix(), None)
    assert len(cells) == 2 * len(TARGETS) and {c.verdict for c in cells} == {"static"}


def test_verified_export_overrides_and_names_the_route() -> None:
    cells = merge(load_matrix(), _report(_check("torch", "onnx", "verified")))
    browser = _cell(cells, "browser", "torch")
    assert browser.verdict == "verified" and browser.route.export == "onnx"
    assert "onnx" in browser.summary and browser.evidence[0].status == "verified"
    # A TF cell is untouched by a torch export; a target no probe can run stays static.
    assert _cell(cells, "browser", "tensorflow").verdict == "static"
    assert _cell(cells, "tpu", "torch").verdict == "static"


def test_the_most_mature_verified_route_decides() -> None:
    # TF on Go: the primary route (Go bindings) is unsupported; ONNX via onnxruntime_go
    # is the better-supported route when both artifacts verify.
    cells = merge(
        load_matrix(),
        _report(
            _check("tensorflow", "native", "verified"), _check("tensorflow", "onnx", "verified")
        ),
    )
    go = _cell(cells, "go", "tensorflow")
    assert (
        go.verdict == "verified" and go.route.export == "onnx" and go.route.status != "unsupported"
    )


def test_a_dead_route_is_never_verified_by_an_artifact() -> None:
    # TF on C#: the SavedModel reloaded in Python says nothing for TensorFlow.NET
    # (unsupported). With the live ONNX route failed, the cell is failed, not verified.
    cells = merge(
        load_matrix(),
        _report(
            _check("tensorflow", "native", "verified"),
            _check("tensorflow", "onnx", "failed", "tf2onnx: boom"),
        ),
    )
    cs = _cell(cells, "csharp", "tensorflow")
    assert cs.verdict == "failed" and "boom" in cs.summary and "native" not in cs.summary
    only_native = merge(load_matrix(), _report(_check("tensorflow", "native", "verified")))
    cs = _cell(only_native, "csharp", "tensorflow")
    assert cs.verdict == "static" and "TensorFlow.NET" in cs.summary and "not a live" in cs.summary


def test_an_export_that_ran_out_of_time_leaves_the_matrix_level() -> None:
    slow = merge(
        load_matrix(),
        _report(
            _check("torch", "executorch", "timeout", "timeout: no result within 120 s"),
            _check("torch", "litert", "failed", "bang"),
        ),
    )
    android = _cell(slow, "android", "torch")  # one route failed, the other showed nothing
    assert android.verdict == "static"
    assert "executorch export did not finish" in android.summary
    assert "litert export failed" in android.summary


def test_failed_only_when_every_probeable_route_failed() -> None:
    one = merge(load_matrix(), _report(_check("torch", "executorch", "failed", "boom")))
    android = _cell(one, "android", "torch")  # litert route not tried: still static
    assert android.verdict == "static" and "executorch export failed" in android.summary
    both = merge(
        load_matrix(),
        _report(
            _check("torch", "executorch", "failed", "boom"),
            _check("torch", "litert", "failed", "bang"),
        ),
    )
    android = _cell(both, "android", "torch")
    assert android.verdict == "failed" and "boom" in android.summary and "bang" in android.summary
