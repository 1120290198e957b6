"""``fwadvisor`` command line. Every command that prints results also takes ``--json``."""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from probes.checks.parity import ParityReport, check_parity
from probes.config import Settings
from probes.errors import AdvisorError, SpecError
from probes.importers import FORMATS
from probes.runners.lifeline import die_with_parent
from probes.runners.local import SubprocessRunner
from probes.spec import (
    ModelSpec,
    SpecGraph,
    analyze,
    build_graph,
    check_limits,
    resolve_spec,
    zoo_names,
)
from service.api.context import hash_key
from service.cli import calibrate as calibrate_cmd
from service.cli import deploy as deploy_cmd
from service.cli import importer as import_cmd
from service.cli import probe as probe_cmd
from service.cli import recommend as recommend_cmd
from service.cli import tune as tune_cmd
from service.cli import zoo as zoo_cmd
from service.cli.errors import Parser, run
from service.cli.options import MODEL_HELP, positive_int
from service.cli.render import si, table
from service.schemas import ModelList, ModelSummary, ParitySummary
from service.settings import ServiceSettings


def _emit(args: argparse.Namespace, model: BaseModel, text: str) -> None:
    print(model.model_dump_json(indent=2) if args.json else text)


def _load(settings: Settings, name: str, size: str | None) -> tuple[ModelSpec, SpecGraph]:
    """Resolve, resize and validate; errors name the file (or zoo model) and the node."""
    spec = resolve_spec(name, settings.zoo_dir, settings.data_dir / "imports").resized(size)
    try:
        return spec, build_graph(spec)
    except SpecError as e:
        raise e.with_source(name) from None


def cmd_models_list(args: argparse.Namespace, settings: Settings) -> int:
    items = []
    for name in zoo_names(settings.zoo_dir):
        spec, graph = _load(settings, name, None)
        a = analyze(graph)
        items.append(
            ModelSummary(
                name=name,
                description=spec.description,
                task=spec.task,
                input_shapes=a.input_shapes,
                params=a.params,
                flops=a.flops,
                sizes=sorted(spec.sizes),
            )
        )
    rows = [
        (
            m.name,
            m.task,
            " ".join(f"{k}{v}" for k, v in m.input_shapes.items()),
            f"{m.params:,}",
            si(m.flops),
        )
        for m in items
    ]
    text = table(["model", "task", "input", "params", "FLOPs"], rows, align_right=(3, 4))
    _emit(args, ModelList(models=items), text)
    return 0


def cmd_models_show(args: argparse.Namespace, settings: Settings) -> int:
    spec, graph = _load(settings, args.model, args.size)
    a = analyze(graph)
    check_limits(a, args.batch, settings.limits)
    rows = [(n.id, n.op, str(n.output_shape), f"{n.params:,}", si(n.flops)) for n in a.nodes]
    rows.append(("TOTAL", "", "", f"{a.params:,}", si(a.flops)))
    text = "\n".join(
        [
            f"{spec.name}: {spec.description}",
            f"inputs: {a.input_shapes} (per sample, channels-first)",
            table(["node", "op", "output", "params", "FLOPs"], rows, align_right=(3, 4)),
            f"params {a.params:,} trainable + {a.buffers:,} buffers; weights "
            f"{a.weight_bytes / 2**20:.1f} MiB; FLOPs/sample {a.flops:,}; activations "
            f"<= {a.activation_bytes_per_sample * args.batch / 2**20:.1f} MiB "
            f"at batch {args.batch}",
        ]
    )
    _emit(args, a, text)
    return 0


