"""Three-way parity on import: ONNX Runtime on the original file, the torch build and the
Keras build, all on the same inputs, compared pairwise with today's tolerance rule.

The parent imports no framework: each side runs in its own worker process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from probes.checks.parity import RTOL, compare
from probes.payloads import ArrayDiff, ForwardData
from probes.protocol import FRAMEWORKS, ForwardWorkload, ProbeRequest
from probes.runners.base import ProbeRunner
from probes.spec import ModelSpec, build_graph
from probes.weights import load_npz, make_inputs, save_npz

SIDES = ("reference", "torch", "tensorflow")


class ThreeWayReport(BaseModel):
    model: str
    source: str
    batch: int
    passed: bool
    compared: list[ArrayDiff]
    failures: dict[str, str] = {}
    max_rel_diff: float | None = None
    wall_s: float


def _run(cmd: list[str], out: Path, timeout_s: float) -> list[np.ndarray] | str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", *cmd],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return f"did not finish within {timeout_s:g} s"
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        return lines[-1][:300] if lines else f"exit status {done.returncode}"
    with np.load(out) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


def _reference(
    source: Path, arrays: list[np.ndarray], dtypes: list[str], names: list[str], tmp: Path
) -> list[np.ndarray] | str:
    """The original model's outputs: ONNX Runtime on the file (``probes.worker.artifact``)
    or the original Keras graph (``probes.worker.keras_ref``), each in a fresh process."""
    inp, out = tmp / "reference_in.npz", tmp / "reference_out.npz"
    if source.suffix == ".keras":
        np.savez(inp, *arrays)
        return _run(["probes.worker.keras_ref", str(inp), str(out), str(source)], out, 600)
    kinds = dtypes or [""] * len(arrays)
    np.savez(inp, *[a.astype(d) if d else a for a, d in zip(arrays, kinds, strict=True)])
    req = {"framework": "torch", "target": "onnx", "path": str(source), "inputs": str(inp),
           "names": names, "threads": 1, "out": str(out)}  # fmt: skip
    (tmp / "reference.json").write_text(json.dumps(req))
    return _run(["probes.worker.artifact", str(tmp / "reference.json")], out, 600)


def three_way_parity(
    spec: ModelSpec,
    source: Path,
    runner: ProbeRunner,
    *,
    batch: int = 2,
    seed: int = 0,
    input_dtypes: list[str] | None = None,
    rtol: float = RTOL,
) -> ThreeWayReport:
    """Compare ONNX Runtime (original file), torch and Keras builds of an imported spec."""
    start = time.perf_counter()
    graph = build_graph(spec)
    inputs = make_inputs(graph, batch, seed)
    names = [i.name for i in spec.inputs]
    outs: dict[str, list[np.ndarray]] = {}
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="fwadvisor-import-parity-") as tmp:
        save_npz(Path(tmp) / "inputs.npz", inputs)
        reqs = [
            ProbeRequest(spec=spec, framework=fw, workload=ForwardWorkload(), seed=seed, io_dir=tmp)
            for fw in FRAMEWORKS
        ]
        arrays = [inputs[n] for n in names]
        with ThreadPoolExecutor(max_workers=3) as pool:
            ref = pool.submit(_reference, source, arrays, input_dtypes or [], names, Path(tmp))
            results = list(pool.map(runner.run, reqs))
            got = ref.result()
        ref_name = "keras (original graph)" if source.suffix == ".keras" else "onnxruntime"
        if isinstance(got, str):
            failures[ref_name] = got
        else:
            outs["reference"] = got
        for r in results:
            if r.status != "ok":
                failures[r.framework] = f"{r.status}: {r.reason}"
                continue
            if not isinstance(r.data, ForwardData):
                failures[r.framework] = "the worker returned no forward outputs"
                continue
            data = load_npz(Path(tmp) / r.data.outputs_file)
            outs[r.framework] = [data[o] for o in spec.outputs]
    compared = []
    for i, a in enumerate(SIDES):
        for b in SIDES[i + 1 :]:
            if a in outs and b in outs:
                for k, (x, y) in enumerate(zip(outs[a], outs[b], strict=False)):
                    label = f"{a.replace('reference', ref_name)} vs {b}: {spec.outputs[k]}"
                    compared.append(compare(label, x.astype(np.float32), y, rtol))
    worst = max((c.max_abs_diff / max(1.0, c.max_abs_value) for c in compared), default=None)
    return ThreeWayReport(
        model=spec.name,
        source=source.name,
        batch=batch,
        passed=not failures and len(compared) > 0 and all(c.passed for c in compared),
        compared=compared,
        failures=failures,
        max_rel_diff=worst,
        wall_s=time.perf_counter() - start,
    )
