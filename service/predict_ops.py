"""``calibrate`` and ``predict``, shared by the CLI commands and the background jobs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field, ValidationError

from probes.calibrate.grid import CONFIGS
from probes.calibrate.run import CALIBRATION_ROUNDS, calibrate
from probes.config import Settings
from probes.errors import AdvisorError
from probes.frameworks.facts import expand
from probes.measure.environment import environment
from probes.protocol import FRAMEWORKS, Framework
from probes.runners.local import SubprocessRunner
from probes.settings import TFSettings, TorchSettings, default_settings
from probes.spec import ModelSpec, build_graph
from recommender.predictor.answers import Prediction
from recommender.predictor.cache import load_compiled
from recommender.predictor.choose import choose

Progress = Callable[[str], None]
FwSettings = TorchSettings | TFSettings
ALIASES = {"threads": "intra_threads", "inter": "inter_threads"}


class CalibrationReport(BaseModel):
    path: str
    env_key: str
    quick: bool
    rounds: int = Field(description="Measurements per cell asked for.")
    configs: list[str]
    measured: int = Field(description="Cell measurements made by this run.")
    skipped: int = Field(description="Cells already stored (resumed).")
    failed: list[str]
    cells_ok: int = Field(description="Usable cells in the calibration now.")
    wall_s: float


def run_calibrate(
    settings: Settings,
    quick: bool,
    configs: Sequence[str] | None,
    say: Progress,
    rounds: int = CALIBRATION_ROUNDS,
) -> CalibrationReport:
    unknown = sorted(set(configs or []) - set(CONFIGS))
    if unknown:
        raise AdvisorError(
            f"unknown configuration(s) {', '.join(unknown)} (known: {', '.join(CONFIGS)})"
        )
    runner = SubprocessRunner(timeout_s=settings.probe_timeout_s)
    chosen = list(configs) if configs else None
    run = calibrate(settings.data_dir, runner, quick, chosen, say, rounds=rounds)
    from probes.calibrate.store import load_calibration

    cal = load_calibration(run.path)
    return CalibrationReport(
        path=str(run.path),
        env_key=environment().key(),
        quick=quick,
        rounds=rounds,
        configs=run.configs,
        measured=run.measured,
        skipped=run.skipped,
        failed=run.failed,
        cells_ok=cal.ok_cells() if cal else 0,
        wall_s=run.wall_s,
    )


class FrameworkPrediction(BaseModel):
    latency_ms: float
    latency_lo_ms: float = Field(description="10% end of the interval.")
    latency_hi_ms: float = Field(description="90% end of the interval.")
    memory_mib: float = Field(description="Peak RSS above the framework's import.")
    memory_total_mib: float = Field(description="Including the framework's own RSS.")
    settings: str
    notes: list[str] = Field(default_factory=list)


class PredictReport(BaseModel):
    model: str
    batch: int
    frameworks: dict[str, FrameworkPrediction]
    calibration: str
    caveats: list[str]


def _value(text: str) -> object:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    return int(text) if text.isdigit() else text


def parse_settings(items: Sequence[str]) -> tuple[dict[Framework, FwSettings], bool]:
    """``K=V`` (both frameworks where the key exists), ``FW.K=V`` (one), or ``best``
    (each framework's best calibrated configuration). Raises AdvisorError."""
    updates: dict[Framework, dict[str, object]] = {fw: {} for fw in FRAMEWORKS}
    best = False
    for item in items:
        if item in ("best", "tuned"):
            best = True
            continue
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise AdvisorError(f"--settings: expected K=V, FW.K=V or 'best', got '{item}'")
        fw_text, dot, name = key.rpartition(".")
        fws = expand(fw_text) if dot else FRAMEWORKS
        name = ALIASES.get(name, name)
        for fw in fws:
            if dot or name in type(default_settings(fw)).model_fields:
                updates[fw][name] = _value(val)
    out: dict[Framework, FwSettings] = {}
    for fw in FRAMEWORKS:
        try:
            s = type(default_settings(fw)).model_validate({"framework": fw, **updates[fw]})
        except ValidationError as e:
            err = e.errors()[0]
            raise AdvisorError(
                f"--settings {fw}.{'.'.join(map(str, err['loc']))}: {err['msg']}"
            ) from None
        out[fw] = s
    return out, best


def _row(p: Prediction) -> FrameworkPrediction:
    return FrameworkPrediction(
        latency_ms=p.latency_s.median * 1e3,
        latency_lo_ms=p.latency_s.lo * 1e3,
        latency_hi_ms=p.latency_s.hi * 1e3,
        memory_mib=p.memory_bytes.median / 2**20,
        memory_total_mib=(p.memory_bytes.median + p.baseline_bytes) / 2**20,
        settings=p.settings,
        notes=p.out_of_range,
    )


def run_predict(
    settings: Settings, spec: ModelSpec, batch: int, items: Sequence[str]
) -> PredictReport:
    chosen, best = parse_settings(items)
    choice = choose(settings)
    graph = build_graph(spec)
    if choice.predictor is not None:
        pred = choice.predictor
        if best:
            chosen = {fw: pred.best(graph, fw, batch) for fw in FRAMEWORKS}
        preds = {fw: pred.predict(graph, fw, batch, chosen[fw]) for fw in FRAMEWORKS}
    else:
        preds = load_compiled(settings).predict_both(
            spec, batch, {str(k): v for k, v in chosen.items()}
        )
    return PredictReport(
        model=spec.name,
        batch=batch,
        frameworks={fw: _row(p) for fw, p in preds.items()},
        calibration=choice.calibration,
        caveats=choice.caveats,
    )
