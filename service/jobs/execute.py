"""Runs one job request with the same library calls as the CLI commands."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from pydantic import BaseModel, Field

from probes.frameworks.facts import expand
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import FRAMEWORKS, Framework, ProbeLimits
from probes.runners.warm import local_runner
from probes.settings import TFSettings, TorchSettings, default_settings
from probes.store import ResultStore
from probes.tune.compare import tune
from probes.tune.models import TuneConfig
from recommender.recommend import recommend
from recommender.zoo.models import ZooConfig, ZooRun
from recommender.zoo.run import ZooRunner, run_zoo
from recommender.zoo.table import write_tables
from service.jobs.requests import (
    CalibrateJob,
    DeployJob,
    JobRequest,
    ProbeJob,
    RecommendJob,
    TuneJob,
    ZooJob,
)
from service.operations import run_deploy, run_probes, workloads_for
from service.predict_ops import run_calibrate
from service.settings import ServiceSettings

Progress = Callable[[str], None]


def _frameworks(choice: str) -> tuple[Framework, ...]:
    return expand(choice)


def _prober(
    settings: ServiceSettings, min_time_s: float, timeout_s: float, memory_mb: int | None
) -> Prober:
    return Prober(
        local_runner(timeout_s, fresh=settings.fresh_processes),
        ResultStore(settings.data_dir / "results.sqlite"),
        MeasureConfig(min_time_s=min_time_s),
        ProbeLimits(timeout_s=timeout_s, memory_mb=memory_mb),
        settings.limits,
    )


def _probe(req: ProbeJob, settings: ServiceSettings, say: Progress) -> BaseModel:
    spec = req.resolve(settings, max(req.batches))
    fws = list(_frameworks(req.framework))
    chosen: dict[str, TorchSettings | TFSettings] = {fw: default_settings(fw) for fw in FRAMEWORKS}
    timeout = min(req.timeout_s, settings.probe_timeout_s)
    prober = _prober(settings, req.min_time_s, timeout, None)
    work = workloads_for(list(req.workloads), req.batches, "sgd")
    return run_probes(spec, prober, fws, work, chosen, "cpu", say, req.rounds)


def _tune(req: TuneJob, settings: ServiceSettings, say: Progress) -> BaseModel:
    spec = req.resolve(settings, req.batch)
    cfg = TuneConfig(
        objective=req.objective,
        workload=req.workload,
        batch=req.batch,
        n_trials=req.trials,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{settings.data_dir.resolve()}/optuna.sqlite3"
    prober = _prober(settings, req.min_time_s, settings.probe_timeout_s, None)
    return tune(spec, cfg, prober, storage, _frameworks(req.framework), "cpu", say)


def _deploy(req: DeployJob, settings: ServiceSettings, say: Progress) -> BaseModel:
    targets = req.export_targets()
    spec = req.resolve(settings, req.batch)
    prober = _prober(settings, 0.5, settings.probe_timeout_s, settings.export_memory_mb())
    return run_deploy(spec, prober, targets, _frameworks(req.framework), req.batch, say)


def _recommend(req: RecommendJob, settings: ServiceSettings, say: Progress) -> BaseModel:
    spec = req.resolve(settings)
    return recommend(
        spec, req.answers, req.mode, settings=settings, trials=req.trials, progress=say
    )


class ZooJobResult(BaseModel):
    run: ZooRun
    report: str = Field(description="Where the worker wrote the HTML report.")


def _zoo(req: ZooJob, settings: ServiceSettings, say: Progress) -> BaseModel:
    specs = req.resolve(settings)
    body = req.model_dump_json(exclude={"max_minutes"})
    out = settings.data_dir / "zoo" / hashlib.sha256(body.encode()).hexdigest()[:12]
    cfg = ZooConfig(trials=req.trials, profiles=list(req.profiles), size=req.size)
    runner = ZooRunner(
        cfg, settings, out, local_runner(settings.probe_timeout_s, fresh=settings.fresh_processes)
    )
    run = run_zoo(specs, runner, say, req.max_minutes)
    write_tables(run, out)
    from recommender.zoo.report import write_report  # matplotlib: the worker only

    return ZooJobResult(run=run, report=str(write_report(run, out)))


def execute(req: JobRequest, settings: ServiceSettings, say: Progress) -> BaseModel:
    """The job's result (a pydantic model). Raises AdvisorError for a bad request."""
    if isinstance(req, ProbeJob):
        return _probe(req, settings, say)
    if isinstance(req, TuneJob):
        return _tune(req, settings, say)
    if isinstance(req, DeployJob):
        return _deploy(req, settings, say)
    if isinstance(req, ZooJob):
        return _zoo(req, settings, say)
    if isinstance(req, CalibrateJob):
        configs = list(req.configs) if req.configs else None
        return run_calibrate(settings, req.quick, configs, say, req.rounds)
    return _recommend(req, settings, say)
