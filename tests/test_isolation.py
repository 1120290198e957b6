"""The parent process never imports a framework: only probe workers do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from service.cli.main import main
code = main(["parity", "mlp", "--json"])
code += main(["deploy", "mlp", "--targets", "onnx,litert", "--min-time", "0.05", "--json"])
heavy = ("torch", "tensorflow", "keras", "onnxruntime", "ai_edge_litert", "litert_torch", "tf2onnx")
bad = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print("CODE", code, "IMPORTED", bad)
"""


def test_parent_never_imports_frameworks(tmp_path: Path) -> None:
    env = {**os.environ, "FWADVISOR_DATA_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert "CODE 0 IMPORTED []" in out


WEB_SCRIPT = """
import sys
from service.app import create_app
from service.settings import ServiceSettings
c = create_app(ServiceSettings()).test_client()
codes = [
    c.post("/v1/recommendations", json={"model": "lenet5", "mode": "predict"}).status_code,
    c.post("/v1/recommendations", json={"model": "mlp", "mode": "cached"}).status_code,
    c.post("/v1/recommendations", json={"model": "mlp", "mode": "measure"}).status_code,
    c.post("/recommend", data={"model": "lenet5", "mode": "predict"}).status_code,
    c.get("/openapi.json").status_code,
]
heavy = ("torch", "tensorflow", "keras", "sklearn", "scipy", "onnxruntime", "ai_edge_litert")
bad = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy})
print("CODES", codes, "IMPORTED", bad)
"""


def test_web_process_never_imports_frameworks_or_sklearn(tmp_path: Path) -> None:
    env = {**os.environ, "FWADVISOR_DATA_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", WEB_SCRIPT], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert "CODES [200, 200, 202, 200, 200] IMPORTED []" in out
