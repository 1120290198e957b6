"""Imports cached by content: ``<data_dir>/imports/<sha256>/model.yaml`` (+ weights)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from probes.errors import ImportRefusedError
from probes.importers.sandbox import FORMATS, ImportLimits, ImportResult, import_file, load_imported


def content_key(path: Path) -> str:
    """sha256 of the model file and of the data files beside it that share its name."""
    h = hashlib.sha256()
    files = [path, *sorted(p for p in path.parent.glob(f"{path.name}.*") if p.is_file())]
    for f in files:
        h.update(f.name.encode() + b"\0")
        with f.open("rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def cached_import(path: Path, import_dir: Path, limits: ImportLimits | None = None) -> ImportResult:
    """Import ``path`` once per content; later calls reuse the spec and weights."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ImportRefusedError(f"{path.name}: expected a .onnx or .keras file")
    if not path.is_file():
        raise ImportRefusedError(f"{path}: no such file")
    out = import_dir / content_key(path) / f"{path.stem}.yaml"
    if out.exists() and out.with_suffix(".import.json").exists():
        return load_imported(out)
    return import_file(path, out, limits=limits)
