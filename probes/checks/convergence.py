"""Convergence check: both frameworks train the same model from the same weights on
the same data and batch order; per-epoch curves and time-to-target (DAWNBench's metric).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from probes.checks.datasets import make_dataset
from probes.payloads import ConvergenceData, EpochStats
from probes.protocol import FRAMEWORKS, ConvergenceWorkload, Framework, ProbeRequest
from probes.runners.base import ProbeRunner
from probes.settings import FrameworkSettings, default_settings, settings_label
from probes.spec import ModelSpec, build_graph
from probes.weights import save_npz

DEFAULT_TARGETS = {"classification": 0.9}


class ConvergenceCurve(BaseModel):
    framework: str
    settings: str
    status: str
    reason: str | None = None
    epochs: list[EpochStats] = Field(default_factory=list)
    time_to_target_s: float | None = None
    epochs_to_target: int | None = None

    @property
    def final(self) -> float | None:
        return self.epochs[-1].val_metric if self.epochs else None


class ConvergenceReport(BaseModel):
    model: str
    dataset: str
    task: str
    metric: str = Field(description="val_accuracy (higher is better) or val_mse (lower).")
    target: float | None
    workload: ConvergenceWorkload
    curves: list[ConvergenceCurve]
    final_gap: float | None = Field(description="|final metric torch - tensorflow|")


def _reach(
    curve: list[EpochStats], target: float | None, higher: bool
) -> tuple[float | None, int | None]:
    if target is None:
        return None, None
    for e in curve:
        if (e.val_metric >= target) if higher else (e.val_metric <= target):
            return e.train_time_s, e.epoch
    return None, None


def check_convergence(
    spec: ModelSpec,
    runner: ProbeRunner,
    workload: ConvergenceWorkload,
    settings: dict[str, FrameworkSettings] | None = None,
    seed: int = 0,
    frameworks: tuple[Framework, ...] = FRAMEWORKS,
) -> ConvergenceReport:
    graph = build_graph(spec)
    data = make_dataset(graph, seed)
    higher = data.task == "classification"
    target = workload.target if workload.target is not None else DEFAULT_TARGETS.get(data.task)
    curves = []
    with tempfile.TemporaryDirectory(prefix="fwadvisor-conv-") as tmp:
        save_npz(Path(tmp) / "data.npz", data.arrays(workload.epochs, seed))
        for fw in frameworks:  # one after the other: training times must not share cores
            s = (settings or {}).get(fw) or default_settings(fw)
            r = runner.run(
                ProbeRequest(
                    spec=spec, framework=fw, workload=workload, settings=s, seed=seed, io_dir=tmp
                )
            )
            got = r.payload(ConvergenceData)
            epochs = got.epochs if got else []
            tta, ett = _reach(epochs, target, higher)
            curves.append(
                ConvergenceCurve(
                    framework=fw,
                    settings=settings_label(s),
                    status=r.status,
                    reason=r.reason,
                    epochs=epochs,
                    time_to_target_s=tta,
                    epochs_to_target=ett,
                )
            )
    finals = [c.final for c in curves]
    gap = (
        abs(finals[0] - finals[1])  # type: ignore[operator]
        if len(finals) == 2 and None not in finals
        else None
    )
    return ConvergenceReport(
        model=spec.name,
        dataset=data.name,
        task=data.task,
        metric="val_accuracy" if higher else "val_mse",
        target=target,
        workload=workload,
        curves=curves,
        final_gap=gap,
    )
