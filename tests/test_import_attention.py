"""Attention exports become the spec's ``self_attention`` op and pass three-way parity.

torch.nn.MultiheadAttention (plain and causal, both exporters), nn.TransformerEncoder,
scaled_dot_product_attention exported at opset 23 (ONNX ``Attention``) and a tiny
``transformers`` BertModel built from a config with random weights (when installed).
Fixtures are exported in the test run (tests/fixtures/onnx_models.py).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from probes.errors import UnsupportedOpsError
from probes.importers import import_file
from probes.importers.onnx_import import convert_graph
from probes.importers.parity import three_way_parity
from probes.runners.local import SubprocessRunner
from probes.spec import analyze, build_graph

FIXTURES = Path(__file__).parent / "fixtures" / "onnx_models.py"
HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
# name: (self_attention nodes, causal, trainable parameters as torch counts them)
EXPECT = {
    "mha_ts": (1, False, 112 + 4 * (16 * 16 + 16) + 51),
    "mha_causal_ts": (1, True, 112 + 4 * (16 * 16 + 16) + 51),
    "mha_dynamo": (1, False, 112 + 4 * (16 * 16 + 16) + 51),
    "transformer_ts": (2, False, 112 + 2 * (4 * 272 + (16 * 32 + 32) + (32 * 16 + 16) + 2 * 32)),
    "sdpa_opset23": (1, False, 4 * 272),
    "sdpa_causal_opset23": (1, True, 4 * 272),
    "encoder_ts": (1, False, 3203),
}
# BERT from transformers: word, token-type (one row used) and position tables, 2 layers.
BERT_PARAMS = 60 * 16 + 8 * 16 + 8 * 16 + 32 + 2 * (4 * 272 + 32 + 16 * 32 + 32 + 32 * 16 + 16 + 32)
NAMES = [*EXPECT, *(["bert_hf_ts"] if HAS_TRANSFORMERS else [])]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("attention")
    subprocess.run(
        [sys.executable, str(FIXTURES), str(out), *NAMES], check=True, capture_output=True
    )
    return out


@pytest.mark.parametrize("name", NAMES)
def test_attention_imports_as_self_attention(exported: Path, tmp_path: Path, name: str) -> None:
    res = import_file(exported / f"{name}.onnx", tmp_path / f"{name}.yaml")
    graph = build_graph(res.spec)
    ops = [n.op for n in graph.nodes]
    assert "matmul" not in ops and "softmax" not in ops  # nothing left of the composition
    attn = [n for n in graph.nodes if n.op == "self_attention"]
    count, causal, params = EXPECT.get(name, (2, False, BERT_PARAMS))
    assert len(attn) == count
    assert all(n.params.causal is causal for n in attn)
    assert analyze(graph).params == params


@pytest.mark.parametrize(
    "name",
    [
        "mha_ts",
        pytest.param("mha_causal_ts", marks=pytest.mark.slow),
        pytest.param("mha_dynamo", marks=pytest.mark.slow),
        pytest.param("transformer_ts", marks=pytest.mark.slow),
        pytest.param("sdpa_opset23", marks=pytest.mark.slow),
        pytest.param("sdpa_causal_opset23", marks=pytest.mark.slow),
        pytest.param(
            "bert_hf_ts",
            marks=[
                pytest.mark.slow,
                pytest.mark.skipif(not HAS_TRANSFORMERS, reason="transformers not installed"),
            ],
        ),
    ],
)
def test_attention_three_way_parity(exported: Path, tmp_path: Path, name: str) -> None:
    res = import_file(exported / f"{name}.onnx", tmp_path / f"{name}.yaml")
    report = three_way_parity(
        res.spec, exported / f"{name}.onnx", SubprocessRunner(timeout_s=300), batch=2
    )
    assert report.passed, report.model_dump_json(indent=2)
    assert len(report.compared) == 3


def _attention_model(mask: bool, scale: float | None = None) -> onnx.ModelProto:
    """Hand-built: q/k/v projections of x, opset-23 Attention, output projection."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), f"w{r}")
        for r in "qkvo"
    ]
    nodes = [helper.make_node("MatMul", ["x", f"w{r}"], [r]) for r in "qkv"]
    shape = numpy_helper.from_array(np.array([0, 0, 2, 4], np.int64), "split")
    nodes += [helper.make_node("Reshape", [r, "split"], [f"{r}4"]) for r in "qkv"]
    nodes += [helper.make_node("Transpose", [f"{r}4"], [f"{r}h"], perm=[0, 2, 1, 3]) for r in "qkv"]
    ins = ["qh", "kh", "vh", *(["m"] if mask else [])]
    att = helper.make_node("Attention", ins, ["a"], name="att")
    if scale is not None:
        att.attribute.append(helper.make_attribute("scale", scale))
    nodes.append(att)
    merge = numpy_helper.from_array(np.array([0, 0, 8], np.int64), "merge")
    nodes += [
        helper.make_node("Transpose", ["a"], ["at"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["at", "merge"], ["a3"]),
        helper.make_node("MatMul", ["a3", "wo"], ["y"]),
    ]
    extra = [numpy_helper.from_array(np.zeros((1, 1, 5, 5), np.float32), "m")] if mask else []
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5, 8])
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[*inits, shape, merge, *extra])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])


def test_opset23_attention_node_without_projections_is_refused_by_name() -> None:
    m = _attention_model(mask=True)  # a mask input: not what self_attention computes
    with pytest.raises(UnsupportedOpsError) as e:
        convert_graph(m, "m")
    assert e.value.nodes[0][:2] == ("Attention", "att")
    assert "without a mask input" in e.value.nodes[0][2]


def test_opset23_attention_with_a_foreign_scale_is_refused() -> None:
    with pytest.raises(UnsupportedOpsError, match=r"scaled by 0\.1, not 1/sqrt"):
        convert_graph(_attention_model(mask=False, scale=0.1), "m")
    spec = convert_graph(_attention_model(mask=False), "m").spec
    assert [n["op"] for n in spec["nodes"]] == ["self_attention"]
    assert spec["nodes"][0]["params"] == {"num_heads": 2, "causal": False}


def test_a_cyclic_graph_around_a_softmax_does_not_hang_the_import(tmp_path: Path) -> None:
    """A malformed graph: the attention search walks a bounded number of nodes (it used
    to loop forever here, until the import child's timeout)."""
    from probes.importers import ImportLimits

    nodes = [  # 'b' is written twice: walking back from the softmax goes a, b, a, b, ...
        helper.make_node("Add", ["x", "x"], ["b"], name="m0"),
        helper.make_node("Identity", ["b"], ["a"], name="m1"),
        helper.make_node("Identity", ["a"], ["b"], name="m2"),
        helper.make_node("Softmax", ["a"], ["y"], name="sm"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    graph = helper.make_graph(nodes, "g", [x], [y])
    onnx.save_model(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
        str(tmp_path / "cyc.onnx"),
    )
    res = import_file(tmp_path / "cyc.onnx", tmp_path / "cyc.yaml", limits=ImportLimits(30))
    assert [n.op for n in res.spec.nodes] == ["add", "softmax"]
