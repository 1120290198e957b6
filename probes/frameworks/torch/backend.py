"""PyTorch side of the worker: parity passes and timed steps under TorchSettings."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from probes.errors import UnsupportedError, brief
from probes.frameworks import EVAL_BATCH, Backend, Optimized, Step, Trainer
from probes.frameworks.torch import build as build_torch
from probes.frameworks.torch.custom import custom_grads as custom_grads
from probes.payloads import CompileCheck
from probes.protocol import ConvergenceWorkload, TrainStepWorkload, TrainWorkload
from probes.settings import FrameworkSettings, TorchSettings, cpu_budget
from probes.spec import SpecGraph
from probes.weights import NeutralWeights


def _own(settings: FrameworkSettings | None) -> TorchSettings:
    if settings is None:
        return TorchSettings()
    if not isinstance(settings, TorchSettings):
        raise TypeError(f"PyTorch backend given {settings.framework} settings")
    return settings


def configure(settings: FrameworkSettings | None, device: str = "cpu") -> dict[str, str]:
    s = _own(settings)
    torch.set_num_threads(s.intra_threads or cpu_budget())
    # Settable once per process, before its first op: each probe's forked child sets it.
    if s.inter_threads and torch.get_num_interop_threads() != s.inter_threads:
        torch.set_num_interop_threads(s.inter_threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise UnsupportedError("device=cuda requested but torch sees no CUDA device")
    return {
        "torch": torch.__version__,
        "intra_threads": str(torch.get_num_threads()),
        "mkldnn": str(torch.backends.mkldnn.is_available()),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
    }


def _as_tuple(out: Any) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def _materialise(outs: tuple[torch.Tensor, ...], dev: torch.device) -> None:
    """Stop the clock only on a computed result: sync CUDA; on CPU expose the buffer."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        return
    for o in outs:  # zero-copy views; bf16 has no numpy dtype, so view its bits
        if o.dtype == torch.bfloat16:
            o = o.view(torch.int16)
        (o.detach() if o.requires_grad else o).numpy()


def _prepare(
    graph: SpecGraph,
    weights: NeutralWeights,
    arrays: list[np.ndarray],
    s: TorchSettings,
    device: str,
) -> tuple[Any, Any, list[torch.Tensor], torch.device]:
    dev = torch.device(device)
    model = build_torch.build(graph, weights).to(dev)
    xs = [torch.from_numpy(a).to(dev) for a in arrays]
    if s.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        xs = [x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in xs]
    fn = torch.compile(model, mode=s.compile_mode) if s.mode == "compile" else model
    return model, fn, xs, dev


