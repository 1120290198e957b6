"""One Settings object (env prefix FWADVISOR_), built at the entry point and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from probes.measure.environment import environment
from probes.spec import Limits

#: The checkout (or installed tree) that holds the packages and ``data/``.
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
REPO_DATA = PACKAGE_ROOT / "data"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FWADVISOR_", env_nested_delimiter="__")

    data_dir: Path = Field(default=Path("var"), description="Results, studies, jobs.")
    zoo_dir: Path = Field(default=REPO_DATA / "zoo", description="Zoo spec YAML files.")
    probe_timeout_s: float = Field(default=600.0, gt=0)
    fresh_processes: bool = Field(
        default=False,
        description="Run every probe in a new process (FWADVISOR_FRESH_PROCESSES=1 or "
        "--fresh-processes). By default every probe but cold starts and calibrations runs "
        "in a child forked from a warm worker per framework and process-level settings "
        "(probes.runners.warm), which skips the import and measures the same time and "
        "memory (docs/benchmarks.md).",
    )
    limits: Limits = Field(default_factory=Limits)
    export_memory_fraction: float = Field(
        default=0.75,
        gt=0,
        le=1,
        description="Default RSS cap of an export or custom-op probe, as a fraction of RAM: "
        "a converter that balloons (tf2onnx on VGG-16 reached 24 GB) fails its own cell "
        "instead of waking the kernel's OOM killer.",
    )

    def export_memory_mb(self) -> int:
        return int(environment().memory_gib * 1024 * self.export_memory_fraction)
