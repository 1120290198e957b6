"""Hostile and unsupported ONNX files: clear refusals, never a crash or a file read outside."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from probes.errors import ImportRefusedError, UnsupportedOpsError
from probes.importers import import_file
from probes.importers.onnx_file import load_onnx
from probes.importers.onnx_import import convert_graph
from service.cli.main import main


def _model(
    nodes: list[onnx.NodeProto],
    inits: list[TensorProto],
    out_shape: list[int | str],
    in_shape: list[int | str] | None = None,
    opset: int = 17,
    extra_opsets: list[onnx.OperatorSetIdProto] | None = None,
) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape or ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=inits)
    opsets = [helper.make_opsetid("", opset), *(extra_opsets or [])]
    return helper.make_model(graph, opset_imports=opsets)


def _dense_model(tmp: Path, location: str | None = None, offset: int = 0) -> Path:
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    if location is not None:
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", str(offset)), ("length", "48")):
            entry = w.external_data.add()
            entry.key, entry.value = k, v
    m = _model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [w], ["N", 3])
    path = tmp / "model.onnx"
    onnx.save_model(m, str(path))
    return path


def test_plain_external_data_inside_the_folder_loads(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(np.full((4, 3), 2.0, np.float32).tobytes())
    model = load_onnx(_dense_model(tmp_path, "w.bin"))
    arr = numpy_helper.to_array(model.graph.initializer[0])
    assert arr.shape == (4, 3) and float(arr.max()) == 2.0


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path: Path, location: str) -> None:
    inner = tmp_path / "model_dir"
    inner.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"s" * 48)
    with pytest.raises(ImportRefusedError, match="relative path inside the model's folder"):
        load_onnx(_dense_model(inner, location))


def test_symlinked_external_data_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real.bin").write_bytes(b"\0" * 48)
    inner = tmp_path / "m"
    inner.mkdir()
    os.symlink(tmp_path / "real.bin", inner / "w.bin")
    with pytest.raises(ImportRefusedError, match="symlink"):
        load_onnx(_dense_model(inner, "w.bin"))


def test_external_data_offset_out_of_range_is_refused(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"\0" * 48)
    with pytest.raises(ImportRefusedError, match=r"outside 'w\.bin'"):
        load_onnx(_dense_model(tmp_path, "w.bin", offset=40))


def test_custom_domain_is_listed_as_unsupported(tmp_path: Path) -> None:
    nodes = [helper.make_node("Evil", ["x"], ["y"], name="payload", domain="com.evil")]
    m = _model(nodes, [], ["N", 4], extra_opsets=[helper.make_opsetid("com.evil", 1)])
    with pytest.raises(UnsupportedOpsError, match=r"com\.evil\.Evil \(node payload: custom domain"):
        convert_graph(m, "evil")


def test_unsupported_ops_are_listed_together_with_exit_2_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="r"),
        helper.make_node("TopK", ["a", "k"], ["b", "i"], name="topk_1", axis=-1),
        helper.make_node("NonMaxSuppression", ["b", "b"], ["c"], name="nms_1"),
        helper.make_node("Loop", ["k", ""], ["y"], name="loop_1"),
    ]
    k = numpy_helper.from_array(np.array([2], np.int64), "k")
    path = tmp_path / "m.onnx"
    onnx.save_model(_model(nodes, [k], ["N", 2]), str(path))
    code = main(["import", str(path), "--out", str(tmp_path / "m.yaml"), "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("error: 3 nodes use ops we don't support: TopK (node topk_1)")
    assert "NonMaxSuppression (node nms_1)" in err and "Loop (node loop_1" in err
    assert len(err.strip().splitlines()) == 1
    data = json.loads(out)["error"]
    assert data["code"] == "unsupported_ops"
    assert [u["node"] for u in data["unsupported"]] == ["topk_1", "nms_1", "loop_1"]


def test_absurd_dimension_is_a_clear_error(tmp_path: Path) -> None:
    big = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[10**6, 10**6])
    m = _model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [big], ["N", 10**6])
    path = tmp_path / "big.onnx"
    onnx.save_model(m, str(path))
    with pytest.raises(ImportRefusedError, match="more than 2,147,483,648 elements"):
        import_file(path, tmp_path / "big.yaml")


def test_absurd_input_dimension_is_a_clear_error(tmp_path: Path) -> None:
    m = _model(
        [helper.make_node("Relu", ["x"], ["y"], name="r")],
        [],
        ["N", 10**12],
        in_shape=["N", 10**12],
    )
    with pytest.raises(ImportRefusedError, match="input 'x' has per-sample shape"):
        convert_graph(m, "huge")


def test_folding_a_huge_constant_is_refused(tmp_path: Path) -> None:
    shape = numpy_helper.from_array(np.array([10**5, 10**5], np.int64), "s")
    nodes = [
        helper.make_node("ConstantOfShape", ["s"], ["c"], name="bomb"),
        helper.make_node("Add", ["x", "c"], ["y"], name="add"),
    ]
    with pytest.raises(UnsupportedOpsError, match="ConstantOfShape \\(node bomb: folding"):
        convert_graph(_model(nodes, [shape], ["N", 4]), "bomb")


def test_garbage_file_is_refused_by_the_child(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(ImportRefusedError, match="not a valid ONNX file"):
        import_file(path, tmp_path / "junk.yaml")


def test_data_dependent_if_is_refused_and_a_constant_one_is_inlined() -> None:
    def branch(op: str) -> onnx.GraphProto:
        out = helper.make_tensor_value_info("b", TensorProto.FLOAT, None)
        return helper.make_graph([helper.make_node(op, ["x"], ["b"])], op, [], [out])

    cond = numpy_helper.from_array(np.array(True), "cond")
    node = helper.make_node(
        "If", ["cond"], ["y"], name="if_1", then_branch=branch("Relu"), else_branch=branch("Tanh")
    )
    imported = convert_graph(_model([node], [cond], ["N", 4]), "ifc")
    assert [n["op"] for n in imported.spec["nodes"]] == ["relu"]
    dyn = helper.make_node(
        "If", ["x"], ["y"], name="if_2", then_branch=branch("Relu"), else_branch=branch("Tanh")
    )
    with pytest.raises(UnsupportedOpsError, match="If \\(node if_2: its condition depends"):
        convert_graph(_model([dyn], [], ["N", 4]), "ifd")


def test_old_opset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.onnx"
    onnx.save_model(
        _model([helper.make_node("Relu", ["x"], ["y"])], [], ["N", 4], opset=11), str(path)
    )
    with pytest.raises(ImportRefusedError, match="opset 11 is not supported"):
        load_onnx(path)
