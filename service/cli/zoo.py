"""``fwadvisor zoo``: evaluate a whole zoo (tune, export, recommend per profile) and
write the tidy tables and the HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from probes.config import Settings
from probes.errors import AdvisorError
from probes.runners.base import ProbeRunner
from probes.runners.local import SubprocessRunner
from probes.spec import ModelSpec, load_spec_file, resolve_spec, zoo_names
from recommender.zoo.models import PROFILES, ZooConfig, ZooRun
from recommender.zoo.run import ZooRunner, profile_answers, run_zoo
from recommender.zoo.table import write_tables
from service.cli.options import positive_float, positive_int
from service.cli.progress import progress
from service.cli.render import table


def _specs(args: argparse.Namespace, settings: Settings) -> list[ModelSpec]:
    if len(args.models) == 1 and Path(args.models[0]).is_dir():
        files = sorted(Path(args.models[0]).glob("*.y*ml"))
        specs = [load_spec_file(f) for f in files]
    else:
        specs = [
            resolve_spec(n, settings.zoo_dir, settings.data_dir / "imports")
            for n in args.models or zoo_names(settings.zoo_dir)
        ]
    if args.only:
        keep = {n.strip() for n in args.only.split(",")}
        unknown = keep - {s.name for s in specs}
        if unknown:
            raise AdvisorError(f"--models names unknown models: {', '.join(sorted(unknown))}")
        specs = [s for s in specs if s.name in keep]
    return [s.resized(args.size) if args.size in s.sizes else s for s in specs]


def _runner(args: argparse.Namespace, settings: Settings) -> ProbeRunner:
    if args.executor == "ray":
        try:
            from probes.runners.ray import RayRunner
        except ImportError:
            raise AdvisorError("--executor ray needs: pip install framework-advisor[ray]") from None
        gpus = 1 if args.device == "cuda" else 0  # one GPU per probe task
        return RayRunner(args.address, timeout_s=settings.probe_timeout_s, num_gpus=gpus)
    return SubprocessRunner(timeout_s=settings.probe_timeout_s)


def summary_rows(run: ZooRun) -> list[tuple[str, ...]]:
    rows = []
    for o in run.models:
        if o.status == "failed":
            rows.append(
                (o.model, "FAILED", (o.reason or "")[:70], *("" for _ in run.config.profiles))
            )
            continue
        by = {v.profile: v for v in o.verdicts}
        tuned = o.tuned.note.split(":")[1].strip()[:40] if o.tuned else "-"
        flip = " (flipped)" if o.flipped else ""
        rows.append(
            (
                o.model,
                "done",
                tuned + flip,
                *(
                    f"{by[p].choice} {by[p].confidence:.0%}" if p in by else "-"
                    for p in run.config.profiles
                ),
            )
        )
    rows += [
        (m, "not run", why[:70], *("" for _ in run.config.profiles))
        for m, why in run.not_run.items()
    ]
    return rows


def cmd_zoo(args: argparse.Namespace, settings: Settings) -> int:
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    for p in profiles:
        profile_answers(p)  # an unknown profile fails before anything runs
    cfg = ZooConfig(
        trials=args.trials,
        profiles=profiles,
        size=args.size,
        storage=args.storage,
        executor=args.executor,
        ray_address=args.address,
        device=args.device,
    )
    specs = _specs(args, settings)
    out = Path(args.out)

    if args.report_only:  # stored records only: no probe runs, not even the machine peak
        runner = ZooRunner(cfg, settings, out, report_only=True)
        missing = [s.name for s in specs if runner.stored(s.name) is None]
        if missing:
            raise AdvisorError(f"--report-only: no finished result for {', '.join(missing)}")
    else:
        runner = ZooRunner(cfg, settings, out, _runner(args, settings))
    with progress("zoo", enabled=not args.json) as say:
        run = run_zoo(specs, runner, say, args.max_minutes)
    written = write_tables(run, out)
    from recommender.zoo.report import write_report  # matplotlib only here

    written.append(write_report(run, out))
    if args.json:
        print(run.model_dump_json(indent=2))
    else:
        heads = ["model", "status", "tuned b1 (latency)", *profiles]
        print(table(heads, summary_rows(run)))
        for w in run.warnings:
            print(f"warning: {w}")
        print("wrote " + ", ".join(str(p) for p in written))
    return 0 if all(o.status == "done" for o in run.models) and not run.not_run else 1


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "zoo", help="evaluate many models: tune, export, recommend per profile; tables + report"
    )
    p.add_argument("models", nargs="*", metavar="NAME|DIR", help="zoo names or a spec folder")
    p.add_argument("--models", dest="only", default=None, help="comma list: only these")
    p.add_argument("--trials", type=positive_int, default=4, help="probe-running trials per study")
    p.add_argument("--profiles", default=",".join(PROFILES), help="answer files in data/examples")
    p.add_argument("--size", default=None, help="input-size preset where a model has it")
    p.add_argument("--out", default="var/zoo", help="output folder (also the resume state)")
    p.add_argument(
        "--max-minutes", type=positive_float, default=None, help="start no model after this"
    )
    p.add_argument("--storage", default=None, help="Optuna storage URL, e.g. postgresql://...")
    p.add_argument("--executor", choices=["local", "ray"], default="local", help="where probes run")
    p.add_argument("--address", default=None, help="Ray cluster address (default: local Ray)")
    p.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="where tuning probes run; cuda asks Ray for one GPU per probe (num_gpus=1)",
    )
    p.add_argument("--report-only", action="store_true", help="rebuild outputs from finished runs")
    return p
