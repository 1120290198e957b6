"""Parent side of ``fwadvisor calibrate``: one worker per configuration, progress from
the cells the worker appends, and every finished cell saved at once (resumable)."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from probes.calibrate.cells import CELLS_FILE, CalibCell, CalibrateWorkload, CellResult
from probes.calibrate.grid import CONFIGS, grid, known_ids
from probes.calibrate.store import (
    CalibEntry,
    Calibration,
    ConfigCells,
    calibration_path,
    load_calibration,
    save_calibration,
)
from probes.measure.environment import environment
from probes.protocol import ProbeLimits, ProbeRequest
from probes.runners.base import ProbeRunner

QUICK_MIN_TIME_S = 0.03
FULL_MIN_TIME_S = 0.08
#: Two rounds by default: each cell keeps its lower measurement (``CalibEntry.merged``).
#: The full grid takes about 4.5 minutes, --quick about 30 s (2026-12-06, quiet).
CALIBRATION_ROUNDS = 2
MAX_CALIBRATION_ROUNDS = 5
POLL_S = 0.2
Progress = Callable[[str], None]


@dataclass
class CalibrationRun:
    """What a run did: cells measured now, cells already stored, failures, wall time."""

    path: Path
    measured: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    configs: list[str] = field(default_factory=list)


def _tail(path: Path, seen: int) -> tuple[list[CellResult], int]:
    if not path.exists():
        return [], seen
    lines = path.read_text().splitlines()
    complete = lines if path.read_text().endswith("\n") else lines[:-1]
    return [CellResult.model_validate_json(x) for x in complete[seen:]], len(complete)


class _Groups:
    """Prints one line per finished run of cells of one group."""

    def __init__(self, key: str, total: int, say: Progress, start: float) -> None:
        self.key, self.total, self.say, self.start = key, total, say, start
        self.group: str | None = None
        self.times: list[float] = []
        self.n = self.done = 0

    def add(self, r: CellResult) -> None:
        if self.group is not None and r.group != self.group:
            self.flush()
        self.group = r.group
        self.n, self.done = self.n + 1, self.done + 1
        if r.median_s is not None:
            self.times.append(r.median_s)

    def flush(self) -> None:
        if not self.n:
            return
        med = sorted(self.times)[len(self.times) // 2] * 1e3 if self.times else float("nan")
        self.say(
            f"  {self.key:<24} {self.group:<11} {self.n:>3} cells (median {med:.3g} ms)  "
            f"[{self.done}/{self.total}, {time.perf_counter() - self.start:.0f} s]"
        )
        self.n, self.times = 0, []


def _run_config(
    runner: ProbeRunner,
    key: str,
    cells: list[CalibCell],
    quick: bool,
    say: Progress,
    save: Callable[[CellResult], None],
) -> list[CellResult]:
    s = CONFIGS[key]
    work = CalibrateWorkload(cells=cells, min_time_s=QUICK_MIN_TIME_S if quick else FULL_MIN_TIME_S)
    got: list[CellResult] = []
    with tempfile.TemporaryDirectory(prefix="fwadvisor-cal-") as io:
        req = ProbeRequest(
            framework=s.framework,
            workload=work,
            settings=s,
            io_dir=io,
            limits=ProbeLimits(timeout_s=60.0 + 20.0 * len(cells)),
        )
        box: list[object] = []
        t = threading.Thread(target=lambda: box.append(runner.run(req)), daemon=True)
        t.start()
        groups, seen, path = (
            _Groups(key, len(cells), say, time.perf_counter()),
            0,
            Path(io) / CELLS_FILE,
        )
        while True:
            alive = t.is_alive()
            new, seen = _tail(path, seen)
            for r in new:
                save(r)
                groups.add(r)
                got.append(r)
            if not alive:
                break
            t.join(POLL_S)
        groups.flush()
    result = box[0] if box else None
    status = getattr(result, "status", "failed")
    if status != "ok":
        reason = (getattr(result, "reason", "") or "")[:200]
        say(f"  {key}: worker {status}: {reason}")
        done = {r.id for r in got}
        stuck = next((c for c in cells if c.id not in done), None)
        if stuck is not None:  # the cell in flight hung or crashed: failed, not retried
            r = CellResult(
                id=stuck.id,
                group=stuck.group,
                batch=stuck.batch,
                status="failed",
                reason=f"the worker stopped on this cell ({status}: {reason})"[:300],
            )
            save(r)
            got.append(r)
    return got


def calibrate(
    data_dir: Path,
    runner: ProbeRunner,
    quick: bool = False,
    configs: list[str] | None = None,
    say: Progress = print,
    plan: dict[str, list[CalibCell]] | None = None,
    rounds: int = 1,
) -> CalibrationRun:
    """Measure the cells of ``plan`` (default: the grid) until each has ``rounds``
    measurements for this machine. Round r measures every configuration before round
    r + 1 starts, so a cell's rounds lie minutes apart and sample the machine's drift."""
    env = environment()
    path = calibration_path(data_dir, env.key())
    cal = load_calibration(path) or Calibration(env_key=env.key(), environment=env)
    custom = plan is not None
    plan = plan or grid(quick)
    current = known_ids()
    keys = [k for k in plan if configs is None or k in configs]
    run = CalibrationRun(path=path, configs=keys)
    start = time.perf_counter()
    for key in keys:
        have = cal.configs.setdefault(
            key, ConfigCells(settings=CONFIGS[key].model_dump(mode="json"))
        )
        if not custom:  # cells of an older grid would be mixed into the fit: drop them
            have.entries = {i: e for i, e in have.entries.items() if i in current[key]}
    for rnd in range(1, rounds + 1):
        todo = {key: _due(cal.configs[key], plan[key], rnd) for key in keys}
        if rnd == 1:
            run.skipped = sum(len(plan[k]) - len(todo[k]) for k in keys)
        total = sum(len(v) for v in todo.values())
        if rnd > 1 and not total:
            continue
        say(
            f"calibrating {env.cpu_model} ({env.cores_available} cores), key {env.key()}, "
            f"round {rnd}/{rounds}: {total} cells to measure in "
            f"{sum(bool(v) for v in todo.values())} configurations, "
            f"{run.skipped} already stored ({path})"
        )
        for key in keys:
            _measure_config(runner, cal, path, key, todo[key], quick, say, run)
    run.wall_s = time.perf_counter() - start
    return run


def _due(have: ConfigCells, cells: list[CalibCell], rnd: int) -> list[CalibCell]:
    """Cells with fewer than ``rnd`` measurements; a failed or unsupported cell is not
    measured again (a cell that hangs would cost its timeout every round)."""
    out = []
    for c in cells:
        e = have.entries.get(c.id)
        if e is None or (e.result.status == "ok" and e.rounds < rnd):
            out.append(c)
    return out


def _measure_config(
    runner: ProbeRunner,
    cal: Calibration,
    path: Path,
    key: str,
    cells: list[CalibCell],
    quick: bool,
    say: Progress,
    run: CalibrationRun,
) -> None:
    if not cells:
        return
    by_id = {c.id: c for c in cells}
    entries = cal.configs[key].entries

    def save(r: CellResult) -> None:
        old = entries.get(r.id)
        entries[r.id] = old.merged(r) if old else CalibEntry(cell=by_id[r.id], result=r)
        save_calibration(path, cal)

    for r in _run_config(runner, key, cells, quick, say, save):
        run.measured += 1
        if r.status != "ok":
            run.failed.append(f"{key} {r.id}: {r.reason}")
