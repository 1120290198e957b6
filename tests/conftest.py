from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from probes.config import Settings
from probes.runners.local import SubprocessRunner
from probes.spec import ModelSpec, resolve_spec, spec_from_mapping, zoo_names
from tests.browser_pages import browser  # noqa: F401  (headless Chromium, for the web tests)

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


@pytest.fixture(scope="session")
def predictor_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compiled-predictor cache for the whole session: building it takes ~4 s."""
    return tmp_path_factory.mktemp("predictor")


@pytest.fixture()
def settings(tmp_path: Path, predictor_cache: Path) -> Settings:
    """A data directory of the test's own, sharing the session's compiled predictor."""
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "predictor").symlink_to(predictor_cache, target_is_directory=True)
    return Settings(data_dir=data_dir, zoo_dir=ZOO)
