"""Parent-side probing: validate before spawning, answer from the store, add efficiency."""

from __future__ import annotations

from dataclasses import dataclass, field

from probes.errors import InvalidSettingsError
from probes.measure.environment import environment
from probes.measure.timing import MeasureConfig
from probes.protocol import (
    FRAMEWORKS,
    Framework,
    PeakWorkload,
    ProbeLimits,
    ProbeRequest,
    ProbeResult,
    Workload,
)
from probes.runners.base import ProbeRunner
from probes.settings import Device, FrameworkSettings, default_settings, invalid_reasons
from probes.spec import Limits, ModelSpec, analyze, build_graph, check_limits
from probes.store import ResultStore, result_key

TRAIN_FLOP_FACTOR = 3  # forward + backward (~2x forward) per training step
PEAK_RUNS = 2  # the machine peak is the best of this many runs per framework
PEAK_MAX_AGE_S = 6 * 3600.0  # an older stored peak is measured again


@dataclass
class Prober:
    """Runs probes with one runner, store and measurement method."""

    runner: ProbeRunner
    store: ResultStore | None = None
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    limits: ProbeLimits = field(default_factory=ProbeLimits)
    spec_limits: Limits = field(default_factory=Limits)
    fresh: bool = False
    #: Efficiency against the machine's peak (a peak probe or two per framework, once
    #: per process). A measure-mode answer does not show it, so it does not pay for
    #: them; its stored results get it when a prober that wants it reads them.
    efficiency: bool = True
    from_store: int = 0
    _peaks: dict[str, float | None] = field(default_factory=dict)

    def check(
        self,
        spec: ModelSpec,
        framework: Framework,
        workload: Workload,
        settings: FrameworkSettings | None,
        device: Device = "cpu",
    ) -> None:
        """Raise before any process starts if the spec or settings cannot run."""
        graph = build_graph(spec)
        check_limits(analyze(graph), getattr(workload, "batch", 1), self.spec_limits)
        s = settings or default_settings(framework)
        has_conv2d = any(n.op == "conv2d" for n in graph.nodes)
        why = invalid_reasons(s, workload=workload.kind, has_conv2d=has_conv2d, device=device)
        if why:
            raise InvalidSettingsError(f"{framework} settings rejected: {'; '.join(why)}")

    def probe(
        self,
        spec: ModelSpec | None,
        framework: Framework,
        workload: Workload,
        settings: FrameworkSettings | None = None,
        device: Device = "cpu",
        seed: int = 0,
        measure: MeasureConfig | None = None,
        use_store: bool = True,
        limits: ProbeLimits | None = None,
    ) -> ProbeResult:
        """Measure, or answer from the store. ``measure`` overrides the method for this
        call (tuning sets an early-stop threshold per trial), and ``limits`` the process
        limits (measure mode bounds its exports tighter); ``use_store=False`` always
        measures (paired rounds), and still stores the new result."""
        if spec is not None:
            self.check(spec, framework, workload, settings, device)
        env = environment()
        s = settings or default_settings(framework)
        measure = measure or self.measure
        # The early-stop threshold is not part of the question: a stored full measurement
        # answers any threshold (and partial ones are never stored).
        method = measure.model_copy(update={"stop_above_s": None})
        key = result_key(spec, framework, workload, s, device, str(seed), method, env.key())
        if self.store is not None and not self.fresh and use_store:
            cached = self.store.get(key, PEAK_MAX_AGE_S if workload.kind == "peak" else None)
            if cached is not None:
                self.from_store += 1
                if self.efficiency and _lacks_efficiency(cached) and spec is not None:
                    self._add_efficiency(cached, spec, workload, device)
                return cached
        req = ProbeRequest(
            spec=spec,
            framework=framework,
            workload=workload,
            settings=s,
            device=device,
            seed=seed,
            measure=measure,
            limits=limits or self.limits,
        )
        result = self.runner.run(req)
        if result.status == "ok" and spec is not None:
            self._add_efficiency(result, spec, workload, device)
        timing = result.measurement.timing if result.measurement else None
        partial = timing is not None and timing.stopped_early  # a pruned trial's warm-up only
        if result.status == "ok" and not partial and self.store is not None:
            if workload.kind == "peak" and _higher_peak(
                self.store.get(key, PEAK_MAX_AGE_S), result
            ):
                return result  # the stored peak stays: the best of the recent runs
            self.store.put(
                key,
                spec=spec,
                framework=framework,
                workload=workload,
                settings=s,
                env_key=env.key(),
                result=result,
            )
        return result

    def machine_peak_gflops(self, device: Device = "cpu", refresh: bool = False) -> float | None:
        """Attainable float32 GFLOP/s: the best large matmul of either framework. A
        reading taken on a contended machine reads low, so it is taken again (up to
        ``PEAK_RUNS`` runs) and the best kept. Cached per process; stored results older
        than ``PEAK_MAX_AGE_S`` are measured again."""
        if device in self._peaks and not refresh:
            return self._peaks[device]
        best = None
        for fw in FRAMEWORKS:
            for i in range(PEAK_RUNS):
                stored, use_store = self.from_store, i == 0 and not refresh
                r = self.probe(None, fw, PeakWorkload(), device=device, use_store=use_store)
                if r.status == "ok" and r.measurement and r.measurement.gflops_per_s:
                    best = max(best or 0.0, r.measurement.gflops_per_s)
                if self.from_store > stored or not _contended(r):
                    break  # a recent stored peak, or a reading that got the machine
        self._peaks[device] = best
        return best

    def _add_efficiency(
        self, result: ProbeResult, spec: ModelSpec, workload: Workload, device: Device
    ) -> None:
        m = result.measurement
        if m is None or m.timing is None or m.batch is None:
            return
        flops = analyze(build_graph(spec)).flops * m.batch
        if workload.kind == "train":
            flops *= TRAIN_FLOP_FACTOR
        m.gflops_per_s = flops / m.timing.median_s / 1e9
        if not self.efficiency:
            return
        peak = self.machine_peak_gflops(device)
        if peak and m.gflops_per_s > peak:  # the peak was read low (a busy machine): again
            peak = max(self.machine_peak_gflops(device, refresh=True) or 0.0, m.gflops_per_s)
            self._peaks[device] = peak
        m.efficiency = min(1.0, m.gflops_per_s / peak) if peak else None


def _lacks_efficiency(r: ProbeResult) -> bool:
    m = r.measurement
    return r.status == "ok" and m is not None and m.timing is not None and m.efficiency is None


def _higher_peak(stored: ProbeResult | None, new: ProbeResult) -> bool:
    def gflops(r: ProbeResult | None) -> float:
        return (r.measurement.gflops_per_s or 0.0) if r and r.measurement else 0.0

    return gflops(stored) >= gflops(new)


def _contended(r: ProbeResult) -> bool:
    c = r.measurement.contention if r.measurement else None
    return c is not None and c.flagged
