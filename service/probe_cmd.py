"""``fwadvisor probe``: measure a model in both frameworks and print them side by side."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from probes.config import Settings
from probes.convergence import check_convergence
from probes.environment import environment
from probes.errors import AdvisorError
from probes.measure import MeasureConfig
from probes.probe import Prober
from probes.protocol import (
    FRAMEWORKS,
    ColdStartWorkload,
    ConvergenceWorkload,
    Framework,
    InferWorkload,
    ProbeLimits,
    TrainWorkload,
    Workload,
)
from probes.runner import SubprocessRunner
from probes.settings import Device, TFSettings, TorchSettings, settings_label
from probes.spec import ModelSpec
from probes.store import ResultStore
from service import custom_cmd, probe_render
from service.schemas import Comparison, ProbeReport, ProbeRow

PREFIXES = {"torch": "torch", "tensorflow": "tensorflow", "tf": "tensorflow"}
ALIASES = {"threads": "intra_threads", "interop": "inter_threads"}


def _value(raw: str) -> Any:
    low = raw.lower()
    if low in ("true", "on", "yes"):
        return True
    if low in ("false", "off", "no"):
        return False
    return int(raw) if raw.isdigit() else raw


def parse_settings(pairs: list[str]) -> dict[str, TorchSettings | TFSettings]:
    """``k=v`` for both frameworks, ``torch.k=v`` / ``tf.k=v`` for one."""
    raw: dict[str, dict[str, Any]] = {"torch": {}, "tensorflow": {}}
    for pair in pairs:
        key, sep, val = pair.partition("=")
        if not sep:
            raise AdvisorError(f"--settings expects key=value, got '{pair}'")
        prefix, dot, name = key.partition(".")
        targets = [PREFIXES[prefix]] if dot and prefix in PREFIXES else list(raw)
        name = ALIASES.get(name if dot else key, name if dot else key)
        fields = {"torch": TorchSettings.model_fields, "tensorflow": TFSettings.model_fields}
        hit = [fw for fw in targets if name in fields[fw]]
        if not hit:
            raise AdvisorError(
                f"unknown setting '{key}' (torch: {', '.join(TorchSettings.model_fields)}; "
                f"tensorflow: {', '.join(TFSettings.model_fields)})"
            )
        for fw in hit:
            raw[fw][name] = _value(val)
    out: dict[str, TorchSettings | TFSettings] = {}
    for fw, cls in (("torch", TorchSettings), ("tensorflow", TFSettings)):
        try:
            out[fw] = cls.model_validate(raw[fw])
        except ValidationError as e:
            err = e.errors()[0]
            raise AdvisorError(
                f"bad {fw} setting '{'.'.join(map(str, err['loc']))}': {err['msg']}"
            ) from None
    return out


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


def cmd_convergence(args: argparse.Namespace, settings: Settings, spec: ModelSpec) -> int:
    chosen = parse_settings(args.settings or [])
    workload = ConvergenceWorkload(
        batch=args.batch[0],
        epochs=args.epochs,
        lr=args.lr,
        optimizer=args.optimizer,
        target=args.target,
    )
    prober = Prober(SubprocessRunner(timeout_s=args.timeout), spec_limits=settings.limits)
    for fw in FRAMEWORKS:
        prober.check(spec, fw, workload, chosen[fw], args.device)
    if not args.json:
        print(
            f"training {spec.name} for {args.epochs} epochs in each framework ...",
            file=sys.stderr,
            flush=True,
        )
    rep = check_convergence(spec, prober.runner, workload, dict(chosen))
    print(rep.model_dump_json(indent=2) if args.json else probe_render.render_convergence(rep))
    return 0 if all(c.status == "ok" for c in rep.curves) else 1


def cmd_probe(args: argparse.Namespace, settings: Settings, spec: ModelSpec) -> int:
    if args.workload == "convergence":
        return cmd_convergence(args, settings, spec)
    if args.workload == "custom-op":
        return custom_cmd.cmd_custom_op(args, settings, spec)
    fws: list[Framework] = list(FRAMEWORKS) if args.framework == "both" else [args.framework]
    chosen = parse_settings(args.settings or [])
    workloads = workloads_for(args.workload.split(","), args.batch, args.optimizer)
    measure = MeasureConfig(min_time_s=args.min_time)
    limits = ProbeLimits(timeout_s=args.timeout, memory_mb=args.memory_mb)
    store = ResultStore(settings.data_dir / "results.sqlite")
    prober = Prober(
        SubprocessRunner(timeout_s=args.timeout),
        store,
        measure,
        limits,
        settings.limits,
        fresh=args.fresh,
    )

    def say(label: str) -> None:
        if not args.json:
            print(label, file=sys.stderr, flush=True)

    report = run_probes(spec, prober, fws, workloads, chosen, args.device, say)
    rows = report.rows
    print(report.model_dump_json(indent=2) if args.json else probe_render.render(report))
    if prober.from_store and not args.json:
        print(
            f"({prober.from_store} result(s) from the store; --fresh to re-measure)",
            file=sys.stderr,
        )
    return 0 if all(r.result.status in ("ok", "unsupported") for r in rows) else 1


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


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "probe", help="measure latency, throughput, memory, cold start in both frameworks"
    )
    p.add_argument("model", metavar="NAME|FILE")
    p.add_argument("--framework", choices=["torch", "tensorflow", "both"], default="both")
    p.add_argument(
        "--workload",
        default="infer",
        help="comma list of infer,train,cold; or convergence or custom-op (alone)",
    )
    p.add_argument(
        "--export-targets",
        default="native,onnx,litert",
        help="custom-op: export targets to check per mode (all, a comma list, or none)",
    )
    p.add_argument(
        "--no-compile",
        action="store_true",
        help="custom-op: trace only (dynamo explain), skip the inductor compile",
    )
    p.add_argument("--epochs", type=int, default=5, help="convergence: epochs")
    p.add_argument("--lr", type=float, default=0.05, help="convergence: learning rate")
    p.add_argument(
        "--target",
        type=float,
        default=None,
        help="convergence: accuracy (or MSE) for time-to-target; default 0.9 acc",
    )
    p.add_argument(
        "--batch",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[1],
        help="comma list, e.g. 1,32",
    )
    p.add_argument(
        "--settings",
        nargs="*",
        metavar="K=V",
        help="e.g. threads=1 precision=bf16 torch.mode=compile tf.mode=xla",
    )
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--min-time", type=float, default=1.0, help="seconds of timed loop")
    p.add_argument("--timeout", type=float, default=600.0, help="per probe, seconds")
    p.add_argument("--memory-mb", type=int, default=None, help="per probe RSS cap")
    p.add_argument("--fresh", action="store_true", help="ignore stored results")
    return p
