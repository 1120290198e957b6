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


def _absurd_dims() -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10**12])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10**12])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "g", [x], [y])
    return bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    )


def _huge_initializer() -> bytes:
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[10**6, 10**6])
    w.raw_data = b"\0" * 16  # claims 10^12 floats, carries four
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10**6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10**6])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g", [x], [y], initializer=[w]
    )
    return bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    )


def _zip_bomb() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", " " * (64 << 20))
        z.writestr("model.weights.h5", b"\0" * 1024)
    return buf.getvalue()


UPLOAD_SCRIPT = """
import json
import sys
from pathlib import Path
from service.app import create_app
from service.settings import ServiceSettings
d = Path(sys.argv[1])
c = create_app(ServiceSettings(data_dir=d)).test_client()
h = {"Content-Type": "application/octet-stream"}
out = []
for f in sorted(d.glob("case_*")):
    fmt = f.suffix[1:]
    r = c.post(f"/v1/imports?format={fmt}&name={f.stem}", data=f.read_bytes(), headers=h)
    errs = (r.get_json() or {}).get("errors") or [{}]
    out.append((f.stem, r.status_code, r.mimetype, errs[0].get("path")))
out.append(("health", c.get("/v1/health").status_code, "", None))
heavy = ("onnx", "h5py", "torch", "tensorflow", "keras", "onnxruntime", "safetensors")
bad = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy})
print("RESULTS", json.dumps(out))
print("IMPORTED", bad)
"""


def test_hostile_uploads_are_4xx_in_a_bounded_child_and_the_server_goes_on(
    tmp_path: Path,
) -> None:
    """Parsing happens in the import child: the web process never loads onnx or h5py,
    every hostile file is a 4xx problem naming the body, and the server still answers."""
    import json
    import os
    import subprocess
    import sys

    cases = {
        "case_0_ok.onnx": _onnx(),
        "case_1_absurd_dims.onnx": _absurd_dims(),
        "case_2_huge_initializer.onnx": _huge_initializer(),
        "case_3_truncated.onnx": _onnx()[:-7],
        "case_4_junk.keras": b"PK\x03\x04" + b"\xff" * 64,
        "case_5_zip_bomb.keras": _zip_bomb(),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    env = {**os.environ, "FWADVISOR_DATA_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", UPLOAD_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=600,
    ).stdout
    results = json.loads(out.split("RESULTS ", 1)[1].splitlines()[0])
    assert results[0][1] == 201
    for name, status, mimetype, path in results[1:-1]:
        assert status == 422 and mimetype == "application/problem+json", (name, status)
        assert path == "body", name
    assert results[-1] == ["health", 200, "", None]
    assert "IMPORTED []" in out
