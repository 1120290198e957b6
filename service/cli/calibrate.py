"""``fwadvisor calibrate`` and ``fwadvisor predict``: the per-operator calibration of this
machine, and the instant estimate it gives (no recommendation)."""

from __future__ import annotations

import argparse
from typing import Any

from probes.calibrate.grid import CONFIGS
from probes.calibrate.run import CALIBRATION_ROUNDS, MAX_CALIBRATION_ROUNDS
from probes.config import Settings
from probes.spec import ModelSpec
from service.cli.options import MODEL_HELP, positive_int
from service.cli.progress import progress
from service.cli.render import table
from service.predict_ops import CalibrationReport, PredictReport, run_calibrate, run_predict


def rounds_arg(text: str) -> int:
    n = positive_int(text)
    if n > MAX_CALIBRATION_ROUNDS:
        raise argparse.ArgumentTypeError(f"at most {MAX_CALIBRATION_ROUNDS}, found {n}")
    return n


def add_parsers(sub: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    cal = sub.add_parser(
        "calibrate",
        help="time every spec op on this machine for the instant predictor (resumable)",
    )
    cal.add_argument("--quick", action="store_true", help="default settings, small grid (~1 min)")
    cal.add_argument(
        "--rounds",
        type=rounds_arg,
        default=CALIBRATION_ROUNDS,
        help=f"measure every cell this many times, a round apart (1-{MAX_CALIBRATION_ROUNDS})",
    )
    cal.add_argument(
        "--configs", default=None, help=f"comma-separated subset of: {', '.join(CONFIGS)}"
    )
    pred = sub.add_parser("predict", help="instant latency and memory estimate, both frameworks")
    pred.add_argument("model", metavar="NAME|FILE", help=MODEL_HELP)
    pred.add_argument("--batch", type=positive_int, default=1, help="batch to predict for")
    pred.add_argument(
        "--settings",
        nargs="*",
        default=[],
        metavar="K=V",
        help="e.g. threads=1 torch.mode=compile tensorflow.mode=xla, or 'best'",
    )
    return cal, pred


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    configs = [c.strip() for c in args.configs.split(",")] if args.configs else None

    with progress("calibrate", enabled=not args.json) as say:
        rep = run_calibrate(settings, args.quick, configs, say, args.rounds)
    print(rep.model_dump_json(indent=2) if args.json else render_calibration(rep))
    return 0


def render_calibration(rep: CalibrationReport) -> str:
    lines = [
        f"calibration {rep.path}: {rep.cells_ok} usable cells ({rep.measured} measurements "
        f"now, {rep.rounds} per cell; {rep.skipped} cells already stored) in {rep.wall_s:.0f} s",
    ]
    lines += [f"  failed: {f[:120]}" for f in rep.failed[:10]]
    return "\n".join(lines)


def cmd_predict(args: argparse.Namespace, settings: Settings, spec: ModelSpec) -> int:
    rep = run_predict(settings, spec, args.batch, args.settings)
    print(rep.model_dump_json(indent=2) if args.json else render_predict(rep))
    return 0


def render_predict(rep: PredictReport) -> str:
    rows = [
        (
            fw,
            f.settings,
            f"{f.latency_ms:.3g}",
            f"{f.latency_lo_ms:.3g} - {f.latency_hi_ms:.3g}",
            f"{f.memory_mib:,.0f}",
            f"{f.memory_total_mib:,.0f}",
        )
        for fw, f in rep.frameworks.items()
    ]
    head = ["framework", "settings", "latency ms", "80% interval", "peak MiB", "with framework"]
    lines = [
        f"{rep.model} at batch {rep.batch} (predicted, inference)",
        table(head, rows, align_right=(2, 3, 4, 5)),
        f"calibration: {rep.calibration}",
    ]
    for fw, f in rep.frameworks.items():
        lines += [f"note ({fw}): {n}" for n in f.notes]
    lines += [f"caveat: {c}" for c in rep.caveats]
    return "\n".join(lines)
