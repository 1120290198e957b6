"""Optuna tuning: each framework at its own best settings, resumable from storage.

One study per (model, framework, workload, objective, batch, device). Optuna's ask/tell
drives the Prober, so a probe that fails, times out or runs out of memory becomes a FAIL
trial with its reason, an invalid combination is pruned before any process starts, and
nothing the probe does raises here.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from probes.errors import AdvisorError
from probes.features import spec_features
from probes.frameworks.facts import facts
from probes.measure.environment import environment
from probes.probe import Prober
from probes.protocol import Framework, InferWorkload, ProbeResult, TrainWorkload
from probes.settings import Device, FrameworkSettings, default_settings, settings_label
from probes.spec import ModelSpec, build_graph
from probes.tune.models import TuneConfig
from probes.tune.owner import OWNER, fail_abandoned, owner_tag
from probes.tune.space import search_space, space_size, to_params, to_settings
from probes.tune.study import (
    RAN,
    constraints_of,
    directions,
    fmt,
    heartbeat,
    informed_starts,
    make_sampler,
    spent_probe,
    study_name,
)


class FrameworkTuner:
    """Runs (or resumes) one study to its budget."""

    def __init__(
        self,
        spec: ModelSpec,
        framework: Framework,
        cfg: TuneConfig,
        prober: Prober,
        storage: optuna.storages.RDBStorage,
        device: Device = "cpu",
        progress: Callable[[str], None] | None = None,
        space: dict[str, list[Any]] | None = None,
    ) -> None:
        """``space`` narrows the search (benchmarks); by default every knob that matters."""
        self.spec, self.fw, self.cfg, self.prober = spec, framework, cfg, prober
        self.storage, self.device = storage, device
        self.progress = progress or (lambda _msg: None)
        graph = build_graph(spec)
        self.space = space or search_space(
            framework, graph, cfg.workload, cfg.objective, cfg.batches, device
        )
        self.features = spec_features(graph)
        self.study = optuna.create_study(
            study_name=study_name(spec, framework, cfg, device),
            storage=storage,
            directions=directions(cfg.objective),
            load_if_exists=True,
            sampler=make_sampler(cfg, cfg.n_trials or space_size(self.space)),
        )

    def _workload(self, batch: int) -> InferWorkload | TrainWorkload:
        return (
            InferWorkload(batch=batch)
            if self.cfg.workload == "infer"
            else TrainWorkload(batch=batch)
        )

    def ran(self) -> int:
        """Trials that spent a probe and were told a result. A trial whose tuner was
        killed is failed by the next run (``fail_abandoned``): it does not count."""
        return sum(1 for t in self.study.get_trials(deepcopy=False) if spent_probe(t))

    def _finished_twin(self, params: dict[str, Any]) -> FrozenTrial | None:
        """A finished trial with these exact params: its answer is reused, not re-measured."""
        for t in self.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)
        ):
            if t.params == params and spent_probe(t):
                return t
        return None

    def enqueue_starts(
        self, warm: list[dict[str, Any]], predicted: Sequence[FrameworkSettings] = ()
    ) -> None:
        """Defaults first (the baseline the speed-up is measured against), then the
        informed, predicted and warm starts."""
        if self.study.get_trials(deepcopy=False):
            return  # resumed: the queue is already in storage
        default = to_params(
            default_settings(self.fw),
            self.space,
            self.cfg.batches[0] if self.cfg.objective == "throughput" else None,
        )
        queued: list[dict[str, Any] | None] = []

        def add(params: dict[str, Any] | None, source: str) -> None:
            if params is not None and params not in queued:
                self.study.enqueue_trial(params, user_attrs={"source": source})
                queued.append(params)

        add(default, "default")
        informed: list[dict[str, Any]] = []
        if self.cfg.informed_starts and default is not None:
            # The graph compiler is a generic prior; warm starts from similar models
            # measured on this machine are specific evidence, so they take its place.
            modes = () if warm else facts(self.fw).informed
            informed = informed_starts(default, self.space, environment().native_bf16, modes)
        # With batch in the space the compute-bound start leads; the configuration this
        # machine's calibration predicts fastest (for this model) comes next, before the
        # generic priors.
        lead = 1 if "batch" in self.space else 0
        for params in informed[:lead]:
            add(params, "informed")
        largest = max(self.space["batch"]) if "batch" in self.space else None
        for s in predicted:
            add(to_params(s, self.space, largest), "predicted")
        for params in informed[lead:]:
            add(params, "informed")
        for params in warm:
            if params not in queued:
                self.study.enqueue_trial(
                    params, user_attrs={"source": "warm-start"}, skip_if_exists=True
                )

    def _enqueue_unexplored(self, salt: int) -> None:
        """After a duplicate, queue a random valid point never tried, so each ask makes
        progress (a converged TPE would otherwise keep proposing its incumbent)."""
        tried = [t.params for t in self.study.get_trials(deepcopy=False)]
        keys = list(self.space)
        rng = random.Random(f"{self.cfg.seed}-{salt}")
        points = [
            dict(zip(keys, combo, strict=True)) for combo in itertools.product(*self.space.values())
        ]
        rng.shuffle(points)
        for params in points:
            if params in tried:
                continue
            batch = int(params.get("batch", self.cfg.batch))
            try:
                self.prober.check(
                    self.spec,
                    self.fw,
                    self._workload(batch),
                    to_settings(self.fw, params),
                    self.device,
                )
            except AdvisorError:
                continue
            self.study.enqueue_trial(params, user_attrs={"source": "unexplored"})
            return

    def _best_value(self) -> float | None:
        vals: list[float] = [
            float(t.values[0])
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values and all(c <= 0 for c in constraints_of(t))
        ]
        if not vals:
            return None
        return min(vals) if self.cfg.objective != "throughput" else max(vals)

    def _stop_above(self, batch: int) -> float | None:
        """Early-stop threshold for this trial's warm-up median (None: never)."""
        best = self._best_value()
        if best is None or self.cfg.objective == "pareto" or self.cfg.prune_factor is None:
            return None
        per_call = best if self.cfg.objective == "latency" else batch / best
        return per_call * self.cfg.prune_factor

    def run(self) -> None:
        for t in fail_abandoned(self.study, self.cfg.grace_s):
            self.progress(f"{self.fw}: trial #{t.number} failed: {t.user_attrs.get('reason')}")
        budget, start, asks = self.cfg.n_trials, time.monotonic(), 0
        while budget is None or self.ran() < budget or self._baseline_waiting():
            if self.cfg.timeout_s is not None and time.monotonic() - start > self.cfg.timeout_s:
                break
            asks += 1
            if asks > 20 * (budget or space_size(self.space)):
                break  # the sampler keeps proposing pruned points: the space is exhausted
            self._one_trial()

    def _baseline_waiting(self) -> bool:
        """A default requeued after its tuner died is still to run: the budget does not
        end the study without the baseline every speed-up is relative to."""
        waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        return any(t.user_attrs.get("source") == "default" for t in waiting)

    def _one_trial(self) -> None:
        trial = self.study.ask()
        trial.set_user_attr(OWNER, owner_tag())
        params = {k: trial.suggest_categorical(k, v) for k, v in self.space.items()}
        settings = to_settings(self.fw, params)
        batch = int(params.get("batch", self.cfg.batch))
        workload = self._workload(batch)
        trial.set_user_attr("settings", settings_label(settings))
        trial.set_user_attr("batch", batch)
        try:
            self.prober.check(self.spec, self.fw, workload, settings, self.device)
        except AdvisorError as e:  # invalid combination or over a limit: never runs
            trial.set_user_attr("reason", e.message)
            self.study.tell(trial, state=TrialState.PRUNED)
            self.progress(
                f"{self.fw} #{trial.number} {trial.user_attrs['settings']}: "
                f"pruned before running ({e.message})"
            )
            return
        twin = self._finished_twin(params)
        if twin is not None:  # samplers revisit points; the budget is for distinct probes
            trial.set_user_attr("source", f"duplicate of #{twin.number}")
            copied = (
                "reason",
                "median_s",
                "throughput_sps",
                "peak_rss_bytes",
                "constraints",
                "contended",
            )
            for k in copied:
                if k in twin.user_attrs:
                    trial.set_user_attr(k, twin.user_attrs[k])
            for key, value in zip(
                ("memory_over_mb", "slo_over_ms"), constraints_of(twin), strict=True
            ):
                trial.set_constraint(key, value)
            self.study.tell(
                trial, twin.values if twin.state == TrialState.COMPLETE else None, state=twin.state
            )
            self._enqueue_unexplored(trial.number)
            return
        # the default is the baseline of every speed-up: never stopped early (it runs
        # first, except when requeued after its tuner died)
        baseline = trial.user_attrs.get("source") == "default"
        stop = None if baseline else self._stop_above(batch)
        measure = self.prober.measure.model_copy(update={"stop_above_s": stop})
        trial.set_user_attr(RAN, True)
        with heartbeat(self.storage, trial._trial_id, self.cfg.heartbeat_s):
            result = self.prober.probe(
                self.spec, self.fw, workload, settings, self.device, measure=measure
            )
        self._tell(trial, result, batch)

    def _tell(self, trial: optuna.Trial, result: ProbeResult, batch: int) -> None:
        m = result.measurement
        if result.status != "ok" or m is None or m.timing is None:
            trial.set_user_attr("reason", f"{result.status}: {result.reason}")
            self.study.tell(trial, state=TrialState.FAIL)
            self.progress(
                f"{self.fw} #{trial.number} {trial.user_attrs['settings']} "
                f"b={batch}: {result.status.upper()} {(result.reason or '')[:80]}"
            )
            return
        median, peak = m.timing.median_s, m.memory.peak_rss_bytes if m.memory else 0
        trial.set_user_attr("median_s", median)
        trial.set_user_attr("throughput_sps", m.throughput_sps)
        trial.set_user_attr("peak_rss_bytes", peak)
        trial.set_user_attr("contended", bool(m.contention and m.contention.flagged))
        trial.set_user_attr("result", result.model_dump(mode="json"))
        cfg = self.cfg
        over = {  # > 0 is infeasible; samplers read them through set_constraint
            "memory_over_mb": (peak / 2**20 - cfg.memory_budget_mb)
            if cfg.memory_budget_mb
            else 0.0,
            "slo_over_ms": (median * 1e3 - cfg.latency_slo_ms) if cfg.latency_slo_ms else 0.0,
        }
        trial.set_user_attr("constraints", list(over.values()))
        for key, value in over.items():
            trial.set_constraint(key, value)
        if m.timing.stopped_early:
            trial.report(median if cfg.objective != "throughput" else batch / median, 0)
            trial.set_user_attr(
                "reason",
                f"stopped early: warm-up median {median * 1e3:.3f} ms "
                f"> {cfg.prune_factor}x the best so far",
            )
            self.study.tell(trial, state=TrialState.PRUNED)
            self.progress(
                f"{self.fw} #{trial.number} {trial.user_attrs['settings']} b={batch}: "
                f"pruned early ({median * 1e3:.3f} ms)"
            )
            return
        values = {
            "latency": [median],
            "throughput": [m.throughput_sps or 0.0],
            "pareto": [median, float(peak)],
        }[cfg.objective]
        self.study.tell(trial, values)
        best = self._best_value()
        self.progress(
            f"{self.fw} #{trial.number} {trial.user_attrs['settings']} b={batch}: "
            f"{fmt(values[0], cfg.objective)} (best {fmt(best, cfg.objective)})"
        )
