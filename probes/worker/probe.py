"""Probe worker: ``python -m probes.worker.probe`` reads one ProbeRequest (JSON) on stdin and
writes one ProbeResult (JSON) on stdout. Logs go to stderr. Imports exactly one framework.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

from probes.errors import AdvisorError, UnsupportedError
from probes.frameworks import Backend, Step
from probes.frameworks.facts import facts
from probes.measure.contention import Contention, ContentionMeter
from probes.measure.memory import PeakSampler, peak_rss_bytes, rss_bytes
from probes.measure.timing import MeasureConfig, Timing, first_call, measure
from probes.payloads import ConvergenceData, ForwardData, TrainStepData
from probes.protocol import (
    ColdStartWorkload,
    ConvergenceWorkload,
    Framework,
    InferWorkload,
    Measurement,
    MemoryStats,
    Phases,
    ProbeRequest,
    ProbeResult,
    Status,
    TrainStepWorkload,
    TrainWorkload,
)
from probes.runners.lifeline import die_with_parent
from probes.settings import FrameworkSettings, TFSettings, settings_label
from probes.spec import SpecGraph, analyze, build_graph
from probes.weights import (
    flatten_weights,
    init_weights,
    load_npz,
    make_inputs,
    make_targets,
    save_npz,
    trainable_names,
)
from probes.worker.calibrate import run_calibrate
from probes.worker.custom import run_custom_op
from probes.worker.export import run_export
from probes.worker.preload import baseline_credit, imported
from probes.worker.training import fit

CONTENTION_RETRIES = 2  # a contended timed loop is run again in-process, at most this often
#: Workloads that report a payload (`probes.payloads`) instead of a measurement.
CHECKS = ("convergence", "custom_op", "export", "forward", "train_step")
OOM_MARKERS = (
    "can't allocate memory",
    "out of memory",
    "OOM when allocating",
    "ResourceExhaustedError",
)


def import_backend(req: ProbeRequest) -> Backend:
    """Apply process-level settings, then import the one framework this worker uses."""
    return import_framework(req.framework, req.effective_settings())


def import_framework(framework: Framework, s: FrameworkSettings) -> Backend:
    """``import_backend`` for a framework and its settings (a warm worker's start)."""
    if isinstance(s, TFSettings):
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if s.onednn else "0"
    backend: Backend = importlib.import_module(facts(framework).backend_module).BACKEND
    return backend


def _parity(req: ProbeRequest, backend: Backend, graph: SpecGraph) -> ForwardData | TrainStepData:
    weights = init_weights(graph, req.seed)
    assert req.spec is not None and req.io_dir is not None
    io = Path(req.io_dir)
    arrays = load_npz(io / "inputs.npz")
    inputs = [arrays[i.name] for i in req.spec.inputs]
    if req.workload.kind == "forward":
        outputs = backend.forward(graph, weights, inputs)
        named = dict(zip(req.spec.outputs, outputs, strict=True))
        save_npz(io / f"outputs_{req.framework}.npz", named)
        return ForwardData(outputs_file=f"outputs_{req.framework}.npz")
    assert isinstance(req.workload, TrainStepWorkload)
    targets = [arrays[f"target__{o}"] for o in req.spec.outputs]
    loss, updated = backend.train_step(
        graph, weights, inputs, targets, req.workload, trainable_names(graph)
    )
    save_npz(io / f"weights_{req.framework}.npz", flatten_weights(updated))
    return TrainStepData(loss=loss, weights_file=f"weights_{req.framework}.npz")


def _step(req: ProbeRequest, backend: Backend, graph: SpecGraph | None) -> Step:
    """Build the model and return the timed step (materialises its result)."""
    w, s, dev = req.workload, req.effective_settings(), req.device
    if w.kind == "peak":
        return backend.peak_step(w.n, dev)
    assert graph is not None and isinstance(w, InferWorkload | TrainWorkload | ColdStartWorkload)
    weights = init_weights(graph, req.seed)
    arrays = list(make_inputs(graph, w.batch, req.seed).values())
    if w.kind == "train":
        targets = list(make_targets(graph, w.batch, req.seed).values())
        return backend.train_step_fn(graph, weights, arrays, targets, w, s, dev)
    return backend.infer_step(graph, weights, arrays, s, dev)


def _convergence(req: ProbeRequest, backend: Backend, graph: SpecGraph) -> ConvergenceData:
    assert isinstance(req.workload, ConvergenceWorkload) and req.io_dir is not None
    data = load_npz(Path(req.io_dir) / "data.npz")
    weights = init_weights(graph, req.seed)
    s, dev = req.effective_settings(), req.device
    trainer = backend.trainer(graph, weights, data, req.workload, s, dev)
    return ConvergenceData(epochs=fit(trainer, data, req.workload.batch, graph.spec.task))


def _check(req: ProbeRequest, backend: Backend, graph: SpecGraph) -> ProbeResult:
    """A workload whose result is a payload, not a timing."""
    kind = req.workload.kind
    if kind == "custom_op":
        return run_custom_op(req, backend, graph)
    if kind == "export":
        return run_export(req, graph)
    data = (
        _convergence(req, backend, graph) if kind == "convergence" else _parity(req, backend, graph)
    )
    return ProbeResult(status="ok", framework=req.framework, data=data)


def _measure(req: ProbeRequest, main_start: float) -> ProbeResult:
    t0 = time.perf_counter()
    backend = import_backend(req)
    runtime = backend.configure(req.effective_settings(), req.device)
    import_s = time.perf_counter() - t0
    graph = build_graph(req.spec) if req.spec is not None else None
    if req.workload.kind == "calibrate":
        return run_calibrate(req, backend)
    if graph is not None and req.workload.kind in CHECKS:
        return _check(req, backend, graph)
    # A compiler the warm worker imported ahead: the reported baseline leaves it out (a
    # fresh process's has none), and a probe that uses it counts it in its peak.
    start = rss_bytes()
    credit = baseline_credit(req)
    baseline = start - credit
    if credit:
        runtime["compiler_import"] = f"in the warm worker; its {credit / 2**20:.0f} MiB counted"
    backend.reset_device_peak(req.device)
    # Memory pass: sample RSS through build, first call and two steady calls, then stop
    # the sampler so its thread cannot perturb the timed loop (VmHWM covers the rest).
    with PeakSampler() as sampler:
        t1 = time.perf_counter()
        step = _step(req, backend, graph)
        build_s = time.perf_counter() - t1
        t2_wall = time.time()
        first_s = first_call(step)
        if req.workload.kind != "cold":
            step(), step()
    timing, contention = None, None
    if req.workload.kind != "cold":
        timing, contention = _timed(step, req.measure, first_s)
    batch = getattr(req.workload, "batch", None)
    total = (t2_wall + first_s - req.spawn_time) if req.spawn_time else None
    phases = Phases(
        spawn_to_main_s=(main_start - req.spawn_time) if req.spawn_time else None,
        import_s=import_s,
        build_s=build_s,
        first_result_s=first_s,
        total_s=total,
    )
    memory = MemoryStats(
        baseline_rss_bytes=start - imported(),
        peak_rss_bytes=max(0, sampler.peak - baseline),
        maxrss_bytes=max(0, peak_rss_bytes() - baseline),
        weight_bytes=analyze(graph).weight_bytes if graph else 0,
        cuda_peak_bytes=backend.device_peak_bytes(req.device),
    )
    m = Measurement(
        kind=req.workload.kind,
        batch=batch,
        settings_label=settings_label(req.effective_settings()),
        timing=timing,
        throughput_sps=(batch / timing.median_s) if timing and batch else None,
        phases=phases,
        memory=memory,
        runtime=runtime,
        contention=contention,
    )
    if req.workload.kind == "peak" and timing:
        m.gflops_per_s = 2 * req.workload.n**3 / timing.median_s / 1e9
    return ProbeResult(status="ok", framework=req.framework, measurement=m)


def _timed(step: Step, cfg: MeasureConfig, first_s: float) -> tuple[Timing, Contention | None]:
    """The timing method, repeated in this process (no respawn, no recompile) while the
    machine was contended, at most ``CONTENTION_RETRIES`` more times; the least
    contended timing is kept, with its reading."""
    best: tuple[Timing, Contention | None] | None = None
    for _ in range(1 + CONTENTION_RETRIES):
        with ContentionMeter() as meter:
            timing = measure(step, cfg, first_s)
        c = meter.result
        if best is None or (c and best[1] and c.cpu_share > best[1].cpu_share):
            best = (timing, c)
        if c is None or not c.flagged or timing.stopped_early:
            break
    assert best is not None
    return best


def _failure(req: ProbeRequest, e: BaseException) -> ProbeResult:
    status: Status = "failed"
    text = f"{type(e).__name__}: {e}"
    if isinstance(e, UnsupportedError):
        status, text = "unsupported", e.message
    elif isinstance(e, AdvisorError):
        text = e.message
    elif isinstance(e, NotImplementedError):
        status = "unsupported"
    elif isinstance(e, MemoryError) or any(m in text for m in OOM_MARKERS):
        status = "oom"
    if status == "failed":
        traceback.print_exc()
    return ProbeResult(status=status, framework=req.framework, reason=text[:2000])


def main() -> int:
    main_start = time.time()
    die_with_parent()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr
    start = time.perf_counter()
    try:
        req = ProbeRequest.model_validate_json(sys.stdin.read())
    except ValueError as e:
        print(f"invalid request: {e}", file=sys.stderr)
        return 2
    try:
        result = _measure(req, main_start)
    except Exception as e:
        result = _failure(req, e)
    result.wall_s = time.perf_counter() - start
    with contextlib.suppress(BrokenPipeError):
        out.write(result.model_dump_json() + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
