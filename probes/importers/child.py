"""The import process: ``python -m probes.importers.child`` reads one JSON request on
stdin, bounds its own memory and CPU time, converts the file and writes the spec (JSON)
and weights (safetensors) into ``out_dir``. One JSON line on stdout says how it went.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import Any

from probes.errors import AdvisorError, UnsupportedOpsError
from probes.runners.lifeline import die_with_parent


def _bound(memory_bytes: int, cpu_s: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def convert(path: Path, shapes: dict[str, list[int]] | None) -> Any:
    if path.suffix == ".keras":
        from probes.importers.keras_import import import_keras

        return import_keras(path)
    from probes.importers.onnx_file import load_onnx
    from probes.importers.onnx_import import convert_graph

    return convert_graph(load_onnx(path), path.stem, shapes)


def run(req: dict[str, Any]) -> dict[str, Any]:
    from probes.weights import save_safetensors

    out_dir = Path(req["out_dir"])
    imported = convert(Path(req["path"]), req.get("input_shapes"))
    sha = save_safetensors(out_dir / "weights.safetensors", imported.weights)
    imported.spec["weights"] = {"file": "weights.safetensors", "sha256": sha}
    (out_dir / "spec.json").write_text(json.dumps(imported.spec))
    return {"status": "ok", "extra": getattr(imported, "extra", {})}


def main() -> int:
    die_with_parent()
    req = json.loads(sys.stdin.read())
    _bound(int(req["memory_bytes"]), int(req["cpu_s"]))
    try:
        result = run(req)
    except UnsupportedOpsError as e:
        result = {"status": "error", **e.to_dict()}
    except AdvisorError as e:
        result = {"status": "error", **e.to_dict()}
    except MemoryError:
        result = {"status": "error", "code": "import_refused", "message": "MEMORY"}
    except RecursionError:
        result = {
            "status": "error",
            "code": "import_refused",
            "message": "the file nests too deeply",
        }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
