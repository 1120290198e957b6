"""Parent side of an import: run the child in a fresh process bounded in time and memory,
then move its spec and weights into place. Imports no framework and no ONNX package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from probes.errors import ImportRefusedError, UnsupportedOpsError
from probes.runners.lifeline import child_env
from probes.spec import ModelSpec, build_graph, spec_from_mapping
from probes.spec.io import anchored

FORMATS = (".onnx", ".keras")


@dataclass(frozen=True)
class ImportLimits:
    timeout_s: float = 300.0
    memory_bytes: int = 6 * 2**30
    max_file_bytes: int = 2**31 - 1


@dataclass
class ImportResult:
    spec: ModelSpec
    spec_file: Path
    weights_file: Path
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)
    cached: bool = False


def load_imported(spec_file: Path) -> ImportResult:
    """A previous import's result, from its spec file and the ``.import.json`` beside it."""
    from probes.spec import load_spec_file

    spec = load_spec_file(spec_file)
    side = json.loads(spec_file.with_suffix(".import.json").read_text())
    assert spec.weights is not None
    return ImportResult(
        spec, spec_file, Path(spec.weights.file), 0.0, side.get("extra", {}), cached=True
    )


def _error(data: dict[str, Any], limits: ImportLimits) -> Exception:
    if data.get("code") == "unsupported_ops":
        return UnsupportedOpsError([(u["op"], u["node"], u["why"]) for u in data["unsupported"]])
    message = str(data.get("message", "import failed"))
    if message == "MEMORY":
        message = f"the import needed more than its {limits.memory_bytes / 2**30:.1f} GiB bound"
    return ImportRefusedError(message)


def _run_child(req: dict[str, Any], limits: ImportLimits) -> dict[str, Any]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "probes.importers.child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=child_env(dict(os.environ)),
    )
    try:
        out, err = proc.communicate(json.dumps(req), timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise ImportRefusedError(
            f"the import took longer than {limits.timeout_s:g} s and was stopped"
        ) from None
    line = out.strip().splitlines()[-1] if out.strip() else ""
    try:
        data: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError:
        last = err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"
        if (proc.returncode and proc.returncode < 0) or "MemoryError" in err:
            last = f"the import process was stopped ({last}); the file may be hostile or too big"
        raise ImportRefusedError(f"import failed: {last[:300]}") from None
    if data.get("status") != "ok":
        raise _error(data, limits)
    return data


def import_file(
    path: Path,
    out: Path,
    *,
    input_shapes: dict[str, list[int]] | None = None,
    limits: ImportLimits | None = None,
) -> ImportResult:
    """Convert ``path`` (.onnx or .keras) to ``out`` (spec YAML) plus ``out``.safetensors."""
    import time

    limits = limits or ImportLimits()
    start = time.perf_counter()
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ImportRefusedError(f"{path.name}: expected a .onnx or .keras file")
    if not path.is_file() or path.is_symlink():
        raise ImportRefusedError(f"{path}: not a regular file")
    if path.stat().st_size > limits.max_file_bytes:
        raise ImportRefusedError(f"{path.name}: larger than {limits.max_file_bytes:,} bytes")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fwadvisor-import-", dir=out.parent) as tmp:
        req = {
            "path": str(path.resolve()),
            "out_dir": tmp,
            "input_shapes": input_shapes,
            "memory_bytes": limits.memory_bytes,
            "cpu_s": int(limits.timeout_s) + 1,
        }
        data = _run_child(req, limits)
        raw = json.loads((Path(tmp) / "spec.json").read_text())
        weights_file = out.with_suffix(".safetensors")
        raw["weights"]["file"] = weights_file.name
        spec = spec_from_mapping(raw)
        build_graph(spec)  # the child's spec must validate here too
        shutil.move(str(Path(tmp) / "weights.safetensors"), weights_file)
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    sidecar = {"source": str(path.resolve()), "extra": data.get("extra", {})}
    out.with_suffix(".import.json").write_text(json.dumps(sidecar, indent=2))
    return ImportResult(
        spec=anchored(spec, out.parent),
        spec_file=out,
        weights_file=weights_file,
        wall_s=time.perf_counter() - start,
        extra=data.get("extra", {}),
    )
