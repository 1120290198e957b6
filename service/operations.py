"""Operations shared by the CLI commands and the background jobs.

The CLI modules parse arguments and render; the jobs run requests. Both call these
functions, so a job computes exactly what the matching command prints, and the jobs
never import the CLI.
"""

from __future__ import annotations

from collections.abc import Callable

from probes.errors import AdvisorError
from probes.export.checks import check_exports
from probes.measure.environment import environment
from probes.probe import Prober
from probes.protocol import (
    ColdStartWorkload,
    ExportTarget,
    Framework,
    InferWorkload,
    TrainWorkload,
    Workload,
)
from probes.settings import Device, TFSettings, TorchSettings, settings_label
from probes.spec import ModelSpec
from recommender.knowledge.capabilities import load_matrix, merge
from service.schemas import Comparison, DeployReport, ProbeReport, ProbeRow


def workloads_for(kinds: list[str], batches: list[int], optimizer: str) -> list[Workload]:
    out: list[Workload] = []
    for kind in kinds:
        for b in batches:
            if kind == "infer":
                out.append(InferWorkload(batch=b))
            elif kind == "train":
                out.append(TrainWorkload(batch=b, optimizer=optimizer))
            elif kind == "cold":
                out.append(ColdStartWorkload(batch=b))
            else:
                raise AdvisorError(
                    f"unknown workload '{kind}' (infer, train, cold; or convergence or "
                    "custom-op alone)"
                )
    return out


def _compare(kind: str, batch: int, rows: list[ProbeRow]) -> Comparison:
    def metric(r: ProbeRow) -> float | None:
        m = r.result.measurement
        if r.result.status != "ok" or m is None:
            return None
        return m.phases.total_s if kind == "cold" else (m.timing.median_s if m.timing else None)

    vals = {r.framework: metric(r) for r in rows}
    if len(vals) < 2 or None in vals.values():
        failed = [f"{r.framework}: {r.result.status}" for r in rows if metric(r) is None]
        return Comparison(
            workload=kind, batch=batch, faster=None, note="; ".join(failed) or "one framework only"
        )
    t, f = vals["torch"], vals["tensorflow"]
    assert t is not None and f is not None
    faster: Framework = "torch" if t < f else "tensorflow"
    ratio = max(t, f) / min(t, f)
    what = "cold start" if kind == "cold" else "median"
    return Comparison(
        workload=kind,
        batch=batch,
        faster=faster,
        ratio=ratio,
        note=f"{faster} {ratio:.2f}x faster ({what})",
    )


def run_probes(
    spec: ModelSpec,
    prober: Prober,
    fws: list[Framework],
    workloads: list[Workload],
    chosen: dict[str, TorchSettings | TFSettings],
    device: Device,
    say: Callable[[str], None],
) -> ProbeReport:
    """Every (workload, framework) probe, one after another, and their comparisons.
    Shared by ``fwadvisor probe`` and the API's probe jobs."""
    for w in workloads:  # reject impossible combinations before any process starts
        for fw in fws:
            prober.check(spec, fw, w, chosen[fw], device)
    peak = prober.machine_peak_gflops(device)
    rows, jobs = [], [(w, fw) for w in workloads for fw in fws]
    for i, (w, fw) in enumerate(jobs, start=1):
        label = settings_label(chosen[fw])
        say(f"[{i}/{len(jobs)}] {fw} {w.kind} b={getattr(w, 'batch', 1)} ({label}) ...")
        res = prober.probe(spec, fw, w, chosen[fw], device)
        rows.append(
            ProbeRow(
                framework=fw,
                workload=w.kind,
                batch=getattr(w, "batch", 1),
                settings=settings_label(chosen[fw]),
                result=res,
            )
        )
    comparisons = [
        _compare(
            w.kind,
            getattr(w, "batch", 1),
            [r for r in rows if r.workload == w.kind and r.batch == getattr(w, "batch", 1)],
        )
        for w in workloads
    ]
    return ProbeReport(
        model=spec.name,
        input_shapes={i.name: i.shape for i in spec.inputs},
        environment=environment(),
        machine_peak_gflops=peak,
        rows=rows,
        comparisons=comparisons,
    )


def run_deploy(
    spec: ModelSpec,
    prober: Prober,
    targets: list[ExportTarget],
    fws: tuple[Framework, ...],
    batch: int,
    progress: Callable[[str], None],
) -> DeployReport:
    """Export checks merged into the capability matrix; shared by the CLI and jobs."""
    exports = check_exports(
        spec, prober, targets=targets, frameworks=fws, batch=batch, progress=progress
    )
    return DeployReport(
        model=spec.name,
        environment=environment(),
        exports=exports,
        targets=merge(load_matrix(), exports),
    )
