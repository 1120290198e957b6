from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from probes.config import Settings
from probes.runner import SubprocessRunner
from probes.spec import ModelSpec, resolve_spec, spec_from_mapping, zoo_names

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "data" / "zoo"
ZOO_NAMES = zoo_names(ZOO)


def zoo_spec(name: str, size: str | None = "small") -> ModelSpec:
    return resolve_spec(name, ZOO).resized(size)


def make_spec(
    nodes: list[dict[str, Any]],
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[str] | None = None,
) -> ModelSpec:
    return spec_from_mapping(
        {
            "name": "t",
            "inputs": inputs or [{"name": "x", "shape": [3, 8, 8]}],
            "nodes": nodes,
            "outputs": outputs or [nodes[-1]["id"]],
        }
    )


@pytest.fixture(scope="session")
def runner() -> SubprocessRunner:
    return SubprocessRunner(timeout_s=300)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", zoo_dir=ZOO)
