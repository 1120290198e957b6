"""Numerical gradient checks for ``custom`` nodes: numpy float64, no framework.

The loss is ``sum(y * upstream)``, so dLoss/dx_i is the vector-Jacobian product a
framework's backward computes. ``numeric_grads`` takes central differences of the numpy
reference forward; ``gradcheck`` compares any number of analytic gradients against them
(the declared grad evaluated in numpy, and whatever a worker computed with torch or TF).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, Field

from probes.spec.graph import SpecGraph
from probes.spec.ops_custom import CustomProgram, compile_custom, numpy_backward, numpy_forward

GradsFn = Callable[[CustomProgram, list[np.ndarray], np.ndarray, str], list[np.ndarray]]


class GradCheckReport(BaseModel):
    name: str
    eps: float
    points: int = Field(description="Coordinates checked per input (at most).")
    scale: float = Field(description="max |numerical gradient| over checked coordinates.")
    tolerance: float = Field(description="rtol * max(1, scale).")
    max_abs_err: dict[str, float] = Field(description="Per source: worst |analytic - numeric|.")
    passed: bool


def custom_programs(graph: SpecGraph) -> dict[str, CustomProgram]:
    """Every custom node of a validated graph, compiled, by node id."""
    return {
        n.id: compile_custom(n.params, graph.inputs_of(n), n.id)
        for n in graph.nodes
        if n.op == "custom"
    }


def sample_arrays(
    prog: CustomProgram, batch: int = 2, seed: int = 0
) -> tuple[list[np.ndarray], np.ndarray]:
    """Standard-normal float64 inputs (batch first, neutral layout) and an upstream grad."""
    rng = np.random.default_rng([seed, 0xC057])
    arrays = [rng.standard_normal((batch, *s)) for s in prog.in_shapes]
    return arrays, rng.standard_normal((batch, *prog.out_shape))


def _loss(prog: CustomProgram, arrays: list[np.ndarray], upstream: np.ndarray) -> float:
    return float(np.sum(numpy_forward(prog, arrays) * upstream))


def numeric_grads(
    prog: CustomProgram,
    arrays: Sequence[np.ndarray],
    upstream: np.ndarray,
    *,
    eps: float = 1e-6,
    points: int = 256,
    seed: int = 0,
) -> list[np.ndarray]:
    """Central differences of ``sum(forward * upstream)`` in float64.

    At most ``points`` random coordinates per input are perturbed; the others are NaN.
    """
    rng = np.random.default_rng([seed, 0x9AD])
    xs = [np.array(a, dtype=np.float64) for a in arrays]
    out = []
    for x in xs:
        grad = np.full(x.shape, np.nan)
        flat, gflat = x.reshape(-1), grad.reshape(-1)
        picked = np.arange(flat.size)
        if flat.size > points:
            picked = rng.choice(flat.size, points, replace=False)
        for j in picked:
            keep = flat[j]
            flat[j] = keep + eps
            up = _loss(prog, xs, upstream)
            flat[j] = keep - eps
            down = _loss(prog, xs, upstream)
            flat[j] = keep
            gflat[j] = (up - down) / (2 * eps)
        out.append(grad)
    return out


def gradcheck(
    prog: CustomProgram,
    arrays: Sequence[np.ndarray],
    upstream: np.ndarray,
    analytic: Mapping[str, Sequence[np.ndarray]] | None = None,
    *,
    eps: float = 1e-6,
    points: int = 256,
    rtol: float = 1e-4,
    seed: int = 0,
) -> GradCheckReport:
    """Compare analytic gradients (by source name) with numerical ones.

    The declared grad, evaluated in numpy float64, is always a source ("declared") when
    the program has one. Passes if every source is within rtol * max(1, max|numeric|).
    """
    sources = {k: list(v) for k, v in (analytic or {}).items()}
    if prog.grads is not None:
        y = numpy_forward(prog, arrays)
        sources.setdefault("declared", numpy_backward(prog, arrays, y, upstream))
    numeric = numeric_grads(prog, arrays, upstream, eps=eps, points=points, seed=seed)
    checked = [~np.isnan(n) for n in numeric]
    scale = max(
        (float(np.abs(n[m]).max(initial=0.0)) for n, m in zip(numeric, checked, strict=True)),
        default=0.0,
    )
    errors: dict[str, float] = {}
    for name, grads in sources.items():
        worst = 0.0
        for g, n, m in zip(grads, numeric, checked, strict=True):
            g64 = np.asarray(g, dtype=np.float64)
            if g64.shape != n.shape:
                worst = float("inf")
                break
            worst = max(worst, float(np.abs(g64[m] - n[m]).max(initial=0.0)))
        errors[name] = worst
    tol = rtol * max(1.0, scale)
    return GradCheckReport(
        name=prog.name,
        eps=eps,
        points=points,
        scale=scale,
        tolerance=tol,
        max_abs_err=errors,
        passed=bool(errors) and all(np.isfinite(e) and e <= tol for e in errors.values()),
    )


def check_graph_grads(
    graph: SpecGraph,
    grads_fn: GradsFn,
    prefix: str,
    *,
    batch: int = 2,
    seed: int = 0,
    rtol: float = 1e-4,
) -> dict[str, GradCheckReport]:
    """Gradient-check every custom node of ``graph`` inside a worker.

    ``grads_fn(prog, arrays, upstream, mode)`` is a framework's gradient, e.g.
    ``probes.frameworks.torch.custom.custom_grads``. Sources: ``{prefix}_autodiff`` always, plus
    ``{prefix}_explicit``, ``{prefix}_opaque`` and ``declared`` (numpy) for nodes with a grad.
    """
    reports = {}
    for node_id, prog in custom_programs(graph).items():
        arrays, upstream = sample_arrays(prog, batch, seed)
        modes = ["autodiff", *(["explicit", "opaque"] if prog.grads is not None else [])]
        sources = {f"{prefix}_{m}": grads_fn(prog, arrays, upstream, m) for m in modes}
        reports[node_id] = gradcheck(prog, arrays, upstream, sources, rtol=rtol, seed=seed)
    return reports
