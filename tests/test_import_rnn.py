"""ONNX recurrent layers: both directions import, a reverse-only layer is refused by name.

Hand-built ONNX graphs (no exporter can write a reverse-only LSTM from torch); the
bidirectional exports from torch pass three-way parity in test_import_onnx (slow).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from probes.errors import UnsupportedOpsError
from probes.importers.onnx_import import convert_graph

H, F, T = 5, 3, 7


def _rnn(op: str, direction: str, **attrs: int) -> onnx.ModelProto:
    dirs = 2 if direction == "bidirectional" else 1
    gates = 4 if op == "LSTM" else 3
    rng = np.random.default_rng(0)
    w = rng.standard_normal((dirs, gates * H, F)).astype(np.float32)
    r = rng.standard_normal((dirs, gates * H, H)).astype(np.float32)
    b = rng.standard_normal((dirs, 2 * gates * H)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w, "W"), (r, "R"), (b, "B"))]
    node = helper.make_node(
        op, ["x", "W", "R", "B"], ["y"], name="rnn1", hidden_size=H, direction=direction
    )
    node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items())
    node.output[0] = "seq"  # [T, D, B, H], time-major as ONNX defines it
    perm = helper.make_node("Transpose", ["xb"], ["x"], perm=[1, 0, 2])
    back = helper.make_node("Transpose", ["seq"], ["bt"], perm=[2, 0, 1, 3])
    flat = helper.make_node("Reshape", ["bt", "shape"], ["y"])
    inits.append(numpy_helper.from_array(np.array([2, T, dirs * H], np.int64), "shape"))
    xb = helper.make_tensor_value_info("xb", TensorProto.FLOAT, [2, T, F])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, T, dirs * H])
    graph = helper.make_graph([perm, node, back, flat], "g", [xb], [y], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_reverse_only_rnn_is_refused_with_the_node_and_reason(op: str) -> None:
    extra = {"linear_before_reset": 1} if op == "GRU" else {}
    with pytest.raises(UnsupportedOpsError) as e:
        convert_graph(_rnn(op, "reverse", **extra), "m")
    assert e.value.nodes == [
        (op, "rnn1", e.value.nodes[0][2]),
    ]
    assert "direction='reverse'" in e.value.nodes[0][2]
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_bidirectional_rnn_imports_with_both_weight_sets(op: str) -> None:
    extra = {"linear_before_reset": 1} if op == "GRU" else {}
    imp = convert_graph(_rnn(op, "bidirectional", **extra), "m")
    rnn = next(n for n in imp.spec["nodes"] if n["op"] == op.lower())
    assert rnn["params"]["bidirectional"] is True
    assert {k for k in imp.weights[rnn["id"]] if k.endswith("_reverse")}
    assert imp.shapes[rnn["id"]].shape == (T, 2 * H)


def test_gru_without_linear_before_reset_is_refused() -> None:
    with pytest.raises(UnsupportedOpsError, match="linear_before_reset=0"):
        convert_graph(_rnn("GRU", "forward"), "m")
