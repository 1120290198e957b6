"""The calibration file: every finished cell of this machine, keyed by its environment.

``<data_dir>/calibration/<env key>.json`` holds, per configuration, each cell's spec
and result. A rerun skips the cells it holds (resume), and predict mode reads it.
Writes go to a temporary name and are renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import BaseModel, Field

from probes.calibrate.cells import CalibCell, CellResult
from probes.measure.environment import Environment

VERSION = 1


class CalibEntry(BaseModel):
    cell: CalibCell
    result: CellResult
    rounds: int = Field(default=1, description="Measurements merged into ``result``.")

    def merged(self, new: CellResult) -> CalibEntry:
        """This cell measured once more, a round later: each statistic the lower of the
        two. A round that waited for the CPU is slower in all of them, so the lower is
        nearer the kernel (two calibrations merged so gave 20.4% default MAPE against
        20.7% and 21.5% for each alone, and 32% tuned against 38% and 35%)."""
        old = self.result
        if old.status != "ok" or new.status != "ok":  # a failed round counts: not retried
            result = new if new.status == "ok" else old
            return self.model_copy(update={"result": result, "rounds": self.rounds + 1})
        low = {
            f: min(v for v in (getattr(old, f), getattr(new, f)) if v is not None)
            for f in ("median_s", "q25_s", "min_s")
            if getattr(old, f) is not None or getattr(new, f) is not None
        }
        result = old.model_copy(
            update={
                **low,
                "iterations": old.iterations + new.iterations,
                "build_s": min(old.build_s, new.build_s),
            }
        )
        return CalibEntry(cell=self.cell, result=result, rounds=self.rounds + 1)


class ConfigCells(BaseModel):
    settings: dict[str, object] = Field(description="The framework settings, as JSON.")
    entries: dict[str, CalibEntry] = Field(default_factory=dict)


class Calibration(BaseModel):
    version: int = VERSION
    env_key: str
    environment: Environment
    created: float = Field(default_factory=time.time)
    updated: float = Field(default_factory=time.time)
    configs: dict[str, ConfigCells] = Field(default_factory=dict)

    def ok_cells(self) -> int:
        return sum(
            e.result.status == "ok" for c in self.configs.values() for e in c.entries.values()
        )


def calibration_dir(data_dir: Path) -> Path:
    return data_dir / "calibration"


def calibration_path(data_dir: Path, env_key: str) -> Path:
    return calibration_dir(data_dir) / f"{env_key}.json"


def load_calibration(path: Path) -> Calibration | None:
    try:
        return Calibration.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None


def save_calibration(path: Path, cal: Calibration) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cal.updated = time.time()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(cal.model_dump_json())
    tmp.replace(path)


def stored_calibrations(data_dir: Path) -> list[Path]:
    return sorted(calibration_dir(data_dir).glob("*.json"))
