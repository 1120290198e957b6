"""Export probes: every path really exports, reloads, runs and matches the source model."""

from __future__ import annotations

import numpy as np
import pytest

from probes.checks.parity import compare
from probes.export.checks import (
    NO_ROUTE,
    ExportCheck,
    ExportReport,
    check_exports,
    condense,
    parse_targets,
    to_check,
)
from probes.measure.timing import MeasureConfig
from probes.payloads import ExportData
from probes.probe import Prober
from probes.protocol import (
    EXPORT_TARGETS,
    ExportWorkload,
    ProbeLimits,
    ProbeRequest,
    ProbeResult,
)
from probes.runners.local import SubprocessRunner
from tests.conftest import make_spec

QUICK = MeasureConfig(min_time_s=0.05, min_iters=3, max_warmup_s=0.5)

# Conv (channels-last on the TF side), pooling, dense: layouts and weights both matter.
SMALL_CNN = make_spec(
    [
        {"id": "c", "op": "conv2d", "inputs": ["x"], "params": {"filters": 4, "kernel": 3}},
        {"id": "r", "op": "relu", "inputs": ["c"]},
        {"id": "p", "op": "max_pool2d", "inputs": ["r"], "params": {"kernel": 2}},
        {"id": "f", "op": "flatten", "inputs": ["p"]},
        {"id": "d", "op": "dense", "inputs": ["f"], "params": {"units": 5}},
    ]
)


class CountingRunner:
    def __init__(self, inner: SubprocessRunner) -> None:
        self.inner = inner
        self.requests: list[ProbeRequest] = []

    def run(self, request: ProbeRequest) -> ProbeResult:
        self.requests.append(request)
        return self.inner.run(request)


@pytest.fixture(scope="module")
def report() -> ExportReport:
    runner = CountingRunner(SubprocessRunner(timeout_s=600))
    rep = check_exports(SMALL_CNN, Prober(runner), measure=QUICK)
    routes = {
        (r.framework, r.workload.target)
        for r in runner.requests
        if isinstance(r.workload, ExportWorkload)
    }
    assert len(routes) == len(runner.requests)
    assert not routes & set(NO_ROUTE), "no-route cells must not spawn a worker"
    return rep


@pytest.mark.parametrize(
    "framework,target",
    [(fw, t) for t in EXPORT_TARGETS for fw in ("torch", "tensorflow") if (fw, t) not in NO_ROUTE],
)
def test_each_export_path_verifies(report: ExportReport, framework: str, target: str) -> None:
    c = report.cell(framework, target)
    assert c is not None and c.status == "verified", c
    assert c.size_bytes and c.size_bytes > 4 * 4 * 3 * 3 * 3  # holds at least the conv weights
    assert c.latency_ms and c.latency_ms > 0 and c.export_s and c.export_s > 0
    assert c.max_abs_diff is not None and c.max_abs_diff <= 1e-4
    assert c.tool and c.runtime


def test_no_route_cells_are_unsupported_with_a_reason(report: ExportReport) -> None:
    for fw, target in NO_ROUTE:
        c = report.cell(fw, target)
        assert c is not None and c.status == "unsupported" and c.reason


def test_a_mismatching_artifact_is_failed_not_verified() -> None:
    diff = compare("out", np.zeros(3, np.float32), np.array([0, 0, np.nan], np.float32))
    data = ExportData(
        target="litert",
        tool="t",
        runtime="r",
        artifact="model.tflite",
        size_bytes=10,
        export_s=0.1,
        load_s=0.1,
        batch=1,
        max_abs_diff=diff.max_abs_diff,
        tolerance=diff.tolerance,
        outputs=[diff],
        latency=None,
    )
    # The worker sends this through JSON: a NaN difference must survive the trip.
    result = ProbeResult(status="failed", framework="tensorflow", reason="differs", data=data)
    back = ProbeResult.model_validate_json(result.model_dump_json())
    check = to_check("tensorflow", "litert", back)
    assert check.status == "failed" and check.size_bytes == 10 and check.latency_ms is None
    assert check.max_abs_diff is not None and np.isnan(check.max_abs_diff)


def test_runner_failures_become_failed_cells_and_a_timeout_its_own() -> None:
    r = ProbeResult(status="timeout", framework="torch", reason="no result within 900s")
    c = to_check("torch", "aot", r)
    assert c.status == "timeout" and c.reason == "timeout: no result within 900s"
    crash = ProbeResult(status="crashed", framework="torch", reason="signal 11")
    assert to_check("torch", "aot", crash).status == "failed"
    u = to_check("torch", "onnx", ProbeResult(status="unsupported", framework="torch", reason="x"))
    assert u.status == "unsupported"


class SlowRunner:
    """Every export runs out of its time limit; records the limit it was given."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def run(self, request: ProbeRequest) -> ProbeResult:
        self.timeouts.append(request.limits.timeout_s)
        return ProbeResult(status="timeout", framework=request.framework, reason="too slow")


def test_an_export_timeout_below_the_probers_own_bounds_each_export() -> None:
    runner = SlowRunner()
    prober = Prober(runner, limits=ProbeLimits(timeout_s=600))
    rep = check_exports(SMALL_CNN, prober, targets=["onnx"], timeout_s=120)
    assert runner.timeouts == [120, 120]
    assert {c.status for c in rep.checks} == {"timeout"}
    check_exports(
        SMALL_CNN, Prober(runner, limits=ProbeLimits(timeout_s=60)), targets=["onnx"], timeout_s=120
    )
    assert runner.timeouts[-2:] == [60, 60]  # never looser than the prober's own


def test_condense_picks_the_error_line_and_bounds_it() -> None:
    text = "Traceback...\n  File x\nConverterError: op FlexFoo is not supported\nmore"
    assert condense(text) == "ConverterError: op FlexFoo is not supported"
    long = condense("ValueError: " + "x" * 1000)
    assert long is not None and len(long) == 300 and long.endswith("...")


def test_parse_targets() -> None:
    assert parse_targets("all") == list(EXPORT_TARGETS)
    assert parse_targets("litert, onnx") == ["onnx", "litert"]  # canonical order
    with pytest.raises(ValueError, match="unknown export target"):
        parse_targets("onnx,coreml")
    with pytest.raises(ValueError):
        parse_targets(" , ")


def test_export_check_round_trips_as_json(report: ExportReport) -> None:
    back = ExportReport.model_validate_json(report.model_dump_json())
    assert back == report
    assert isinstance(back.checks[0], ExportCheck)


def test_deploy_shows_a_timeout_as_such() -> None:
    from service.cli.deploy import _export_cell

    slow = ExportCheck(framework="torch", target="executorch", status="timeout", reason="t")
    broken = ExportCheck(framework="torch", target="executorch", status="failed", reason="x")
    assert _export_cell(slow) == "TIMEOUT" and _export_cell(broken) == "FAIL"
