"""A deterministic fake ProbeRunner for tuning tests: a latency model over settings,
with failures, timeouts and OOMs at known settings."""

from __future__ import annotations

import time

from probes.measure.timing import Timing
from probes.protocol import Measurement, MemoryStats, Phases, ProbeRequest, ProbeResult
from probes.settings import TFSettings, TorchSettings, settings_label


def latency_ms(s: TorchSettings | TFSettings, batch: int, bias: dict[str, float]) -> float:
    base = bias.get(s.framework, 1.0) * (0.4 + 0.6 * batch / 8)
    base *= 1.0 if (s.intra_threads or 2) == 2 else 1.5
    base *= 0.9 if s.inter_threads == 1 else 1.0
    base *= 0.8 if s.precision == "bf16" else 1.0
    if isinstance(s, TorchSettings):
        base *= {"eager": 1.0, "compile": 0.5}[s.mode]
        base *= 0.85 if s.channels_last else 1.0
    else:
        base *= {"eager": 6.0, "function": 1.0, "xla": 0.4}[s.mode]
        base *= 1.0 if s.onednn else 1.1
    return base


def failure(s: TorchSettings | TFSettings) -> tuple[str, str] | None:
    if isinstance(s, TorchSettings) and s.mode == "compile" and s.precision == "bf16":
        return "failed", "InductorError: simulated compile failure"
    if (
        isinstance(s, TorchSettings)
        and s.mode == "eager"
        and s.intra_threads == 1
        and s.precision == "bf16"
    ):
        return "timeout", "no result within 1 s; process group killed"
    if isinstance(s, TFSettings) and s.mode == "xla" and not s.onednn and s.precision == "bf16":
        return "oom", "process group RSS 900 MiB exceeded the 512 MiB limit"
    return None


class FakeRunner:
    def __init__(self, bias: dict[str, float] | None = None, sleep_s: float = 0.0) -> None:
        self.bias = bias or {}
        self.sleep_s = sleep_s
        self.calls: list[ProbeRequest] = []

    def run(self, request: ProbeRequest) -> ProbeResult:
        self.calls.append(request)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        s = request.effective_settings()
        fw = request.framework
        if request.workload.kind == "peak":
            phases = Phases(
                spawn_to_main_s=0.1, import_s=1, build_s=0, first_result_s=0.1, total_s=1.2
            )
            m = Measurement(kind="peak", settings_label="-", phases=phases, gflops_per_s=100.0)
            return ProbeResult(status="ok", framework=fw, measurement=m)
        bad = failure(s)
        if bad:
            return ProbeResult.model_validate({"status": bad[0], "framework": fw, "reason": bad[1]})
        batch = getattr(request.workload, "batch", 1)
        med = latency_ms(s, batch, self.bias) / 1e3
        stop = request.measure.stop_above_s
        timing = Timing(
            first_call_s=med * 3,
            warmup_iters=10,
            warmup_stable=True,
            iterations=5 if stop and med > stop else 50,
            median_s=med,
            mean_s=med,
            p90_s=med,
            p99_s=med,
            min_s=med,
            iqr_s=0.0,
            total_s=med * 50,
            noisy=False,
            stopped_early=bool(stop and med > stop),
        )
        compiled = getattr(s, "mode", "") in ("compile", "xla")
        mem = int(50 * 2**20 * batch**0.5 * (3 if compiled else 1))
        m = Measurement(
            kind=request.workload.kind,
            batch=batch,
            settings_label=settings_label(s),
            timing=timing,
            throughput_sps=batch / med,
            phases=Phases(
                spawn_to_main_s=0.1, import_s=1, build_s=0.1, first_result_s=med * 3, total_s=1.3
            ),
            memory=MemoryStats(
                baseline_rss_bytes=0, peak_rss_bytes=mem, maxrss_bytes=mem, weight_bytes=1000
            ),
        )
        return ProbeResult(status="ok", framework=fw, measurement=m)
