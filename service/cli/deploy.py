"""``fwadvisor deploy``: export the model to each target in both frameworks, run every
artifact, and merge the results into the deployment capability matrix."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from probes.config import Settings
from probes.errors import AdvisorError
from probes.export.checks import (
    TARGET_TITLES,
    ExportCheck,
    parse_targets,
)
from probes.frameworks.facts import expand
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import FRAMEWORKS, ProbeLimits
from probes.runners.local import SubprocessRunner
from probes.spec import ModelSpec
from probes.store import ResultStore
from recommender.knowledge.capabilities import MergedCell
from service.cli.options import MODEL_HELP, add_framework_option, positive_float, positive_int
from service.cli.progress import progress
from service.cli.render import table
from service.operations import run_deploy
from service.schemas import DeployReport

SYMBOL = {"verified": "ok", "failed": "FAIL", "unsupported": "-", "static": "~"}


def _size(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def _export_cell(c: ExportCheck | None) -> str:
    if c is None:
        return ""
    if c.status != "verified":
        return {"failed": "FAIL", "timeout": "TIMEOUT"}.get(c.status, "unsupported")
    lat = f"{c.latency_ms:.3g} ms" if c.latency_ms is not None else "?"
    diff = f"{c.max_abs_diff:.0e}" if c.max_abs_diff is not None else "?"
    return f"ok {_size(c.size_bytes)} {lat} d={diff} ({c.export_s or 0:.0f}s)"


def _target_cell(cells: list[MergedCell], target: str, fw: str) -> str:
    m = next(c for c in cells if c.target == target and c.framework == fw)
    if m.verdict == "verified":
        return f"verified: {m.route.export} ({m.route.status})"
    if m.verdict == "failed":
        return "FAILED for this model"
    return f"{m.level} / {m.route.status}"


def render(report: DeployReport) -> str:
    ex = report.exports
    rows = [(t, *(_export_cell(ex.cell(fw, t)) for fw in FRAMEWORKS)) for t in ex.targets]
    out = [
        f"{report.model}: exports at batch {ex.batch}, each artifact run in its runtime and "
        "compared with the source model (d = max|diff|; conversion time in brackets)",
        table(["export", "torch", "tensorflow"], rows),
        "",
    ]
    notes = []
    for c in ex.checks:
        if c.status != "verified" and c.reason:
            notes.append(f"  {c.framework} {c.target} ({c.status}): {c.reason}")
        elif c.notes:
            notes.append(f"  {c.framework} {c.target}: {'; '.join(c.notes)}")
    if notes:
        out += ["notes:", *notes, ""]
    targets = sorted(
        {c.target for c in report.targets}, key=[c.target for c in report.targets].index
    )
    trows = [(t, *(_target_cell(report.targets, t, fw) for fw in FRAMEWORKS)) for t in targets]
    out += [
        "deployment targets (verified/FAILED: this model's exports; otherwise the sourced "
        "capability matrix: level / maturity)",
        table(["target", "torch", "tensorflow"], trows),
        "sources and notes: --json, or data/deploy/capabilities.yaml",
    ]
    return "\n".join(out)


def export_prober(args: argparse.Namespace, settings: Settings, measure: MeasureConfig) -> Prober:
    """A Prober for export and custom-op probes: the results store, and an RSS cap by
    default (converters can balloon; see Settings.export_memory_fraction)."""
    memory_mb = args.memory_mb or settings.export_memory_mb()
    return Prober(
        SubprocessRunner(timeout_s=args.timeout),
        ResultStore(settings.data_dir / "results.sqlite"),
        measure,
        ProbeLimits(timeout_s=args.timeout, memory_mb=memory_mb),
        settings.limits,
        fresh=args.fresh,
    )


def cmd_deploy(args: argparse.Namespace, settings: Settings, spec: ModelSpec) -> int:
    try:
        targets = parse_targets(args.targets)
    except ValueError as e:
        raise AdvisorError(str(e)) from None
    fws = expand(args.framework)
    prober = export_prober(
        args, settings, MeasureConfig(min_time_s=args.min_time, max_warmup_s=3.0)
    )

    with progress(f"export {spec.name}", enabled=not args.json) as say:
        report = run_deploy(spec, prober, targets, fws, args.batch, say)
    exports = report.exports
    print(report.model_dump_json(indent=2) if args.json else render(report))
    if exports.from_store and not args.json:
        print(f"({exports.from_store} export(s) from the store; --fresh to redo)", file=sys.stderr)
    return 1 if any(c.status in ("failed", "timeout") for c in exports.checks) else 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "deploy",
        help="export to each deployment format in both frameworks and verify the artifacts",
        description=__doc__,
    )
    p.add_argument("model", metavar="NAME|FILE", help=MODEL_HELP)
    p.add_argument(
        "--targets",
        default="all",
        help="all, or a comma list of: "
        + ", ".join(f"{k} ({v})" for k, v in TARGET_TITLES.items()),
    )
    add_framework_option(p)
    p.add_argument("--batch", type=positive_int, default=1, help="static batch of the artifacts")
    p.add_argument("--min-time", type=positive_float, default=0.5, help="seconds of timed loop")
    p.add_argument("--timeout", type=positive_float, default=900.0, help="per export, seconds")
    p.add_argument(
        "--memory-mb",
        type=positive_int,
        default=None,
        help="per export RSS cap (default: 75%% of RAM)",
    )
    p.add_argument("--fresh", action="store_true", help="ignore stored results")
    return p
