"""Probes as Ray tasks: scale a zoo run over a cluster with an existing engine.

Each probe is a task that needs one unit of the custom resource ``probe_slot``; start
every node with ``ray start --resources='{"probe_slot": 1}'`` so that at most one probe
runs per node and measurements never share a machine. ``num_gpus`` requests GPUs for
CUDA probes. On the node, the task runs the same ``SubprocessRunner`` as the local
executor (its own process group, time and memory limits). Probe inputs travel as files
in the request's ``io_dir``: the data directory must be on storage every node mounts.
Ray is optional: ``pip install framework-advisor[ray]``.
"""

from __future__ import annotations

from typing import Any

from probes.protocol import ProbeRequest, ProbeResult
from probes.runner import SubprocessRunner

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
    ) -> None:
        import ray

        if not ray.is_initialized():
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:  # a local instance with one probe slot: one probe at a time
                ray.init(resources={RESOURCE: 1}, include_dashboard=False, log_to_driver=False)
        self.ray = ray
        self.timeout_s, self.memory_mb = timeout_s, memory_mb
        self.task: Any = ray.remote(_run_probe).options(
            resources={RESOURCE: 1}, num_gpus=num_gpus, num_cpus=0, max_retries=0
        )

    def run(self, request: ProbeRequest) -> ProbeResult:
        timeout = min(self.timeout_s, request.limits.timeout_s)
        ref = self.task.remote(request.model_dump_json(), timeout, self.memory_mb)
        try:
            out: str = self.ray.get(ref, timeout=timeout + 120)
        except Exception as e:  # a lost node or task becomes a failed probe, with why
            return ProbeResult(
                status="crashed", framework=request.framework, reason=f"ray task: {e}"[:2000]
            )
        return ProbeResult.model_validate_json(out)
