"""Environment fingerprint: what machine and software produced a number.

Computed without importing a framework (versions come from package metadata), so the
parent can key the results store before starting any worker.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel

from probes.settings import cpu_budget

PACKAGES = ("torch", "tensorflow-cpu", "tensorflow", "keras", "numpy")


BF16_FLAGS = ("amx_bf16", "avx512_bf16")


class Environment(BaseModel):
    cpu_model: str
    native_bf16: bool = False
    logical_cores: int
    cores_available: int
    memory_gib: float
    os: str
    python: str
    packages: dict[str, str]
    cuda_device: str | None = None

    def key(self) -> str:
        """Stable hash of everything that can change a measurement."""
        # native_bf16 is derived from the CPU (already in the key): leaving it out keeps
        # stores written before the field existed valid.
        blob = json.dumps(self.model_dump(exclude={"native_bf16"}), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return 0.0


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        cpu_model=_cpu_model(),
        native_bf16=bool(_cpu_flags() & set(BF16_FLAGS)),
        logical_cores=os.cpu_count() or 1,
        cores_available=cpu_budget(),
        memory_gib=_memory_gib(),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        packages=_versions(),
        cuda_device=os.environ.get("FWADVISOR_CUDA_DEVICE_NAME"),
    )
