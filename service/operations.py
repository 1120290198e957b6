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
from probes.tune.confirm import Round, ratio_of_rounds
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


def _metric(r: ProbeRow) -> float | None:
    m = r.result.measurement
    if r.result.status != "ok" or m is None:
        return None
    return m.phases.total_s if r.workload == "cold" else (m.timing.median_s if m.timing else None)


def _contended(r: ProbeRow) -> bool:
    m = r.result.measurement
    return bool(m and m.contention and m.contention.flagged)


def _compare(kind: str, batch: int, rows: list[ProbeRow]) -> Comparison:
    """Paired over rounds: each round's torch/TF ratio, then their mean and interval."""
    by_round: dict[int, dict[str, ProbeRow]] = {}
    for r in rows:
        by_round.setdefault(r.round, {})[r.framework] = r
    rounds: list[Round] = []
    for pair in by_round.values():
        t, f = pair.get("torch"), pair.get("tensorflow")
        if t and f:
            rounds.append((_metric(t), _metric(f), _contended(t), _contended(f)))
    ratio = ratio_of_rounds("torch", "tensorflow", rounds)
    if ratio is None:
        failed = sorted({f"{r.framework}: {r.result.status}" for r in rows if _metric(r) is None})
        return Comparison(
            workload=kind, batch=batch, faster=None, note="; ".join(failed) or "one framework only"
        )
    what = "cold start" if kind == "cold" else "median"
    win = ratio.faster
    return Comparison(
        workload=kind,
        batch=batch,
        faster=None if win == "tie" else win,
        ratio=max(ratio.ratio, 1 / ratio.ratio),
        lo=ratio.lo,
        hi=ratio.hi,
        rounds=len(ratio.rounds),
        contended_rounds=ratio.flagged_rounds,
        note=f"{what}: {ratio.note()}",
    )


def run_probes(
    spec: ModelSpec,
    prober: Prober,
    fws: list[Framework],
    workloads: list[Workload],
    chosen: dict[str, TorchSettings | TFSettings],
    device: Device,
    say: Callable[[str], None],
    rounds: int = 1,
) -> ProbeReport:
    """Every (workload, framework) probe in ``rounds`` interleaved rounds (torch, TF,
    torch, TF …; the first framework alternates by round), and the paired comparisons.
    The first round may answer from the store; later rounds always measure.
    Shared by ``fwadvisor probe`` and the API's probe jobs."""
    for w in workloads:  # reject impossible combinations before any process starts
        for fw in fws:
            prober.check(spec, fw, w, chosen[fw], device)
    peak = prober.machine_peak_gflops(device)
    jobs = [
        (rnd, w, fw)
        for rnd in range(1, rounds + 1)
        for w in workloads
        for fw in (fws if rnd % 2 else fws[::-1])
    ]
    rows = []
    for i, (rnd, w, fw) in enumerate(jobs, start=1):
        label, batch = settings_label(chosen[fw]), getattr(w, "batch", 1)
        say(f"[{i}/{len(jobs)}] round {rnd}: {fw} {w.kind} b={batch} ({label}) ...")
        res = prober.probe(spec, fw, w, chosen[fw], device, use_store=rnd == 1)
        rows.append(
            ProbeRow(
                framework=fw, workload=w.kind, batch=batch, settings=label, result=res, round=rnd
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
