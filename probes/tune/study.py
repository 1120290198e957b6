"""Optuna study plumbing for tuning: sampler, storage, heartbeats, names, informed
starts and trial summaries. `probes.tune.search` runs the study itself."""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from probes.protocol import Framework
from probes.settings import Device
from probes.spec import ModelSpec, spec_hash
from probes.tune.models import TrialSummary, TuneConfig
from probes.tune.owner import ABANDONED
from probes.tune.space import Objective

optuna.logging.set_verbosity(optuna.logging.WARNING)
# We record heartbeats ourselves around each probe (ask/tell has no built-in heartbeat).
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
RAN = "ran_probe"  # user attr: this trial spent a probe (counts toward the budget)


Direction = Literal["minimize", "maximize"]
DIRECTIONS: dict[str, list[Direction]] = {
    "latency": ["minimize"],
    "throughput": ["maximize"],
    "pareto": ["minimize", "minimize"],
}


def directions(objective: Objective) -> list[Direction]:
    return DIRECTIONS[objective]


def constraints_of(t: FrozenTrial) -> list[float]:
    return list(t.user_attrs.get("constraints", [0.0, 0.0]))


def make_sampler(cfg: TuneConfig, budget: int) -> optuna.samplers.BaseSampler:
    """TPE by default (chosen by benchmarks/tuner_efficiency.py; see docs/tuning.md)."""
    startup = max(2, min(10, budget // 3))
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=cfg.seed)
    if cfg.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=cfg.seed, population_size=max(4, budget // 3))
    return optuna.samplers.TPESampler(
        seed=cfg.seed,
        n_startup_trials=startup,
        multivariate=cfg.sampler == "tpe-multivariate",
    )


def storage_for(url: str, heartbeat_s: int, grace_s: int) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_s, grace_period=grace_s)


@contextlib.contextmanager
def heartbeat(
    storage: optuna.storages.BaseStorage, trial_id: int, interval_s: float
) -> Iterator[None]:
    """Keep the trial's heartbeat fresh while its probe runs, so a killed tuner's trial
    is recognised as stale (and failed) by the next run, on any machine."""
    stop = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
            if stop.wait(interval_s):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def study_name(spec: ModelSpec, framework: Framework, cfg: TuneConfig, device: Device) -> str:
    """One study per question, whatever the timed loop: a measure-mode screen (0.2 s)
    and a `fwadvisor tune` or zoo run (0.5 s) resume each other's trials. Both loops
    give a median of the same call, the screen's a little noisier; sharing is what lets
    a zoo run's recommendations reuse the searches it has just run."""
    batch = "search" if cfg.objective == "throughput" else str(cfg.batch)
    return (
        f"{spec.name}-{spec_hash(spec)}-{framework}-{cfg.workload}-{cfg.objective}"
        f"-b{batch}-{device}"
    )


def informed_starts(
    default: dict[str, Any],
    space: dict[str, list[Any]],
    native_bf16: bool,
    modes: tuple[dict[str, Any], ...] = (),
) -> list[dict[str, Any]]:
    """Points that domain knowledge says to try right after the defaults:
    - throughput rises with batch until memory runs out (Triton Model Analyzer's quick
      search starts from the same prior), so try the largest batch;
    - the framework's graph compiler (``modes``: torch.compile, XLA) is the main tuned
      mode, so a small budget always measures it;
    - on CPUs with native bf16 (AMX / AVX512-BF16) bf16 usually wins (PyTorch's CPU
      performance guide), so try it too.
    With batch in the space (throughput) the large batch makes the run compute-bound,
    where bf16 and channels_last (PyTorch's CPU guide, for convolutions) usually win
    together: they are tried first, all at once, so that a budget of one trial after
    the defaults still takes every knob that usually wins, not only the batch; then the
    same with the graph compiler (the compiler's gain stacks on theirs: resnet18's grid
    optimum is torch.compile with bf16 and channels_last at the largest batch).
    """
    base = dict(default)
    out: list[dict[str, Any]] = []
    usable = [m for m in modes if all(k in space and v in space[k] for k, v in m.items())]
    if "batch" in space:
        base["batch"] = max(space["batch"])
        bound = {**base, **_compute_bound_knobs(space, native_bf16)}
        out.append(bound)
        out += [{**bound, **mode} for mode in usable]
    out.append(base)
    out += [{**base, **mode} for mode in usable]
    if native_bf16 and "bf16" in space.get("precision", []):
        out.append({**base, "precision": "bf16"})
    unique = [p for i, p in enumerate(out) if p not in out[:i]]
    return [p for p in unique if p != default]


def _compute_bound_knobs(space: dict[str, list[Any]], native_bf16: bool) -> dict[str, Any]:
    knobs: dict[str, Any] = {}
    if native_bf16 and "bf16" in space.get("precision", []):
        knobs["precision"] = "bf16"
    if True in space.get("channels_last", []):
        knobs["channels_last"] = True
    return knobs


def spent_probe(t: FrozenTrial) -> bool:
    """Did this trial spend a probe and get a result (COMPLETE, PRUNED, or FAIL + reason)?
    A trial failed because its tuner died (``probes.tune.owner``) got none."""
    if not t.user_attrs.get(RAN) or t.state == TrialState.RUNNING or t.user_attrs.get(ABANDONED):
        return False
    return t.state != TrialState.FAIL or "reason" in t.user_attrs


def fmt(value: float | None, objective: Objective) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} samples/s" if objective == "throughput" else f"{value * 1e3:.3f} ms"


def summarize_trial(t: FrozenTrial) -> TrialSummary:
    state = t.state.name
    return TrialSummary(
        number=t.number,
        state=state,
        params=dict(t.params),
        values=list(t.values) if t.values else None,
        source=t.user_attrs.get("source"),
        reason=t.user_attrs.get("reason"),
        settings=t.user_attrs.get("settings"),
        batch=t.user_attrs.get("batch"),
        median_s=t.user_attrs.get("median_s"),
        throughput_sps=t.user_attrs.get("throughput_sps"),
        peak_rss_bytes=t.user_attrs.get("peak_rss_bytes"),
        contended=bool(t.user_attrs.get("contended")),
        feasible=all(c <= 0 for c in constraints_of(t)),
    )
