"""POST /v1/imports: upload limits, refusals as problem+json, and use as a job's model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flask.testing import FlaskClient
from onnx import TensorProto, helper, numpy_helper

from tests.test_api import TINY_SPEC, make_app

OCTET = {"Content-Type": "application/octet-stream"}


def _onnx(op: str = "Gemm") -> bytes:
    w = numpy_helper.from_array(np.full((3, 4), 0.5, np.float32), "w")
    b = numpy_helper.from_array(np.zeros(3, np.float32) + 0.1, "b")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    node = (
        helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)
        if op == "Gemm"
        else helper.make_node(op, ["x"], ["y"], name="weird_1")
    )
    graph = helper.make_graph([node], "g", [x], [y], initializer=[w, b])
    return bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    )


def _client(tmp: Path, **kw: object) -> FlaskClient:
    return make_app(tmp, **kw).test_client()


def test_upload_imports_and_the_id_works_as_a_model(tmp_path: Path) -> None:
    client = _client(tmp_path)
    resp = client.post("/v1/imports?format=onnx&name=tiny", data=_onnx(), headers=OCTET)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["params"] == 15 and body["spec"]["weights"] is None
    assert body["input_shapes"] == {"x": [4]}
    again = client.post("/v1/imports?format=onnx&name=tiny", data=_onnx(), headers=OCTET)
    assert again.get_json()["id"] == body["id"]  # cached by content
    rec = client.post("/v1/recommendations", json={"imported": body["id"], "mode": "predict"})
    assert rec.status_code == 200, rec.get_json()


def test_upload_refusals_are_problem_json(tmp_path: Path) -> None:
    client = _client(tmp_path, max_upload_bytes=4096)
    unsupported = client.post(
        "/v1/imports?format=onnx", data=_onnx("NonMaxSuppression"), headers=OCTET
    )
    assert unsupported.status_code == 422
    assert unsupported.mimetype == "application/problem+json"
    assert "NonMaxSuppression (node weird_1)" in unsupported.get_json()["errors"][0]["message"]
    junk = client.post("/v1/imports?format=onnx", data=b"\x08\x96" * 100, headers=OCTET)
    assert junk.status_code == 422 and "not a valid ONNX file" in junk.get_json()["detail"]
    assert (
        client.post("/v1/imports?format=onnx", data=b"x" * 5000, headers=OCTET).status_code == 413
    )
    assert (
        client.post(
            "/v1/imports?format=onnx", data=b"{}", headers={"Content-Type": "application/json"}
        ).status_code
        == 415
    )
    assert client.post("/v1/imports?format=exe", data=b"x", headers=OCTET).status_code == 422


def test_api_spec_may_not_name_a_weights_file(tmp_path: Path) -> None:
    spec = {**TINY_SPEC, "weights": {"file": "/etc/passwd", "sha256": "0" * 64}}
    resp = _client(tmp_path).post("/v1/recommendations", json={"spec": spec, "mode": "predict"})
    assert resp.status_code == 422
    assert "cannot name a weights file" in resp.get_data(as_text=True)


def test_web_form_takes_an_uploaded_model(tmp_path: Path) -> None:
    import io

    client = _client(tmp_path)
    page = client.get("/").get_data(as_text=True)
    assert 'type="file"' in page and 'enctype="multipart/form-data"' in page
    form = {"mode": "predict", "model_file": (io.BytesIO(_onnx()), "tiny.onnx")}
    resp = client.post("/recommend", data=form, content_type="multipart/form-data")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    # "Ask again" keeps the uploaded model: its id travels as a hidden field
    import re

    from werkzeug.datastructures import MultiDict

    hidden = re.findall(
        r'type="hidden" name="([^"]+)" value="([^"]*)"', resp.get_data(as_text=True)
    )
    assert any(k == "imported" for k, _ in hidden)
    again = client.post("/ask", data=MultiDict(hidden)).get_data(as_text=True)
    assert 'id="imported-note"' in again
    fields = re.findall(r'type="hidden" name="imported" value="([0-9a-f]{64})"', again)
    resp = client.post("/recommend", data={"mode": "predict", "imported": fields[0]})
    assert resp.status_code == 200 and 'id="choice"' in resp.get_data(as_text=True)
    bad = {"mode": "predict", "model_file": (io.BytesIO(b"junk"), "x.onnx")}
    resp = client.post("/recommend", data=bad, content_type="multipart/form-data")
    assert resp.status_code == 422 and "not a valid ONNX file" in resp.get_data(as_text=True)
