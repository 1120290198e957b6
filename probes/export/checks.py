"""Export probes, parent side: which targets exist, what a check reports, running them.

Each (framework, target) is one worker process, so a converter that crashes, hangs or
runs out of memory fails that cell only. Targets a framework has no route to are
answered here without spawning anything; the reasons live in one table.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from probes.errors import did_you_mean
from probes.measure.timing import MeasureConfig
from probes.payloads import ExportData
from probes.probe import Prober
from probes.protocol import (
    EXPORT_TARGETS,
    FRAMEWORKS,
    ExportTarget,
    ExportWorkload,
    Framework,
    ProbeResult,
)
from probes.spec import ModelSpec

#: "timeout": the export did not finish within its limit, which shows neither that the
#: route works nor that it does not (a capability verdict then stays the matrix's).
ExportStatus = Literal["verified", "failed", "unsupported", "timeout"]
REASON_CHARS = 300
ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: What each target is, per framework: the artifact it produces.
TARGET_TITLES: dict[ExportTarget, str] = {
    "native": "framework graph (torch.export ExportedProgram / TF SavedModel)",
    "onnx": "ONNX, run in ONNX Runtime",
    "litert": "LiteRT (.tflite), run in the ai-edge-litert interpreter",
    "aot": "ahead-of-time compiled package (AOTInductor .pt2)",
    "executorch": "ExecuTorch program (.pte, XNNPACK), run in the ExecuTorch runtime",
    "tfjs": "TensorFlow.js",
}

#: (framework, target) pairs with no route at all, and why. The worker never runs these.
NO_ROUTE: dict[tuple[Framework, ExportTarget], str] = {
    ("torch", "tfjs"): (
        "TensorFlow.js converts TensorFlow models only; a PyTorch model reaches the browser "
        "through ONNX (onnxruntime-web), see the onnx target"
    ),
    ("tensorflow", "aot"): (
        "TensorFlow has no AOTInductor counterpart in its pip wheel: XLA ahead-of-time "
        "compilation (tfcompile) needs a source build; SavedModel serves C++ via the C API"
    ),
    ("tensorflow", "executorch"): (
        "ExecuTorch runs PyTorch programs only; TensorFlow's on-device runtime is LiteRT "
        "(see the litert target)"
    ),
    ("tensorflow", "tfjs"): (
        "not verifiable here: tensorflowjs 4.22 (the latest) requires tensorflow<2.20 and "
        "cannot be installed beside tensorflow-cpu 2.21, and its artifacts need Node or a "
        "browser to run"
    ),
}


class ExportCheck(BaseModel):
    """One cell of the export matrix: target x framework, for one model."""

    framework: Framework
    target: ExportTarget
    status: ExportStatus
    reason: str | None = Field(default=None, description="Condensed; `detail` has it all.")
    detail: str | None = None
    tool: str | None = None
    runtime: str | None = None
    size_bytes: int | None = None
    latency_ms: float | None = Field(default=None, description="Median, in the runtime.")
    max_abs_diff: float | None = None
    export_s: float | None = None
    notes: list[str] = Field(default_factory=list)


class ExportReport(BaseModel):
    model: str
    batch: int
    targets: list[ExportTarget]
    checks: list[ExportCheck]
    from_store: int = 0
    wall_s: float

    def cell(self, framework: str, target: str) -> ExportCheck | None:
        return next(
            (c for c in self.checks if c.framework == framework and c.target == target), None
        )


def parse_targets(text: str) -> list[ExportTarget]:
    """``all`` or a comma list of target names, in canonical order; ValueError if unknown."""
    if text.strip() == "all":
        return list(EXPORT_TARGETS)
    asked = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in asked if t not in EXPORT_TARGETS]
    if unknown or not asked:
        hint = did_you_mean(unknown[0], EXPORT_TARGETS) if unknown else ""
        raise ValueError(
            f"unknown export target(s) {unknown or [text]}{hint} (known: "
            f"{', '.join(EXPORT_TARGETS)}, or 'all')"
        )
    return [t for t in EXPORT_TARGETS if t in asked]


def condense(reason: str | None) -> str | None:
    """The informative line of a converter's error, shortened."""
    if not reason:
        return reason
    plain = ANSI.sub("", reason)
    lines = [ln.strip() for ln in plain.splitlines() if ln.strip()]
    pick = next((ln for ln in lines if "Error" in ln or "error:" in ln), lines[0])
    return pick if len(pick) <= REASON_CHARS else pick[: REASON_CHARS - 3] + "..."


def to_check(framework: Framework, target: ExportTarget, r: ProbeResult) -> ExportCheck:
    data = r.payload(ExportData)
    status: ExportStatus = (
        "verified"
        if r.status == "ok"
        else r.status
        if r.status in ("unsupported", "timeout")
        else "failed"
    )
    reason = r.reason if r.status in ("ok", "failed", "unsupported") else f"{r.status}: {r.reason}"
    check = ExportCheck(
        framework=framework,
        target=target,
        status=status,
        reason=condense(reason),
        detail=reason if reason and condense(reason) != reason else None,
    )
    if data is not None:
        check.tool, check.runtime = data.tool, data.runtime
        check.size_bytes, check.export_s = data.size_bytes, data.export_s
        check.max_abs_diff, check.notes = data.max_abs_diff, data.notes
        check.latency_ms = data.latency.median_s * 1e3 if data.latency else None
    return check


def check_exports(
    spec: ModelSpec,
    prober: Prober,
    *,
    targets: list[ExportTarget] | None = None,
    frameworks: tuple[Framework, ...] = FRAMEWORKS,
    batch: int = 1,
    measure: MeasureConfig | None = None,
    progress: Callable[[str], None] | None = None,
    timeout_s: float | None = None,
) -> ExportReport:
    """Export ``spec`` to every target in both frameworks, one worker each, in sequence
    (so the latency of one artifact never shares the CPU with another's conversion).
    ``timeout_s`` bounds each export below the prober's own limit."""
    limits = prober.limits
    if timeout_s is not None:
        limits = limits.model_copy(update={"timeout_s": min(limits.timeout_s, timeout_s)})
    start, before = time.perf_counter(), prober.from_store
    targets = targets or list(EXPORT_TARGETS)
    checks: list[ExportCheck] = []
    for target in targets:
        for fw in frameworks:
            if (fw, target) in NO_ROUTE:
                why = NO_ROUTE[fw, target]
                cell = ExportCheck(framework=fw, target=target, status="unsupported", reason=why)
                checks.append(cell)
                continue
            workload = ExportWorkload(target=target, batch=batch)
            if progress is not None:
                progress(f"{fw} -> {target}")
            r = prober.probe(spec, fw, workload, measure=measure, limits=limits)
            checks.append(to_check(fw, target, r))
    return ExportReport(
        model=spec.name,
        batch=batch,
        targets=targets,
        checks=checks,
        from_store=prober.from_store - before,
        wall_s=time.perf_counter() - start,
    )
