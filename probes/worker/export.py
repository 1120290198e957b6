"""Worker side of the export probe: export, reload, compare with the source, time.

Runs inside ``python -m probes.worker.probe`` after the framework is imported and configured.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from pathlib import Path

import numpy as np

from probes.checks.parity import compare
from probes.errors import UnsupportedError
from probes.export.checks import NO_ROUTE
from probes.frameworks.exported import Exported, size_bytes
from probes.frameworks.facts import facts
from probes.measure.timing import first_call, measure
from probes.payloads import ExportData
from probes.protocol import ExportWorkload, ProbeRequest, ProbeResult
from probes.settings import cpu_budget
from probes.spec import SpecGraph
from probes.weights import init_weights, make_inputs
from probes.worker.artifact import run_standalone


def opaque_nodes(graph: SpecGraph) -> list[str]:
    return [n.id for n in graph.nodes if n.op == "custom" and n.params.opaque]


def _standalone(
    req: ProbeRequest, graph: SpecGraph, exp: Exported, reference: list[np.ndarray], tmp: Path
) -> str | None:
    """None if the artifact also runs, with the same outputs, in a process without the
    opaque kernels' Python definitions (as it would where it is deployed); else why not.

    In this process ``torch.export.load`` finds the op that ``torch.library`` registered
    here, so an in-process reload says nothing about a deployment."""
    assert isinstance(req.workload, ExportWorkload)
    target = req.workload.target
    out = run_standalone(req.framework, target, exp.path, exp.feed, exp.names, cpu_budget(), tmp)
    nodes = ", ".join(opaque_nodes(graph))
    if isinstance(out, str):
        return f"the artifact does not run without the Python kernel of {nodes}: {out}"
    names = graph.spec.outputs
    diffs = [compare(n, r, o) for n, r, o in zip(names, reference, out, strict=False)]
    if len(out) != len(reference) or not all(d.passed for d in diffs):
        return f"the artifact's outputs differ when it runs without the kernel of {nodes}"
    exp.notes.append(f"also ran in a fresh process without the Python kernel of {nodes}")
    return None


def run_export(req: ProbeRequest, graph: SpecGraph) -> ProbeResult:
    w = req.workload
    assert isinstance(w, ExportWorkload)
    if (req.framework, w.target) in NO_ROUTE:
        raise UnsupportedError(NO_ROUTE[req.framework, w.target])
    module = importlib.import_module(facts(req.framework).export_module)
    weights = init_weights(graph, req.seed)
    arrays = list(make_inputs(graph, w.batch, req.seed).values())
    with tempfile.TemporaryDirectory(prefix=f"fwadvisor-export-{w.target}-") as tmp:
        reference, exp = module.export(w.target, graph, weights, arrays, Path(tmp))
        size = size_bytes(exp.path)
        outputs: list[object] = []
        first_s = first_call(lambda: outputs.append(exp.run()))
        got = outputs[0]
        assert isinstance(got, list)
        diffs = [
            compare(name, ref, out)
            for name, ref, out in zip(graph.spec.outputs, reference, got, strict=False)
        ]
        mismatch = len(got) != len(reference)
        passed = not mismatch and all(d.passed for d in diffs)
        standalone = None
        if passed and opaque_nodes(graph):
            standalone = _standalone(req, graph, exp, reference, Path(tmp))
            passed = standalone is None
        timing = measure(exp.run, req.measure, first_s) if passed else None
        if w.keep_dir:
            dest = Path(w.keep_dir) / f"{req.framework}-{w.target}-{exp.path.name}"
            copy = shutil.copytree if exp.path.is_dir() else shutil.copy2
            copy(exp.path, dest)
    data = ExportData(
        target=w.target,
        tool=exp.tool,
        runtime=exp.runtime,
        artifact=exp.path.name,
        size_bytes=size,
        export_s=exp.export_s,
        load_s=exp.load_s,
        batch=w.batch,
        max_abs_diff=max((d.max_abs_diff for d in diffs), default=None),
        tolerance=min((d.tolerance for d in diffs), default=None),
        outputs=diffs,
        latency=timing,
        notes=exp.notes,
    )
    reason = None
    if standalone is not None:
        reason = standalone
    elif mismatch:
        reason = f"artifact returns {len(got)} outputs, the source model {len(reference)}"
    elif not passed:
        worst = max(diffs, key=lambda d: d.max_abs_diff)
        reason = (
            f"artifact output '{worst.name}' differs from the source model by "
            f"{worst.max_abs_diff:.3g} (tolerance {worst.tolerance:.3g})"
        )
    return ProbeResult(
        status="ok" if passed else "failed",
        framework=req.framework,
        reason=reason,
        data=data,
    )
