"""ONNX import of a learned token concatenated to a [B, T, E] sequence (ViT's class token)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from probes.errors import UnsupportedOpsError
from probes.importers.onnx_import import convert_graph

TOKEN = np.arange(4, dtype=np.float32).reshape(1, 1, 4) + 1


def _model(token: np.ndarray, first: bool = True, axis: int = 1) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5, 4])
    dims = [2, 6, 4] if axis == 1 else [2, 5, 8]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)
    ins = ["tok", "x"] if first else ["x", "tok"]
    nodes = [helper.make_node("Concat", ins, ["y"], name="cat", axis=axis)]
    graph = helper.make_graph(nodes, "g", [x], [y], [numpy_helper.from_array(token, "tok")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("token", [TOKEN, np.concatenate([TOKEN, TOKEN])])  # as is, expanded
def test_a_prepended_token_becomes_class_token(token: np.ndarray) -> None:
    res = convert_graph(_model(token), "cls")
    (node,) = res.spec["nodes"]
    assert node["op"] == "class_token" and node["params"] == {"at": "start"}
    np.testing.assert_array_equal(res.weights[node["id"]]["weight"], TOKEN[0, 0])


def test_an_appended_token_is_class_token_at_the_end() -> None:
    res = convert_graph(_model(TOKEN, first=False), "cls")
    (node,) = res.spec["nodes"]
    assert node["op"] == "class_token" and node["params"] == {"at": "end"}


def test_two_constant_tokens_are_refused_clearly() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 7, 4])
    cat = helper.make_node("Concat", ["tok", "tok", "x"], ["y"], name="cat", axis=1)
    tok = numpy_helper.from_array(TOKEN, "tok")
    graph = helper.make_graph([cat], "g", [x], [y], [tok])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UnsupportedOpsError, match="only one learned token put before or after"):
        convert_graph(m, "cls")


def test_a_token_concatenated_along_features_is_refused() -> None:
    with pytest.raises(UnsupportedOpsError, match="only supported along the sequence"):
        convert_graph(_model(np.ones((1, 5, 4), np.float32), axis=2), "cls")


def test_a_token_that_differs_per_sample_is_refused() -> None:
    token = np.concatenate([TOKEN, TOKEN + 1])
    with pytest.raises(UnsupportedOpsError, match="varies along the batch"):
        convert_graph(_model(token), "cls")
