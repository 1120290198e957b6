"""Custom-op probe: what a model's ``custom`` nodes cost and what they allow.

Per framework, in one worker (``CustomOpWorkload``): eager inference and training-step
time in each mode against the built-in baseline, whether the model compiles
(torch.compile graph breaks; tf.function and XLA) and a numerical gradient check of every
custom node. From the parent: the export probes in the baseline and opaque modes, and,
where an opaque kernel breaks an export that the built-ins pass, what that target needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, Field

from probes.errors import AdvisorError
from probes.export.checks import ExportReport, check_exports
from probes.measure.timing import MeasureConfig, Timing
from probes.payloads import CustomOpData
from probes.probe import Prober
from probes.protocol import (
    FRAMEWORKS,
    CustomOpWorkload,
    ExportTarget,
    Framework,
)
from probes.spec import ModelSpec, build_graph
from probes.spec.ops_custom import CustomMode, with_custom_mode

EXPORT_MODES: tuple[CustomMode, ...] = ("autodiff", "opaque")

#: What an export target needs once the op is a kernel the framework cannot see.
NEEDS: dict[tuple[Framework, ExportTarget], str] = {
    ("torch", "native"): "the op's registration (torch.library) importable wherever the "
    "ExportedProgram is loaded",
    ("torch", "onnx"): "an ONNX translation of the op in a custom domain "
    "(torch.onnx.export custom_translation_table) and an ONNX Runtime custom-op library",
    ("torch", "litert"): "a LiteRT custom op: a C++ kernel registered with the interpreter",
    ("torch", "aot"): "a C++ kernel registered with TORCH_LIBRARY, so the AOTInductor "
    "package can call it without Python",
    ("torch", "executorch"): "a custom ExecuTorch kernel (C++) compiled into the runtime",
    ("tensorflow", "native"): "a compiled TensorFlow op (C++ custom op, tf.load_op_library): "
    "SavedModel cannot serialise a py_function/numpy_function body",
    ("tensorflow", "litert"): "a LiteRT custom op (C++ kernel); Select TF ops (Flex) cannot "
    "run a Python function either",
    ("tensorflow", "onnx"): "a tf2onnx custom-op handler mapping it to an ONNX custom domain, "
    "plus an ONNX Runtime custom-op library",
}


class FrameworkCustomOps(BaseModel):
    framework: Framework
    status: str
    reason: str | None = None
    data: CustomOpData | None = None

    def ratio(self, mode: str, what: str = "infer") -> float | None:
        """Median time in ``mode`` over the built-in (autodiff) baseline."""
        if self.data is None:
            return None
        by: dict[str, Timing | None] = {m.mode: getattr(m, what) for m in self.data.modes}
        base, other = by.get("autodiff"), by.get(mode)
        return other.median_s / base.median_s if base and other else None


class ExportNeed(BaseModel):
    framework: Framework
    target: ExportTarget
    needs: str
    error: str | None


class CustomOpReport(BaseModel):
    model: str
    nodes: list[str]
    batch: int
    frameworks: list[FrameworkCustomOps]
    exports: dict[str, ExportReport] = Field(description="By mode: autodiff, opaque.")
    needs: list[ExportNeed]
    wall_s: float


def _needs(exports: dict[str, ExportReport]) -> list[ExportNeed]:
    base, opaque = exports.get("autodiff"), exports.get("opaque")
    if base is None or opaque is None:
        return []
    out = []
    for c in opaque.checks:
        b = base.cell(c.framework, c.target)
        if c.status == "failed" and b is not None and b.status == "verified":
            need = NEEDS.get((c.framework, c.target), "a native implementation of the op")
            out.append(
                ExportNeed(framework=c.framework, target=c.target, needs=need, error=c.reason)
            )
    return out


def custom_op_report(
    spec: ModelSpec,
    prober: Prober,
    *,
    frameworks: tuple[Framework, ...] = FRAMEWORKS,
    batch: int = 8,
    compile: bool = True,
    targets: list[ExportTarget] | None = None,
    export_measure: MeasureConfig | None = None,
    progress: Callable[[str], None] | None = None,
    export_timeout_s: float | None = None,
) -> CustomOpReport:
    start = time.perf_counter()
    nodes = [n.id for n in build_graph(spec).nodes if n.op == "custom"]
    if not nodes:
        raise AdvisorError(f"{spec.name} has no custom op node; see docs/spec.md 'The custom op'")
    say = progress or (lambda _: None)
    results = []
    for fw in frameworks:
        say(f"{fw}: eager cost, compile and gradient check per mode")
        r = prober.probe(spec, fw, CustomOpWorkload(batch=batch, compile=compile))
        data = r.payload(CustomOpData) if r.status == "ok" else None
        results.append(
            FrameworkCustomOps(framework=fw, status=r.status, reason=r.reason, data=data)
        )
    exports: dict[str, ExportReport] = {}
    if targets:
        for mode in EXPORT_MODES:

            def tell(what: str, mode: str = mode) -> None:
                say(f"export ({mode}) {what}")

            exports[mode] = check_exports(
                with_custom_mode(spec, mode),
                prober,
                targets=targets,
                frameworks=frameworks,
                measure=export_measure,
                progress=tell,
                timeout_s=export_timeout_s,
            )
    return CustomOpReport(
        model=spec.name,
        nodes=nodes,
        batch=batch,
        frameworks=results,
        exports=exports,
        needs=_needs(exports),
        wall_s=time.perf_counter() - start,
    )
