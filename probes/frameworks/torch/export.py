"""PyTorch export targets: torch.export, ONNX (dynamo), LiteRT, AOTInductor, ExecuTorch.

Each target converts the eval-mode model with a static batch, loads the artifact in its
own runtime and returns a runner over the probe inputs. The worker compares and times.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from probes.frameworks.artifacts import load_artifact, torch_outputs
from probes.frameworks.exported import Exported, Run, timed
from probes.frameworks.runtimes import tool_version
from probes.frameworks.torch import build as build_torch
from probes.settings import cpu_budget
from probes.spec import SpecGraph
from probes.weights import NeutralWeights

Exporter = Callable[[Any, tuple[torch.Tensor, ...], Path, list[str]], Exported]


def _loaded(
    target: str, path: Path, xs: tuple[torch.Tensor, ...], names: list[str]
) -> tuple[tuple[Run, str], float]:
    arrays = [x.numpy() for x in xs]
    return timed(lambda: load_artifact("torch", target, path, arrays, names, cpu_budget()))


def _native(model: Any, xs: tuple[torch.Tensor, ...], d: Path, names: list[str]) -> Exported:
    path = d / "model.pt2"

    def make() -> None:
        torch.export.save(torch.export.export(model, xs), str(path))

    _, export_s = timed(make)
    (run, runtime), load_s = _loaded("native", path, xs, names)
    tool = f"torch.export {torch.__version__}"
    return Exported(tool, runtime, path, export_s, load_s, run, [])


def _onnx(model: Any, xs: tuple[torch.Tensor, ...], d: Path, names: list[str]) -> Exported:
    tool_version("onnxscript")
    path = d / "model.onnx"

    def make() -> None:
        prog = torch.onnx.export(model, xs, dynamo=True, verbose=False, input_names=names)
        assert prog is not None
        prog.save(str(path))

    _, export_s = timed(make)
    (run, runtime), load_s = _loaded("onnx", path, xs, names)
    tool = f"torch.onnx.export(dynamo=True) {torch.__version__} + onnxscript"
    return Exported(tool, runtime, path, export_s, load_s, run, [])


def _litert(model: Any, xs: tuple[torch.Tensor, ...], d: Path, names: list[str]) -> Exported:
    version = tool_version("litert-torch")
    import litert_torch

    path = d / "model.tflite"
    _, export_s = timed(lambda: litert_torch.convert(model, xs).export(str(path)))
    (run, runtime), load_s = _loaded("litert", path, xs, names)
    return Exported(f"litert-torch {version}", runtime, path, export_s, load_s, run, [])


def _aot(model: Any, xs: tuple[torch.Tensor, ...], d: Path, names: list[str]) -> Exported:
    path = d / "model_aoti.pt2"

    def make() -> None:
        ep = torch.export.export(model, xs)
        torch._inductor.aoti_compile_and_package(ep, package_path=str(path))

    _, export_s = timed(make)
    (run, runtime), load_s = _loaded("aot", path, xs, names)
    tool = f"AOTInductor (torch._inductor.aoti_compile_and_package) {torch.__version__}"
    notes = ["compiled C++/OpenMP kernels for this CPU; loadable from C++ without Python"]
    return Exported(tool, runtime, path, export_s, load_s, run, notes)


def _executorch(model: Any, xs: tuple[torch.Tensor, ...], d: Path, names: list[str]) -> Exported:
    version = tool_version("executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    path = d / "model.pte"

    def make() -> None:
        ep = torch.export.export(model, xs)
        lowered = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
        path.write_bytes(lowered.to_executorch().buffer)

    _, export_s = timed(make)
    (run, runtime), load_s = _loaded("executorch", path, xs, names)
    notes = ["XNNPACK delegate, the CPU backend ExecuTorch uses on Android and iOS"]
    return Exported(f"executorch {version}", runtime, path, export_s, load_s, run, notes)


EXPORTERS: dict[str, Exporter] = {
    "native": _native,
    "onnx": _onnx,
    "litert": _litert,
    "aot": _aot,
    "executorch": _executorch,
}


def export(
    target: str, graph: SpecGraph, weights: NeutralWeights, arrays: list[np.ndarray], d: Path
) -> tuple[list[np.ndarray], Exported]:
    """Reference outputs of the eval-mode model, and the exported artifact's runner."""
    model = build_torch.build(graph, weights).eval()
    xs = tuple(torch.from_numpy(a) for a in arrays)
    with torch.inference_mode():
        reference = torch_outputs(model(*xs))
    names = [i.name for i in graph.spec.inputs]
    exp = EXPORTERS[target](model, xs, d, names)
    exp.feed, exp.names = list(arrays), names
    return reference, exp
