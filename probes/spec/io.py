"""Loading specs from YAML/JSON files, mappings and the zoo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from probes.errors import SpecError, SpecFileError, UnknownModelError, did_you_mean
from probes.spec.model import ModelSpec

#: libyaml's safe loader when PyYAML was built with it: the same safe subset, about 8x
#: faster (the zoo's 11 specs took 0.8 s to parse in Python, the whole predict-mode
#: warm-up 1.5 s).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _node_name(raw: Any, loc: tuple[Any, ...]) -> str | None:
    if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
        try:
            node = raw["nodes"][loc[1]]
            return str(node.get("id")) if isinstance(node, dict) else None
        except (KeyError, IndexError, TypeError):
            return None
    return None


def spec_from_mapping(raw: Any) -> ModelSpec:
    """Parse a mapping into a ModelSpec; errors name the node and the field path."""
    try:
        return ModelSpec.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        path = ".".join(str(x) for x in loc)
        raise SpecError(f"{path}: {err['msg']}", node=_node_name(raw, loc), path=path) from None


def load_spec_file(path: Path) -> ModelSpec:
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecFileError(f"{path}: cannot read ({e.strerror})") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=SAFE_LOADER)
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpecFileError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({first})"
        ) from None
    if not isinstance(raw, dict):
        raise SpecFileError(f"{path}: expected a mapping at top level")
    try:
        spec = spec_from_mapping(raw)
    except SpecError as e:
        raise e.with_source(str(path)) from None
    return anchored(spec, path.parent)


def anchored(spec: ModelSpec, base: Path) -> ModelSpec:
    """Resolve a relative weights file against ``base`` (the spec file's folder)."""
    if spec.weights is None or Path(spec.weights.file).is_absolute():
        return spec
    ref = spec.weights.model_copy(update={"file": str((base / spec.weights.file).resolve())})
    return spec.model_copy(update={"weights": ref})


def zoo_names(zoo_dir: Path) -> list[str]:
    return sorted(p.stem for p in zoo_dir.glob("*.yaml"))


def resolve_spec(name_or_file: str, zoo_dir: Path, import_dir: Path | None = None) -> ModelSpec:
    """A zoo model name, a path to a YAML/JSON spec file, or (with ``import_dir``) an
    ONNX or Keras file, imported once per content into ``import_dir``."""
    candidate = Path(name_or_file)
    if import_dir is not None and candidate.suffix in (".onnx", ".keras"):
        from probes.importers.cache import cached_import  # the importer needs the spec

        return cached_import(candidate, import_dir).spec
    if candidate.suffix in (".yaml", ".yml", ".json") or candidate.exists():
        return load_spec_file(candidate)
    zoo_file = zoo_dir / f"{name_or_file}.yaml"
    if zoo_file.exists():
        return load_spec_file(zoo_file)
    names = zoo_names(zoo_dir)
    hint = did_you_mean(name_or_file, names)
    raise UnknownModelError(
        f"'{name_or_file}' is neither a spec file nor a zoo model{hint} (zoo: {', '.join(names)})"
    )
