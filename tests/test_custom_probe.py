"""The custom-op probe: eager cost per mode, compile checks, gradient check, export impact."""

from __future__ import annotations

import pytest

from probes.checks.custom_ops import NEEDS, CustomOpReport, custom_op_report
from probes.errors import AdvisorError
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.runners.local import SubprocessRunner
from service.cli.custom import render
from tests.conftest import make_spec
from tests.test_custom_op import SWISH_GRAD, custom

QUICK = MeasureConfig(min_time_s=0.05, min_iters=3, max_warmup_s=0.5)

SPEC = make_spec(
    [
        {"id": "h", "op": "dense", "inputs": ["x"], "params": {"units": 16}},
        custom("act", ["h"], "x * sigmoid(beta * x)", constants={"beta": 1.5}, grad=[SWISH_GRAD]),
        # No declared grad: autodiff only; opaque, it cannot train.
        custom("soft", ["act"], "x - log(sum(exp(x), axis=0, keepdims=True))"),
        {"id": "o", "op": "dense", "inputs": ["soft"], "params": {"units": 3}},
    ],
    inputs=[{"name": "x", "shape": [8]}],
)


@pytest.fixture(scope="module")
def report() -> CustomOpReport:
    prober = Prober(SubprocessRunner(timeout_s=600), measure=QUICK)
    return custom_op_report(
        SPEC, prober, batch=4, compile=False, targets=["native", "onnx"], export_measure=QUICK
    )


def test_every_mode_is_timed_against_the_builtin_baseline(report: CustomOpReport) -> None:
    assert report.nodes == ["act", "soft"]
    for fw in report.frameworks:
        assert fw.status == "ok" and fw.data is not None, fw.reason
        modes = {m.mode: m for m in fw.data.modes}
        assert list(modes) == ["autodiff", "explicit", "opaque"]
        assert all(m.infer is not None and m.infer.median_s > 0 for m in modes.values())
        assert fw.ratio("autodiff") == 1.0 and (fw.ratio("opaque") or 0) > 0
        assert modes["explicit"].train is not None
        # The opaque kernel of `soft` has no grad: training is refused, with the node named.
        assert modes["opaque"].train is None
        assert "soft" in (modes["opaque"].train_reason or "")


def test_compile_checks(report: CustomOpReport) -> None:
    by = {
        fw.framework: {m.mode: m.compile for m in fw.data.modes}
        for fw in report.frameworks
        if fw.data
    }
    trace = by["torch"]["autodiff"][0]
    assert trace.name.startswith("torch.compile trace") and trace.ok and trace.graph_breaks == 0
    xla = {m: next(c for c in checks if "XLA" in c.name) for m, checks in by["tensorflow"].items()}
    assert xla["autodiff"].ok
    # XLA cannot compile a Python kernel: the check says so instead of passing.
    assert not xla["opaque"].ok and "PyFunc" in xla["opaque"].detail


def test_gradients_pass_the_numerical_check(report: CustomOpReport) -> None:
    for fw in report.frameworks:
        assert fw.data is not None
        grads = fw.data.grads
        assert set(grads) == {"act", "soft"} and all(g.passed for g in grads.values())
        sources = set(grads["act"].max_abs_err)
        assert {f"{fw.framework}_explicit", f"{fw.framework}_opaque", "declared"} <= sources


def test_an_opaque_kernel_breaks_exports_and_says_what_it_needs(report: CustomOpReport) -> None:
    base, opaque = report.exports["autodiff"], report.exports["opaque"]
    for fw in ("torch", "tensorflow"):
        for target in ("native", "onnx"):
            assert base.cell(fw, target).status == "verified"  # type: ignore[union-attr]
            assert opaque.cell(fw, target).status == "failed"  # type: ignore[union-attr]
    # torch.export.load finds the op in the process that registered it; only a fresh
    # process, as a deployment has, shows that the ExportedProgram cannot load.
    torch_native = opaque.cell("torch", "native")
    assert torch_native is not None and torch_native.reason is not None
    assert "without the Python kernel of act, soft" in torch_native.reason
    assert "fwadvisor" in torch_native.reason  # the root cause: the op is not registered
    needs = {(n.framework, n.target): n.needs for n in report.needs}
    assert needs == {
        (fw, t): NEEDS[fw, t] for fw in ("torch", "tensorflow") for t in ("native", "onnx")
    }


def test_the_text_report_names_every_failure(report: CustomOpReport) -> None:
    text = render(report)
    assert "exports: built-in ops -> opaque kernel" in text
    assert "  opaque torch native: FAIL: the artifact does not run without" in text
    assert "  opaque tensorflow onnx: FAIL:" in text
    assert "what an opaque kernel then needs:" in text and NEEDS["torch", "native"] in text


def test_a_model_without_custom_ops_is_refused() -> None:
    plain = make_spec([{"id": "d", "op": "dense", "inputs": ["x"], "params": {"units": 2}}])
    with pytest.raises(AdvisorError, match="no custom op node"):
        custom_op_report(plain, Prober(SubprocessRunner()))