def _parity_rows(reports: list[ParityReport]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in reports:
        status = "PASS" if r.passed else "FAIL"
        detail = "; ".join(f"{k}: {v}" for k, v in r.failures.items()) or ", ".join(
            c.name for c in r.compared if not c.passed
        )
        rows.append(
            (
                r.model,
                r.mode,
                str(r.input_shapes),
                status,
                "-" if r.max_abs_diff is None else f"{r.max_abs_diff:.2e}",
                "-" if r.max_rel_diff is None else f"{r.max_rel_diff:.2e}",
                f"{r.wall_s:.1f}s",
                detail[:60],
            )
        )
    return rows


def cmd_parity(args: argparse.Namespace, settings: Settings) -> int:
    names = zoo_names(settings.zoo_dir) if args.all else args.models
    if not names:
        raise AdvisorError("name a model or spec file, or pass --all")
    files = [n for n in names if Path(n).suffix in FORMATS and args.mode == "forward"]
    loaded = [_load(settings, n, args.size) for n in names]  # fail fast on a bad file
    for _, graph in loaded:
        check_limits(analyze(graph), args.batch, settings.limits)
    specs = [spec for (spec, _), n in zip(loaded, names, strict=True) if n not in files]
    runner = SubprocessRunner(timeout_s=settings.probe_timeout_s)
    reports = []
    for spec in specs:
        if not args.json:
            print(f"parity {spec.name} ...", file=sys.stderr, flush=True)
        reports.append(
            check_parity(
                spec,
                runner,
                batch=args.batch,
                seed=args.seed,
                mode="train_step" if args.mode == "train" else "forward",
                optimizer=args.optimizer,
            )
        )
    imports = [import_cmd.cmd_parity_file(args, settings, f) for f in files]
    summary = ParitySummary(
        passed=all(r.passed for r in reports) and all(r.passed for r in imports),
        reports=reports,
        imports=imports,
    )
    parts = [import_cmd.render_parity(r) for r in imports]
    if reports:
        text = table(
            ["model", "mode", "input", "parity", "max|diff|", "rel", "wall", "detail"],
            _parity_rows(reports),
            align_right=(4, 5, 6),
        )
        parts.append(
            text
            + "".join(f"\nnote: {r.model}: {n}" for r in reports for n in r.notes)
            + f"\n{sum(r.passed for r in reports)}/{len(reports)} passed "
            f"(tolerance: max|diff| <= 1e-4 x max(1, max|output|))"
        )
    _emit(args, summary, "\n\n".join(parts))
    return 0 if summary.passed else 1


def cmd_probe(args: argparse.Namespace, settings: Settings) -> int:
    if min(args.batch) < 1:
        raise AdvisorError("--batch values must be >= 1")
    spec, _ = _load(settings, args.model, args.size)
    return probe_cmd.cmd_probe(args, settings, spec)


def cmd_tune(args: argparse.Namespace, settings: Settings) -> int:
    if args.trials < 1 or args.batch < 1 or min(args.batches) < 1:
        raise AdvisorError("--trials, --batch and --batches must be >= 1")
    spec, _ = _load(settings, args.model, args.size)
    return tune_cmd.cmd_tune(args, settings, spec)


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    spec, graph = _load(settings, args.model, args.size)
    check_limits(analyze(graph), args.batch, settings.limits)
    return deploy_cmd.cmd_deploy(args, settings, spec)


def cmd_recommend(args: argparse.Namespace, settings: Settings) -> int:
    if args.trials < 1:
        raise AdvisorError("--trials must be >= 1")
    spec, _ = _load(settings, args.model, args.size)
    return recommend_cmd.cmd_recommend(args, settings, spec)


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    spec, graph = _load(settings, args.model, args.size)
    check_limits(analyze(graph), args.batch, settings.limits)
    return calibrate_cmd.cmd_predict(args, settings, spec)


def cmd_zoo(args: argparse.Namespace, settings: Settings) -> int:
    if args.trials < 1:
        raise AdvisorError("--trials must be >= 1")
    return zoo_cmd.cmd_zoo(args, settings)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from service.cli.serve import serve  # gunicorn only where serving

    service = ServiceSettings()
    return serve(
        service,
        host=args.host or service.host,
        port=args.port or service.port,
        web_workers=args.workers,
        threads=args.threads,
        worker=not args.no_worker,
        worker_class=args.worker_class,
    )


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from service.jobs.worker import JobWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    die_with_parent()  # when started by `fwadvisor serve`
    ran = JobWorker(ServiceSettings()).run(max_jobs=args.max_jobs, exit_when_idle=args.drain)
    if args.json:
        print(json.dumps({"jobs_run": ran}))
    return 0


def cmd_api_key(args: argparse.Namespace, settings: Settings) -> int:
    key = secrets.token_urlsafe(32)
    digest = hash_key(key)
    if args.json:
        print(json.dumps({"key": key, "sha256": digest}))
    else:
        print(f"key (give to the client, shown once): {key}")
        print(f"sha256 (put in FWADVISOR_API_KEYS): {digest}")
    return 0


def _service_parsers(sub: Any) -> list[argparse.ArgumentParser]:
    serve = sub.add_parser("serve", help="the REST API and web questionnaire, plus a job worker")
    serve.add_argument(
        "--host",
        default=None,
        help="default: $FWADVISOR_HOST, else 127.0.0.1",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=None,
        help="default: $FWADVISOR_PORT, else 8000",
    )
    serve.add_argument("--workers", type=positive_int, default=2, help="web processes (gunicorn)")
    serve.add_argument("--threads", type=positive_int, default=4, help="threads per web process")
    serve.add_argument(
        "--worker-class",
        choices=["gevent", "gthread", "sync"],
        default="gevent",
        help="gunicorn's; gevent (default) is not starved by slow clients",
    )
    serve.add_argument("--no-worker", action="store_true", help="do not start a job worker")
    serve.set_defaults(func=cmd_serve)
    worker = sub.add_parser("worker", help="run queued jobs, one at a time per machine")
    worker.add_argument("--max-jobs", type=positive_int, default=None, help="exit after this many")
    worker.add_argument("--drain", action="store_true", help="exit when the queue is empty")
    worker.set_defaults(func=cmd_worker)
    key = sub.add_parser("api-key", help="API keys").add_subparsers(dest="sub", required=True)
    new = key.add_parser("new", help="a new random key and the hash to configure")
    new.set_defaults(func=cmd_api_key)
    return [worker, new]


def _version() -> str:
    try:
        return metadata.version("framework-advisor")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="fwadvisor", description=__doc__)
    p.add_argument("--version", action="version", version=f"fwadvisor {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="the model zoo").add_subparsers(
        dest="sub", required=True
    )
    ls = models.add_parser("list", help="list zoo models")
    ls.set_defaults(func=cmd_models_list)
    show = models.add_parser("show", help="per-node table of a zoo model or spec file")
    show.add_argument("model", metavar="NAME|FILE", help=MODEL_HELP)
    show.add_argument("--batch", type=positive_int, default=1, help="batch of the memory figures")
    show.set_defaults(func=cmd_models_show)
    par = sub.add_parser("parity", help="check both frameworks compute the same outputs")
    par.add_argument("models", nargs="*", metavar="NAME|FILE", help=MODEL_HELP)
    par.add_argument("--all", action="store_true", help="every zoo model")
    par.add_argument("--batch", type=positive_int, default=2, help="batch of the parity inputs")
    par.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs")
    par.add_argument(
        "--mode",
        choices=["forward", "train"],
        default="forward",
        help="train: one optimizer step, compare loss and updated weights",
    )
    par.add_argument(
        "--optimizer", choices=["sgd", "adam"], default="sgd", help="train mode: the update"
    )
    par.set_defaults(func=cmd_parity)
    probe = probe_cmd.add_parser(sub)
    probe.set_defaults(func=cmd_probe)
    tune = tune_cmd.add_parser(sub)
    tune.set_defaults(func=cmd_tune)
    deploy = deploy_cmd.add_parser(sub)
    deploy.set_defaults(func=cmd_deploy)
    zoo = zoo_cmd.add_parser(sub)
    zoo.set_defaults(func=cmd_zoo)
    imp = import_cmd.add_parser(sub)
    imp.set_defaults(func=import_cmd.cmd_import)
    ask, rec = recommend_cmd.add_parsers(sub)
    ask.set_defaults(func=recommend_cmd.cmd_ask)
    rec.set_defaults(func=cmd_recommend)
    cal, pred = calibrate_cmd.add_parsers(sub)
    cal.set_defaults(func=calibrate_cmd.cmd_calibrate)
    pred.set_defaults(func=cmd_predict)
    for cmd in (ls, show, par, probe, tune, deploy, zoo, ask, rec, imp, cal, pred):
        cmd.add_argument("--json", action="store_true", help="machine-readable output")
    for cmd in _service_parsers(sub):
        cmd.add_argument("--json", action="store_true", help="machine-readable output")
    for cmd in (show, par, probe, tune, deploy, rec, pred):
        cmd.add_argument("--size", default=None, help="input-size preset, e.g. 'small'")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Every error, whatever raised it, is one line and exit code 2 (service.cli.errors)."""
    args_in = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        args = parser().parse_args(args_in)
        settings = Settings()
        if getattr(args, "fresh_processes", False):
            settings = settings.model_copy(update={"fresh_processes": True})
        return int(args.func(args, settings))

    return run(body, as_json="--json" in args_in)


if __name__ == "__main__":
    sys.exit(main())
