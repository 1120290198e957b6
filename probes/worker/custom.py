"""Worker side of the custom-op probe (see probes/checks/custom_ops.py).

Every mode builds the same model with the same weights and inputs; only the custom
nodes change: built-in ops (``autodiff``, the baseline), built-ins with the declared
gradient (``explicit``), or an opaque kernel (``opaque``). Timing is eager in both
frameworks: that is where a kernel the framework cannot see costs the most directly.
"""

from __future__ import annotations

from probes.errors import AdvisorError, brief
from probes.frameworks import Backend
from probes.frameworks.facts import facts
from probes.measure.timing import measure
from probes.payloads import CustomOpData, ModeCost
from probes.protocol import CustomOpWorkload, ProbeRequest, ProbeResult, TrainWorkload
from probes.settings import FrameworkSettings
from probes.spec import SpecGraph, build_graph
from probes.spec.custom_grad import check_graph_grads, custom_programs
from probes.spec.ops_custom import CustomMode, with_custom_mode
from probes.weights import init_weights, make_inputs, make_targets


def _mode_cost(
    req: ProbeRequest,
    backend: Backend,
    mode: CustomMode,
    eager: FrameworkSettings,
) -> ModeCost:
    w = req.workload
    assert isinstance(w, CustomOpWorkload) and req.spec is not None
    g = build_graph(with_custom_mode(req.spec, mode))
    weights = init_weights(g, req.seed)
    arrays = list(make_inputs(g, w.batch, req.seed).values())
    cost = ModeCost(mode=mode)
    try:
        cost.infer = measure(backend.infer_step(g, weights, arrays, eager, req.device), req.measure)
    except Exception as e:
        cost.infer_reason = brief(e)
    targets = list(make_targets(g, w.batch, req.seed).values())
    train = TrainWorkload(batch=w.batch)
    try:
        step = backend.train_step_fn(g, weights, arrays, targets, train, eager, req.device)
        cost.train = measure(step, req.measure)
    except Exception as e:
        cost.train_reason = brief(e)
    cost.compile = backend.compile_check(g, weights, arrays, w.compile)
    return cost


def run_custom_op(req: ProbeRequest, backend: Backend, graph: SpecGraph) -> ProbeResult:
    w = req.workload
    assert isinstance(w, CustomOpWorkload)
    programs = custom_programs(graph)
    if not programs:
        raise AdvisorError("the model has no custom op node")
    with_grad = any(p.grads is not None for p in programs.values())
    modes: list[CustomMode] = (
        ["autodiff", "explicit", "opaque"] if with_grad else ["autodiff", "opaque"]
    )
    eager: FrameworkSettings = facts(req.framework).eager_settings()
    costs = [_mode_cost(req, backend, m, eager) for m in modes]
    grads = check_graph_grads(graph, backend.custom_grads, req.framework, seed=req.seed)
    data = CustomOpData(nodes=list(programs), batch=w.batch, modes=costs, grads=grads)
    return ProbeResult(status="ok", framework=req.framework, data=data)
