"""``fwadvisor probe``: measure a model in both frameworks and print them side by side."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError

from probes.checks.convergence import check_convergence
from probes.config import Settings
from probes.errors import AdvisorError
from probes.frameworks.facts import expand
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import (
    ConvergenceWorkload,
    ProbeLimits,
)
from probes.runners.local import SubprocessRunner
from probes.settings import TFSettings, TorchSettings
from probes.spec import ModelSpec
from probes.store import ResultStore
from service.cli import custom as custom_cmd
from service.cli import probe_render
from service.cli.options import (
    MODEL_HELP,
    add_framework_option,
    positive_float,
    positive_int,
    positive_ints,
)
from service.cli.progress import progress
from service.operations import run_probes, workloads_for

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
    fws = expand(args.framework)  # --framework torch trains torch only
    for fw in fws:
        prober.check(spec, fw, workload, chosen[fw], args.device)
    if not args.json:
        print(
            f"training {spec.name} for {args.epochs} epochs in {' and '.join(fws)} ...",
            file=sys.stderr,
            flush=True,
        )
    rep = check_convergence(spec, prober.runner, workload, dict(chosen), frameworks=tuple(fws))
    print(rep.model_dump_json(indent=2) if args.json else probe_render.render_convergence(rep))
    return 0 if all(c.status == "ok" for c in rep.curves) else 1


def cmd_probe(args: argparse.Namespace, settings: Settings, spec: ModelSpec) -> int:
    if args.workload == "convergence":
        return cmd_convergence(args, settings, spec)
    if args.workload == "custom-op":
        return custom_cmd.cmd_custom_op(args, settings, spec)
    fws = list(expand(args.framework))
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

    with progress(f"probe {spec.name}", enabled=not args.json) as say:
        report = run_probes(spec, prober, fws, workloads, chosen, args.device, say, args.rounds)
    rows = report.rows
    print(report.model_dump_json(indent=2) if args.json else probe_render.render(report))
    if prober.from_store and not args.json:
        print(
            f"({prober.from_store} result(s) from the store; --fresh to re-measure)",
            file=sys.stderr,
        )
    return 0 if all(r.result.status in ("ok", "unsupported") for r in rows) else 1


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "probe", help="measure latency, throughput, memory, cold start in both frameworks"
    )
    p.add_argument("model", metavar="NAME|FILE", help=MODEL_HELP)
    add_framework_option(p)
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
    p.add_argument("--epochs", type=positive_int, default=5, help="convergence: epochs")
    p.add_argument("--lr", type=positive_float, default=0.05, help="convergence: learning rate")
    p.add_argument(
        "--target",
        type=positive_float,
        default=None,
        help="convergence: accuracy (or MSE) for time-to-target; default 0.9 acc",
    )
    p.add_argument(
        "--batch",
        type=positive_ints,
        default=[1],
        help="comma list, e.g. 1,32",
    )
    p.add_argument(
        "--settings",
        nargs="*",
        metavar="K=V",
        help="e.g. threads=1 precision=bf16 torch.mode=compile tf.mode=xla",
    )
    p.add_argument(
        "--optimizer", choices=["sgd", "adam"], default="sgd", help="train workload: the update"
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where probes run")
    p.add_argument("--min-time", type=positive_float, default=1.0, help="seconds of timed loop")
    p.add_argument("--timeout", type=positive_float, default=600.0, help="per probe, seconds")
    p.add_argument("--memory-mb", type=positive_int, default=None, help="per probe RSS cap")
    p.add_argument("--fresh", action="store_true", help="ignore stored results")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="paired rounds: torch and TF alternate, and each comparison is the mean of "
        "the per-round ratios with its 90%% interval (default: 3; 1 = one probe each)",
    )
    return p
