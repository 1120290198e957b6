"""Which calibration answers on this machine, and what the answer must say about it.

1. This machine's calibration (``<data_dir>/calibration/<env key>.json``): no caveat.
2. Otherwise the nearest stored calibration (same CPU model, then same core count,
   then the same framework versions; the newest among equals), with intervals twice as
   wide and a caveat that names the action that removes it.
3. Otherwise nothing: predict mode falls back to the old whole-model predictor and
   labels it as the last fallback.

A measured search also asks it which configuration to try first (`predicted_fastest`).

This machine's full-model measurements in the results store correct either
calibration. Fitted predictors stay in memory, keyed by the files' modification times.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from probes.calibrate.store import (
    Calibration,
    calibration_path,
    load_calibration,
    stored_calibrations,
)
from probes.config import REPO_DATA, Settings
from probes.measure.environment import Environment, environment
from probes.protocol import FRAMEWORKS, Framework
from probes.settings import FrameworkSettings
from probes.spec import ModelSpec, build_graph
from probes.store import ResultStore
from recommender.knowledge.yaml_cache import file_key
from recommender.predictor.calibrated import CalibratedPredictor
from recommender.predictor.corrections import fit_corrections, store_rows, zoo_graphs
from recommender.predictor.opfit import fit_calibration

OTHER_MACHINE_WIDEN = 2.0
SHIPPED = REPO_DATA / "calibration"
CALIBRATE_HINT = "run `fwadvisor calibrate --quick` (about a minute) on this machine"


@dataclass(frozen=True)
class Choice:
    predictor: CalibratedPredictor | None
    calibration: str  # which calibration, in words
    caveats: list[str] = field(default_factory=list)


def _describe(env: Environment, cal: Calibration) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(cal.updated))
    return (
        f"{env.cpu_model}, {env.cores_available} cores, key {cal.env_key}, "
        f"{cal.ok_cells()} cells, {when}"
    )


def _nearest(candidates: list[Path], here: Environment) -> Path | None:
    def score(p: Path) -> tuple[int, float]:
        cal = load_calibration(p)
        if cal is None or not cal.ok_cells():
            return (-1, 0.0)
        e = cal.environment
        s = 4 * (e.cpu_model == here.cpu_model) + 2 * (e.cores_available == here.cores_available)
        return (s + (e.packages == here.packages), cal.updated)

    ranked = sorted(((score(p), p) for p in candidates), reverse=True)
    return ranked[0][1] if ranked and ranked[0][0][0] >= 0 else None


def choose(settings: Settings | None = None) -> Choice:
    settings = settings or Settings()
    here = environment()
    own = calibration_path(settings.data_dir, here.key())
    path = own if own.exists() else None
    if path is None:
        others = [
            p for p in (*stored_calibrations(settings.data_dir), *sorted(SHIPPED.glob("*.json")))
        ]
        path = _nearest(others, here)
    if path is None:
        return Choice(
            None,
            "none",
            [
                f"no per-operator calibration on this machine: latency comes from the old "
                f"whole-model predictor trained on another CPU (last fallback, least accurate); "
                f"{CALIBRATE_HINT}"
            ],
        )
    store = settings.data_dir / "results.sqlite"
    skey = file_key(store) if store.exists() else None
    return _choice(*file_key(path), skey, path == own, settings.zoo_dir)


@lru_cache(maxsize=8)
def _choice(
    path: Path, mtime: int, size: int, store: tuple[Path, int, int] | None, own: bool, zoo: Path
) -> Choice:
    del mtime, size  # cache key only
    cal = load_calibration(path)
    if cal is None:
        return Choice(None, "none", [f"the calibration {path} is unreadable; {CALIBRATE_HINT}"])
    env = cal.environment
    pred = CalibratedPredictor(
        models=fit_calibration(cal),
        label=("this machine: " if own else "another machine: ") + _describe(env, cal),
        env_matches=own,
        trained_on=f"{env.cpu_model}, {env.cores_available} cores",
        widen=1.0 if own else OTHER_MACHINE_WIDEN,
    )
    if store is not None:
        rows = store_rows(ResultStore(store[0]), environment().key(), zoo_graphs(zoo))
        fit_corrections(pred, rows)
    caveats = []
    if not own:
        caveats.append(
            f"latency is predicted from another machine's calibration ({pred.trained_on}), "
            f"with intervals {OTHER_MACHINE_WIDEN:g}x as wide; {CALIBRATE_HINT}"
        )
    return Choice(pred, pred.label, caveats)


def predicted_fastest(
    spec: ModelSpec, batch: int, settings: Settings | None = None
) -> dict[Framework, list[FrameworkSettings]]:
    """Each framework's calibrated configuration that this machine's calibration
    predicts fastest for ``spec`` at ``batch``: a measured search tries it right after
    the defaults. Empty without this machine's own calibration: another machine's
    ranking of thread counts and compilers says little about this one's."""
    pred = choose(settings).predictor
    if pred is None or not pred.env_matches:
        return {}
    graph = build_graph(spec)
    return {fw: [pred.best(graph, fw, batch)] for fw in FRAMEWORKS if pred.configs(fw)}
