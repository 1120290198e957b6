"""Probes as Ray tasks: scale a zoo run over a cluster with an existing engine.

Each probe is a task that needs one unit of the custom resource ``probe_slot``; start
every node with ``ray start --resources='{"probe_slot": 1}'`` so that at most one probe
runs per node and measurements never share a machine. ``num_gpus`` requests GPUs for
CUDA probes (``fwadvisor zoo --device cuda`` asks for one per task; a cluster without a
GPU answers ``unsupported`` at once instead of queueing the task forever). A probe that
outlives its timeout is cancelled with ``force=True``, which kills the worker process,
so the node's ``probe_slot`` is free again. On the node, the task runs the same
``SubprocessRunner`` as the local executor (its own process group, time and memory
limits). Probe inputs travel as files in the request's ``io_dir``: the data directory
must be on storage every node mounts.
Ray is optional: ``pip install framework-advisor[ray]``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from probes.protocol import ProbeRequest, ProbeResult
from probes.runners.local import SubprocessRunner

RESOURCE = "probe_slot"


def _run_probe(request_json: str, timeout_s: float, memory_mb: int | None) -> str:
    runner = SubprocessRunner(timeout_s=timeout_s, memory_mb=memory_mb)
    return runner.run(ProbeRequest.model_validate_json(request_json)).model_dump_json()


class RayRunner:
    """A ``ProbeRunner`` that sends each probe to the cluster and waits for it."""

    def __init__(
        self,
        address: str | None = None,
        timeout_s: float = 600.0,
        memory_mb: int | None = None,
        num_gpus: float = 0,
        ray_module: Any = None,
    ) -> None:
        """``ray_module`` replaces ``import ray`` (tests check the options without Ray)."""
        if ray_module is None:
            import ray as ray_module
        ray = ray_module
        if not ray.is_initialized():
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:  # a local instance with one probe slot: one probe at a time
                ray.init(resources={RESOURCE: 1}, include_dashboard=False, log_to_driver=False)
        self.ray = ray
        self.timeout_s, self.memory_mb, self.num_gpus = timeout_s, memory_mb, num_gpus
        self.options = task_options(num_gpus)
        self.task: Any = ray.remote(_run_probe).options(**self.options)

    def _no_gpu(self) -> str | None:
        if not self.num_gpus:
            return None
        have = float(self.ray.cluster_resources().get("GPU", 0))
        if have >= self.num_gpus:
            return None
        return f"num_gpus={self.num_gpus:g} requested but the Ray cluster has {have:g} GPUs"

    def run(self, request: ProbeRequest) -> ProbeResult:
        no_gpu = self._no_gpu()
        if no_gpu:
            return ProbeResult(status="unsupported", framework=request.framework, reason=no_gpu)
        timeout = min(self.timeout_s, request.limits.timeout_s)
        ref = self.task.remote(request.model_dump_json(), timeout, self.memory_mb)
        try:
            out: str = self.ray.get(ref, timeout=timeout + 120)
        except Exception as e:  # a lost node or task becomes a failed probe, with why
            # a task still running holds its node's probe_slot: kill it (a task that
            # already ended, or whose node is gone, holds nothing: ignore the error)
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
            timed_out = type(e).__name__ == "GetTimeoutError"
            return ProbeResult(
                status="timeout" if timed_out else "crashed",
                framework=request.framework,
                reason=(
                    f"ray task: no result within {timeout + 120:g} s; cancelled (force)"
                    if timed_out
                    else f"ray task: {e}"[:2000]
                ),
            )
        return ProbeResult.model_validate_json(out)


def task_options(num_gpus: float = 0) -> dict[str, Any]:
    """How each probe task is scheduled: one ``probe_slot`` (one probe per node), the
    GPUs it needs, no CPU reservation (the slot already owns the node), no retry (a
    retried probe would measure twice)."""
    return {"resources": {RESOURCE: 1}, "num_gpus": num_gpus, "num_cpus": 0, "max_retries": 0}
