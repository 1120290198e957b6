"""The seam between asking a probe question and running it: `ProbeRunner`.

Implementations: `probes.runners.warm.WarmRunner` (warm workers for timing probes, the
default), `probes.runners.local.SubprocessRunner` (a fresh worker process),
`probes.runners.ray.RayRunner` (a Ray task) and
`probes.runners.store_only.StoreOnlyRunner` (runs nothing). Every runner returns a
`ProbeResult` and never raises for a probe that failed.
"""

from __future__ import annotations

from typing import Protocol

from probes.protocol import ProbeRequest, ProbeResult


class ProbeRunner(Protocol):
    def run(self, request: ProbeRequest) -> ProbeResult: ...
