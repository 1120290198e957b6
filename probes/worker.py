"""Probe worker: ``python -m probes.worker`` reads one ProbeRequest (JSON) on stdin and
writes one ProbeResult (JSON) on stdout. Logs go to stderr. Imports exactly one framework.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

from probes.errors import AdvisorError
from probes.protocol import ProbeRequest, ProbeResult
from probes.spec import build_graph
from probes.weights import flatten_weights, init_weights, load_npz, save_npz, trainable_names


def _run(req: ProbeRequest) -> dict[str, object]:
    graph = build_graph(req.spec)
    weights = init_weights(graph, req.seed)
    if req.framework == "torch":
        from probes.frameworks import torch_backend as backend
    else:
        from probes.frameworks import tf_backend as backend  # type: ignore[no-redef]
    backend.configure(req.threads)
    io = Path(req.io_dir)
    arrays = load_npz(io / "inputs.npz")
    inputs = [arrays[i.name] for i in req.spec.inputs]
    if req.workload.kind == "forward":
        outputs = backend.forward(graph, weights, inputs)
        named = dict(zip(req.spec.outputs, outputs, strict=True))
        save_npz(io / f"outputs_{req.framework}.npz", named)
        return {"outputs_file": f"outputs_{req.framework}.npz"}
    targets = [arrays[f"target__{o}"] for o in req.spec.outputs]
    loss, updated = backend.train_step(
        graph, weights, inputs, targets, req.workload, trainable_names(graph)
    )
    save_npz(io / f"weights_{req.framework}.npz", flatten_weights(updated))
    return {"loss": loss, "weights_file": f"weights_{req.framework}.npz"}


def main() -> int:
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
        result = ProbeResult(status="ok", framework=req.framework, data=_run(req))
    except AdvisorError as e:
        result = ProbeResult(status="failed", framework=req.framework, reason=e.message)
    except NotImplementedError as e:
        result = ProbeResult(status="unsupported", framework=req.framework, reason=str(e))
    except Exception as e:
        traceback.print_exc()
        result = ProbeResult(
            status="failed", framework=req.framework, reason=f"{type(e).__name__}: {e}"
        )
    result.wall_s = time.perf_counter() - start
    with contextlib.suppress(BrokenPipeError):
        out.write(json.dumps(result.model_dump(mode="json")) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
