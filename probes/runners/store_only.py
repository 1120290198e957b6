"""A runner that runs nothing, for answers from the results store alone."""

from __future__ import annotations

from dataclasses import dataclass

from probes.protocol import ProbeRequest, ProbeResult, Status


@dataclass(frozen=True)
class StoreOnlyRunner:
    """Runs nothing, so only the results store answers. Cached mode: a question not in
    the store stays unanswered; the zoo's ``--report-only`` makes it a failure with its
    own reason."""

    status: Status = "unsupported"
    reason: str = "not in the results store; run `fwadvisor recommend --mode measure` once"

    def run(self, request: ProbeRequest) -> ProbeResult:
        return ProbeResult(status=self.status, framework=request.framework, reason=self.reason)