def _autocast(s: TorchSettings, dev: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast, or a no-op. Entering even a disabled autocast costs ~1 us per call,
    which is 2% of a 60 us MLP step, so fp32 steps skip it (see benchmarks.md)."""
    if s.precision == "bf16":
        return torch.autocast(dev.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def infer_step(
    graph: SpecGraph,
    weights: NeutralWeights,
    arrays: list[np.ndarray],
    s: FrameworkSettings,
    device: str,
) -> Step:
    s = _own(s)
    model, fn, xs, dev = _prepare(graph, weights, arrays, s, device)
    model.eval()
    grad_off = torch.inference_mode if s.inference_mode else torch.no_grad

    if s.precision == "bf16":

        def step() -> None:
            with grad_off(), _autocast(s, dev):
                outs = _as_tuple(fn(*xs))
            _materialise(outs, dev)

    else:

        def step() -> None:
            with grad_off():
                outs = _as_tuple(fn(*xs))
            _materialise(outs, dev)

    return step


def train_step_fn(
    graph: SpecGraph,
    weights: NeutralWeights,
    arrays: list[np.ndarray],
    targets: list[np.ndarray],
    workload: TrainWorkload,
    s: FrameworkSettings,
    device: str,
) -> Step:
    s = _own(s)
    model, fn, xs, dev = _prepare(graph, weights, arrays, s, device)
    model.train()
    ys = [torch.from_numpy(t).to(dev) for t in targets]
    opt = _optimizer([p for p in model.parameters() if p.requires_grad], workload)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with _autocast(s, dev):
            outs = _as_tuple(fn(*xs))
        loss = sum(torch.mean((o.float() - y) ** 2) for o, y in zip(outs, ys, strict=True))
        loss.backward()  # type: ignore[union-attr]
        opt.step()
        return float(loss)  # .item() synchronises

    return step


def peak_step(n: int, device: str) -> Step:
    dev = torch.device(device)
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)

    def step() -> None:
        _materialise((torch.mm(a, b),), dev)

    return step


def reset_device_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def device_peak_bytes(device: str) -> int | None:
    return int(torch.cuda.max_memory_allocated()) if device == "cuda" else None


def forward(
    graph: SpecGraph, weights: NeutralWeights, inputs: list[np.ndarray]
) -> list[np.ndarray]:
    model = build_torch.build(graph, weights)
    with torch.inference_mode():
        outs = _as_tuple(model(*[torch.from_numpy(x) for x in inputs]))
    return [o.numpy() for o in outs]


def train_step(
    graph: SpecGraph,
    weights: NeutralWeights,
    inputs: list[np.ndarray],
    targets: list[np.ndarray],
    workload: TrainStepWorkload,
    names: dict[str, list[str]],
) -> tuple[float, NeutralWeights]:
    """One parity step; returns the loss and the updated trainable neutral weights."""
    model = build_torch.build(graph, weights).train()
    opt = _optimizer([p for p in model.parameters() if p.requires_grad], workload)
    opt.zero_grad()
    outs = _as_tuple(model(*[torch.from_numpy(x) for x in inputs]))
    loss = sum(
        torch.mean((o - torch.from_numpy(t)) ** 2) for o, t in zip(outs, targets, strict=True)
    )
    loss.backward()  # type: ignore[union-attr]
    opt.step()
    return float(loss), build_torch.dump_weights(model, names)


def _optimizer(params: list[torch.Tensor], w: Optimized) -> torch.optim.Optimizer:
    if w.optimizer == "sgd":
        return torch.optim.SGD(params, lr=w.lr, momentum=getattr(w, "momentum", 0.0))
    return torch.optim.Adam(params, lr=w.lr)


def trainer(
    graph: SpecGraph,
    weights: NeutralWeights,
    data: dict[str, np.ndarray],
    w: ConvergenceWorkload,
    s: FrameworkSettings,
    device: str,
) -> Trainer:
    """The convergence run's steps: in ``data``'s batch order, evaluated after each epoch."""
    s = _own(s)
    model, fn, _, dev = _prepare(graph, weights, [data["x_train"][:1]], s, device)
    opt = _optimizer([p for p in model.parameters() if p.requires_grad], w)
    x, y = torch.from_numpy(data["x_train"]).to(dev), torch.from_numpy(data["y_train"]).to(dev)
    xv = torch.from_numpy(data["x_val"]).to(dev)
    classify = graph.spec.task == "classification"
    loss_fn: Any = torch.nn.CrossEntropyLoss() if classify else torch.nn.MSELoss()

    def step(rows: np.ndarray) -> float:
        idx = torch.from_numpy(rows).to(dev)
        opt.zero_grad(set_to_none=True)
        with _autocast(s, dev):
            out = fn(x[idx])
        loss = loss_fn(out.float(), y[idx])
        loss.backward()
        opt.step()
        return float(loss)

    def predict() -> np.ndarray:
        model.eval()
        with torch.no_grad(), _autocast(s, dev):
            chunks = [model(xv[i : i + EVAL_BATCH]).float() for i in range(0, len(xv), EVAL_BATCH)]
        return torch.cat(chunks).cpu().numpy()

    @contextlib.contextmanager
    def epoch() -> Iterator[None]:
        model.train()
        yield

    return Trainer(step=step, predict=predict, epoch=epoch)


def compile_check(
    graph: SpecGraph, weights: NeutralWeights, arrays: list[np.ndarray], full: bool
) -> list[CompileCheck]:
    """Does the eval model trace (torch._dynamo.explain: graphs, breaks) and, if ``full``,
    compile with inductor and reproduce the eager outputs?"""
    import torch._dynamo as dynamo

    model = build_torch.build(graph, weights).eval()
    xs = [torch.from_numpy(a) for a in arrays]
    with torch.no_grad():
        ref = _as_tuple(model(*xs))
    checks: list[CompileCheck] = []
    dynamo.reset()
    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            ex = dynamo.explain(model)(*xs)
        reasons = sorted({str(r.reason).splitlines()[0][:200] for r in ex.break_reasons})
        checks.append(
            CompileCheck(
                name="torch.compile trace (dynamo)",
                ok=ex.graph_break_count == 0,
                graphs=ex.graph_count,
                graph_breaks=ex.graph_break_count,
                detail="; ".join(reasons[:3]) or "one graph, no breaks",
                time_s=time.perf_counter() - t0,
            )
        )
    except Exception as e:
        checks.append(CompileCheck(name="torch.compile trace (dynamo)", ok=False, detail=brief(e)))
    if full:
        dynamo.reset()
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                got = _as_tuple(torch.compile(model)(*xs))
            same = all(
                torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(ref, got, strict=True)
            )
            detail = "compiled; outputs match eager" if same else "outputs differ from eager"
            checks.append(
                CompileCheck(
                    name="torch.compile (inductor)",
                    ok=same,
                    detail=detail,
                    time_s=time.perf_counter() - t0,
                )
            )
        except Exception as e:
            checks.append(CompileCheck(name="torch.compile (inductor)", ok=False, detail=brief(e)))
        dynamo.reset()
    return checks


class TorchBackend:
    """This module as a `Backend`: mypy checks every function against the protocol here."""

    configure = staticmethod(configure)
    infer_step = staticmethod(infer_step)
    train_step_fn = staticmethod(train_step_fn)
    peak_step = staticmethod(peak_step)
    reset_device_peak = staticmethod(reset_device_peak)
    device_peak_bytes = staticmethod(device_peak_bytes)
    forward = staticmethod(forward)
    train_step = staticmethod(train_step)
    compile_check = staticmethod(compile_check)
    custom_grads = staticmethod(custom_grads)
    trainer = staticmethod(trainer)


BACKEND: Backend = TorchBackend()
