"""The ``custom`` op: validation, analytics, and cross-framework parity in worker processes.

Frameworks run only in subprocesses (the parity workers, or a one-off interpreter for the
gradient check), as everywhere else in the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from probes import errors
from probes.checks.parity import check_parity
from probes.runners.local import SubprocessRunner
from probes.spec import TensorInfo, analyze, build_graph, load_spec_file
from probes.spec.custom_grad import gradcheck, sample_arrays
from probes.spec.ops_custom import CustomMode, CustomParams, compile_custom, with_custom_mode
from tests.conftest import ROOT, make_spec

SWISH_GRAD = "g * (sigmoid(beta * x) + beta * y * (1 - sigmoid(beta * x)))"
RMS = "x * rsqrt(mean(square(x), axis=0, keepdims=True) + eps)"
RMS_GRAD = (
    "rsqrt(mean(square(x), axis=0, keepdims=True) + eps)"
    " * (g - y * mean(g * y, axis=0, keepdims=True))"
)


def custom(node_id: str, inputs: list[str], forward: str, **params: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "op": "custom",
        "inputs": inputs,
        "params": {"name": node_id, "forward": forward, **params},
    }


CNN = [
    {
        "id": "c1",
        "op": "conv2d",
        "inputs": ["x"],
        "params": {"filters": 4, "kernel": 3, "padding": "same"},
    },
    # Reduction over the channel axis: Keras must hand this node the neutral layout.
    custom("rms", ["c1"], RMS, constants={"eps": 1e-5}, grad=[RMS_GRAD]),
    {"id": "c0", "op": "conv2d", "inputs": ["x"], "params": {"filters": 3, "kernel": 1}},
    # Two inputs of different layouts in Keras; c0's channel mean broadcasts over 4
    # channels, so its declared grad is broadcast back to 3 channels (and reaches c0).
    custom(
        "mix",
        ["rms", "c0"],
        "x0 * sigmoid(beta * x0) + mean(x1, axis=0, keepdims=True)",
        constants={"beta": 1.5},
        grad=[
            "g * (sigmoid(beta * x0) + beta * x0 * sigmoid(beta * x0) * (1 - sigmoid(beta * x0)))",
            "sum(g, axis=0, keepdims=True) / 3",  # [1, H, W], broadcast back to [3, H, W]
        ],
    ),
    {"id": "c2", "op": "conv2d", "inputs": ["mix"], "params": {"filters": 4, "kernel": 3}},
    # Elementwise, one input: stays channels-last in Keras (no transposes around it).
    custom("swish", ["c2"], "x * sigmoid(beta * x)", constants={"beta": 1.5}, grad=[SWISH_GRAD]),
    {"id": "f", "op": "flatten", "inputs": ["swish"]},
    {"id": "out", "op": "dense", "inputs": ["f"], "params": {"units": 3}},
]
MLP = [
    {"id": "h", "op": "dense", "inputs": ["v"], "params": {"units": 16}},
    custom(
        "act",
        ["h"],
        "where(x > 0, x, alpha * (exp(x) - 1)) + 0.1 * x / (1 + abs(x))",
        constants={"alpha": 0.7},
        grad=["g * (where(x > 0, 1.0, alpha * exp(x)) + 0.1 / square(1 + abs(x)))"],
    ),
    {"id": "out", "op": "dense", "inputs": ["act"], "params": {"units": 3}},
]
SPECS = {
    "cnn": make_spec(CNN, inputs=[{"name": "x", "shape": [3, 10, 10]}]),
    "mlp": make_spec(MLP, inputs=[{"name": "v", "shape": [12]}]),
}
MODES: list[CustomMode] = ["declared", "autodiff", "opaque"]


def test_cnn_spec_shapes_and_flops() -> None:
    graph = build_graph(SPECS["cnn"])
    assert graph.tensors["rms"].shape == graph.tensors["mix"].shape == (4, 10, 10)
    flops = {n.id: n.flops for n in analyze(graph).nodes}
    assert flops["swish"] == 2 * 3 * (4 * 8 * 8)  # beta * x, sigmoid, x * (...)
    assert flops["rms"] > 0 and flops["mix"] > 0


@pytest.mark.parametrize(
    ("params", "exc", "path", "fragment"),
    [
        ({"forward": "x.__class__"}, errors.ExpressionError, "params.forward", "attribute"),
        ({"forward": "x", "grad": ["__import__('os')"]}, errors.ExpressionError, "grad.0", "`__"),
        ({"forward": "x", "constants": {"sum": 1.0}}, errors.ExpressionError, "constants", "sum"),
        ({"forward": "x", "opaque": "maybe"}, errors.ParamError, "params.opaque", "bool"),
        ({"forward": "x2"}, errors.ExpressionError, "nodes.0", "`x2` is not defined"),
        ({"forward": "x", "grad": ["g", "g"]}, errors.ExpressionError, "nodes.0", "one per"),
        ({"forward": "sum(x, axis=3)"}, errors.ExpressionError, "nodes.0", "out of range"),
        ({"forward": "x", "grad": ["sum(g, axis=1)"]}, errors.ExpressionError, "nodes.0", "reduce"),
    ],
)
def test_validation_errors_name_node_and_path(
    params: dict[str, Any], exc: type[errors.SpecError], path: str, fragment: str
) -> None:
    spec = make_spec([custom("k", ["x"], **params)])
    with pytest.raises(exc) as info:
        build_graph(spec)
    assert info.value.node == "k" and "node 'k'" in info.value.message
    assert info.value.path is not None and path in info.value.path, info.value.path
    assert fragment in info.value.message, info.value.message


def test_arity_is_one_to_eight() -> None:
    spec = make_spec([custom("k", ["x"] * 9, "x")])
    with pytest.raises(errors.ArityError, match=r"1\.\.8"):
        build_graph(spec)


def test_modes_rewrite_only_custom_nodes() -> None:
    spec = SPECS["mlp"]
    assert with_custom_mode(spec, "declared") is spec
    auto = {n.id: n.params for n in with_custom_mode(spec, "autodiff").nodes}
    assert "grad" not in auto["act"] and auto["act"]["opaque"] is False
    assert auto["h"] == {"units": 16}
    assert with_custom_mode(spec, "opaque").nodes[1].params["opaque"] is True
    bare = make_spec([custom("k", ["x"], "x")])
    with pytest.raises(errors.SpecError, match="needs a declared grad"):
        with_custom_mode(bare, "explicit")
    # With at least one declared grad, nodes without one keep framework autodiff.
    mixed = load_spec_file(ROOT / "data" / "examples" / "custom_swish.yaml")
    explicit = {n.id: n.params for n in with_custom_mode(mixed, "explicit").nodes}
    assert explicit["act1"]["grad"] and "grad" not in explicit["norm2"]


def test_example_spec_validates() -> None:
    spec = load_spec_file(ROOT / "data" / "examples" / "custom_swish.yaml")
    analysis = analyze(build_graph(spec.resized("small")))
    assert [n.op for n in analysis.nodes].count("custom") == 3


# The cnn runs every mode (its reductions cross the layout change); the mlp's declared
# mode stays in the default run, its other two modes run with the slow tests.
@pytest.mark.parametrize(
    ("kind", "mode"),
    [("cnn", m) for m in MODES]
    + [
        pytest.param("mlp", m, marks=pytest.mark.slow) if m != "declared" else ("mlp", m)
        for m in MODES
    ],
)
def test_forward_parity(kind: str, mode: CustomMode, runner: SubprocessRunner) -> None:
    report = check_parity(with_custom_mode(SPECS[kind], mode), runner, batch=3)
    assert report.passed, report.failures or [c for c in report.compared if not c.passed]
    assert report.compared[0].max_abs_value > 1e-2


@pytest.mark.parametrize(("kind", "mode"), [("cnn", m) for m in MODES] + [("mlp", "declared")])
def test_train_step_parity(kind: str, mode: CustomMode, runner: SubprocessRunner) -> None:
    # SGD at lr=1: the updated weights differ by the gradient difference, so this checks
    # the gradient flowing back through every custom node in both frameworks.
    spec = with_custom_mode(SPECS[kind], mode)
    report = check_parity(spec, runner, batch=4, mode="train_step", optimizer="sgd", lr=1.0)
    assert report.passed, report.failures or [c for c in report.compared if not c.passed]
    if kind == "cnn":
        assert {"loss", "c0/weight", "c1/weight", "c2/weight"} <= {c.name for c in report.compared}


def test_opaque_without_grad_cannot_train(runner: SubprocessRunner) -> None:
    spec = make_spec(
        [*MLP[:1], custom("act", ["h"], "tanh(x) * 2", opaque=True), MLP[2]],
        inputs=[{"name": "v", "shape": [12]}],
    )
    assert check_parity(spec, runner).passed  # the forward pass works
    report = check_parity(spec, runner, mode="train_step", lr=1.0)
    assert not report.passed and set(report.failures) == {"torch", "tensorflow"}
    for text in report.failures.values():
        assert text.startswith("unsupported:") and "'act' is opaque and declares no grad" in text


GRAD_CASES = [
    (
        "x * sigmoid(beta * x)",
        ["g * (sigmoid(beta * x) + beta * y * (1 - sigmoid(beta * x)))"],
        [(4, 3)],
    ),
    (  # RMS norm over the channel axis: a reduction in forward and grad
        "x * rsqrt(mean(square(x), axis=0, keepdims=True) + 1e-5)",
        [
            "rsqrt(mean(square(x), axis=0, keepdims=True) + 1e-5)"
            " * (g - y * mean(g * y, axis=0, keepdims=True))"
        ],
        [(4, 3, 3)],
    ),
    (  # broadcast input: its grad (shape [4, 3, 3]) is summed down to [4, 1, 1]
        "x0 * x1 + tanh(x1)",
        ["g * x1", "g * x0 + g * (1 - square(tanh(x1)))"],
        [(4, 3, 3), (4, 1, 1)],
    ),
    (  # lower-rank input and a constant grad
        "where(x0 > 0, x0, 0.5 * x0) + 3.0 * x1",
        ["where(x0 > 0, g, 0.5 * g)", "3.0 * sum(g, axis=0)"],
        [(2, 5), (5,)],
    ),
    ("x0 + 0 * x1", ["g", "0.0"], [(3,), (3,)]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fwd", "grads", "shapes"), GRAD_CASES, ids=[c[0][:30] for c in GRAD_CASES]
)
def test_declared_grad_matches_finite_differences(
    fwd: str, grads: list[str], shapes: list[tuple[int, ...]]
) -> None:
    p = CustomParams(name="t", forward=fwd, grad=grads, constants={"beta": 1.7})
    prog = compile_custom(p, [TensorInfo(s) for s in shapes])
    arrays, upstream = sample_arrays(prog, batch=3, seed=1)
    report = gradcheck(prog, arrays, upstream, rtol=1e-7)
    assert report.passed, report
    assert set(report.max_abs_err) == {"declared"} and report.scale > 0.1


def test_gradcheck_catches_a_wrong_grad() -> None:
    p = CustomParams(name="t", forward="x * sigmoid(x)", grad=["g * sigmoid(x)"])
    prog = compile_custom(p, [TensorInfo((6,))])
    report = gradcheck(prog, *sample_arrays(prog))
    assert not report.passed and report.max_abs_err["declared"] > 1e-2


GRAD_SCRIPT = """
import json, sys
from probes.spec import build_graph, spec_from_mapping
from probes.spec.custom_grad import check_graph_grads
if sys.argv[1] == "torch":
    from probes.frameworks.torch.custom import custom_grads
else:
    from probes.frameworks.tf.layers import custom_grads
graph = build_graph(spec_from_mapping(json.loads(sys.stdin.read())))
reports = check_graph_grads(graph, custom_grads, sys.argv[1], batch=2, seed=3)
print("REPORTS", json.dumps({k: r.model_dump() for k, r in reports.items()}))
"""


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_gradients_explicit_vs_autodiff_vs_numerical(framework: str) -> None:
    """In a framework process: declared grad (native and opaque) and the framework's
    autodiff of the forward expression, all against float64 finite differences."""
    spec = SPECS["cnn"].model_dump(mode="json")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", GRAD_SCRIPT, framework],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("REPORTS "))
    reports = json.loads(line.removeprefix("REPORTS "))
    assert set(reports) == {"rms", "mix", "swish"}
    for node, r in reports.items():
        want = {"declared", *(f"{framework}_{m}" for m in ("autodiff", "explicit", "opaque"))}
        assert set(r["max_abs_err"]) == want, node
        assert r["passed"], (node, r)
        assert max(r["max_abs_err"].values()) < 1e-7 * max(1.0, r["scale"]), (node, r)
