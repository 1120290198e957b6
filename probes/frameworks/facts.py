"""One table of per-framework facts, importable anywhere (it imports no framework).

Everything that differs between PyTorch and TensorFlow outside the framework packages
themselves is looked up here: the worker modules, the settings class and its defaults,
the label, the export targets with a route, the tuning knobs, and the CLI aliases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from probes.errors import AdvisorError
from probes.protocol import FRAMEWORKS, ExportTarget, Framework, ProbeRequest
from probes.settings import TFSettings, TorchSettings
from probes.spec import SpecGraph

#: Knobs a framework adds to the shared ones (threads, precision): graph, workload, device.
SpaceKnobs = Callable[[SpecGraph, str, str], dict[str, list[Any]]]


def _torch_knobs(graph: SpecGraph, workload: str, device: str) -> dict[str, list[Any]]:
    modes = ["default", "max-autotune-no-cudagraphs"]
    knobs: dict[str, list[Any]] = {
        "mode": ["eager", "compile"],
        "compile_mode": [*modes, "reduce-overhead"] if device == "cuda" else modes,
    }
    if any(n.op == "conv2d" for n in graph.nodes):
        knobs["channels_last"] = [False, True]
    if workload == "infer":
        knobs["inference_mode"] = [True, False]
    return knobs


def _tf_knobs(graph: SpecGraph, workload: str, device: str) -> dict[str, list[Any]]:
    knobs: dict[str, list[Any]] = {"mode": ["eager", "function", "xla"]}
    if device == "cpu":
        knobs["onednn"] = [True, False]
    return knobs


@dataclass(frozen=True)
class FrameworkFacts:
    name: Framework
    label: str
    #: Imported only inside probe workers: the backend (parity, timing) and exporters.
    backend_module: str
    export_module: str
    settings_cls: type[TorchSettings] | type[TFSettings]
    export_targets: tuple[ExportTarget, ...]
    space_knobs: SpaceKnobs
    aliases: tuple[str, ...]
    #: The main tuned modes, tried right after the defaults: a small search budget must
    #: not decide the verdict by whether it happened to sample the graph compiler.
    informed: tuple[dict[str, Any], ...] = ()
    #: Modules the framework's graph compiler imports on first use (seconds of import),
    #: and the modes that use it: a warm worker imports them once, ahead of the probes.
    compiler_modules: tuple[str, ...] = ()
    compiled_modes: tuple[str, ...] = ()

    def default_settings(self) -> TorchSettings | TFSettings:
        return self.settings_cls()

    def eager_settings(self) -> TorchSettings | TFSettings:
        return self.settings_cls(mode="eager")


FACTS: dict[Framework, FrameworkFacts] = {
    "torch": FrameworkFacts(
        name="torch",
        label="PyTorch",
        backend_module="probes.frameworks.torch.backend",
        export_module="probes.frameworks.torch.export",
        settings_cls=TorchSettings,
        export_targets=("native", "onnx", "litert", "aot", "executorch"),
        space_knobs=_torch_knobs,
        aliases=("torch", "pytorch", "pt"),
        informed=({"mode": "compile"},),
        # 2.3-3.2 s and about 115 MiB on this CPU; with them imported a first
        # torch.compile call of a Linear takes 0.6 s instead of 2.3 s
        compiler_modules=("torch._dynamo", "torch._inductor.compile_fx"),
        compiled_modes=("compile",),
    ),
    "tensorflow": FrameworkFacts(
        name="tensorflow",
        label="TensorFlow",
        backend_module="probes.frameworks.tf.backend",
        export_module="probes.frameworks.tf.export",
        settings_cls=TFSettings,
        export_targets=("native", "onnx", "litert"),
        space_knobs=_tf_knobs,
        aliases=("tensorflow", "tf", "keras"),
        informed=({"mode": "xla"},),
    ),
}

BOTH = "both"
_BY_ALIAS = {a: f.name for f in FACTS.values() for a in f.aliases}


def facts(framework: Framework) -> FrameworkFacts:
    return FACTS[framework]


#: Workloads that trace or compile the model whatever its mode: an export, and a
#: custom-op probe (which compiles and exports it).
COMPILING_KINDS = frozenset({"export", "custom_op"})


def uses_compiler(request: ProbeRequest) -> bool:
    """Does this probe import its framework's graph compiler?"""
    f = facts(request.framework)
    mode = request.effective_settings().mode
    return bool(f.compiler_modules) and (
        request.workload.kind in COMPILING_KINDS or mode in f.compiled_modes
    )


def other(framework: Framework) -> Framework:
    """The framework a comparison puts against this one."""
    return next(f for f in FRAMEWORKS if f != framework)


def label(framework: Framework) -> str:
    return FACTS[framework].label


def canonical(name: str) -> Framework:
    """A framework from its name or an alias (``pytorch``, ``pt``, ``tf``, ``keras``)."""
    found = _BY_ALIAS.get(name.strip().lower())
    if found is None:
        known = ", ".join(sorted(_BY_ALIAS))
        raise AdvisorError(f"unknown framework {name!r}; use one of: {known}, or both")
    return found


def expand(choice: str) -> tuple[Framework, ...]:
    """``both`` (or nothing) means every framework; otherwise the one named (aliases ok)."""
    if choice.strip().lower() in (BOTH, ""):
        return FRAMEWORKS
    return (canonical(choice),)


def choice_names() -> list[str]:
    """What a ``--framework`` option accepts, for help texts."""
    return [*sorted(_BY_ALIAS), BOTH]
