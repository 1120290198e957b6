"""The parent process never imports a framework: only probe workers do."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from service.cli import main
code = main(["parity", "mlp", "--json"])
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "tensorflow", "keras"))
print("CODE", code, "IMPORTED", bad)
"""


def test_parent_never_imports_frameworks() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    ).stdout
    assert "CODE 0 IMPORTED []" in out
