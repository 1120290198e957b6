"""Both framework backends expose every function of the Backend protocol through
``BACKEND`` (mypy checks the signatures; this checks the objects the worker gets, in a
worker-like subprocess: the test process itself never imports a framework)."""

from __future__ import annotations

import subprocess
import sys

from probes.frameworks import Backend

SCRIPT = """
import importlib, inspect, sys
names = sys.argv[1].split(",")
for mod in ("probes.frameworks.torch.backend", "probes.frameworks.tf.backend"):
    b = importlib.import_module(mod).BACKEND
    missing = [n for n in names if not callable(getattr(b, n, None))]
    print(mod, "MISSING", missing)
"""


def test_backends_implement_protocol() -> None:
    names = [n for n in Backend.__dict__ if not n.startswith("_")]
    assert len(names) >= 9
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(names)], capture_output=True, text=True, check=True
    ).stdout
    assert out.count("MISSING []") == 2, out
