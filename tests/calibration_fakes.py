"""A synthetic machine for the per-operator predictor: cells timed by a known additive law."""

from __future__ import annotations

from pathlib import Path

from probes.calibrate.cells import CellResult
from probes.calibrate.grid import CONFIGS, grid
from probes.calibrate.store import (
    CalibEntry,
    Calibration,
    ConfigCells,
    calibration_path,
    save_calibration,
)
from probes.measure.environment import Environment, environment
from probes.spec import SpecGraph, build_graph
from recommender.predictor.nodes import NodeCost, node_costs

CALL = 3e-5


def law(n: NodeCost) -> float:
    return 2e-6 + n.flops * 2e-11 + n.bytes * 5e-11 + n.steps * 1e-6


def truth(graph: SpecGraph, batch: int, fusion: float = 1.0) -> float:
    costs = node_costs(graph, batch)
    return CALL + sum(law(n) * (fusion if n.fusable else 1.0) for n in costs)


def synthetic(
    env: Environment | None = None, fusion: float = 1.0, quick: bool = True
) -> Calibration:
    env = env or environment()
    cal = Calibration(env_key=env.key(), environment=env)
    for key, cells in grid(quick).items():
        cc = ConfigCells(settings=CONFIGS[key].model_dump(mode="json"))
        for c in cells:
            t = truth(build_graph(c.spec), c.batch, fusion)
            r = CellResult(id=c.id, group=c.group, batch=c.batch, median_s=t, q25_s=t, min_s=t)
            cc.entries[c.id] = CalibEntry(cell=c, result=r)
        cal.configs[key] = cc
    return cal


def write_synthetic(data_dir: Path, env: Environment | None = None, fusion: float = 1.0) -> Path:
    cal = synthetic(env, fusion)
    path = calibration_path(data_dir, cal.env_key)
    save_calibration(path, cal)
    return path


def other_machine() -> Environment:
    return environment().model_copy(update={"cpu_model": "Elsewhere CPU 9000", "logical_cores": 64})
