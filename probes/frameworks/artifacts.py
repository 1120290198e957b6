"""Load an export artifact in its runtime and return a runner over numpy inputs.

One loader per (framework, target), used in two places:
- the export worker, right after the conversion (``probes/frameworks/*_export.py``);
- ``python -m probes.worker.artifact``, a fresh process holding nothing but the runtime:
  no builder, no spec, no custom-op registration. Where the model has an opaque custom
  kernel, only that process shows whether the artifact runs where it is deployed
  (``torch.export.load`` in the process that registered the op always finds it).

Each framework is imported only by the branch that needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from probes.frameworks.runtimes import litert_runner, onnx_runner, tool_version

Run = Callable[[], list[np.ndarray]]


def torch_outputs(out: Any) -> list[np.ndarray]:
    outs = out if isinstance(out, tuple | list) else (out,)
    return [o.detach().cpu().numpy() for o in outs]


def torch_runner(fn: Callable[..., Any], arrays: list[np.ndarray]) -> Run:
    import torch

    xs = tuple(torch.from_numpy(a) for a in arrays)

    def run() -> list[np.ndarray]:
        with torch.inference_mode():
            return torch_outputs(fn(*xs))

    return run


def _torch(target: str, path: Path, arrays: list[np.ndarray]) -> tuple[Run, str]:
    import torch

    if target == "native":
        return torch_runner(torch.export.load(str(path)).module(), arrays), (
            "ExportedProgram.module()"
        )
    if target == "aot":
        return torch_runner(torch._inductor.aoti_load_package(str(path)), arrays), (
            "aoti_load_package"
        )
    if target == "executorch":
        from executorch.runtime import Runtime

        method = Runtime.get().load_program(path).load_method("forward")
        inputs = [torch.from_numpy(a) for a in arrays]

        def run() -> list[np.ndarray]:
            return torch_outputs(tuple(method.execute(inputs)))

        return run, f"executorch.runtime {tool_version('executorch')}"
    raise ValueError(f"no torch loader for target '{target}'")


def _saved_model(path: Path, arrays: list[np.ndarray]) -> tuple[Run, str]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    fed = [tf.constant(a) for a in arrays]

    def run() -> list[np.ndarray]:
        return [np.asarray(o) for o in loaded.serve(*fed)]

    return run, "tf.saved_model.load"


def prepare_runtime(framework: str, threads: int) -> None:
    """Import what the artifact's runtime needs up front (so its loggers exist before the
    caller hooks them) and give torch the thread budget; nothing to do for TensorFlow."""
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)


def load_artifact(
    framework: str,
    target: str,
    path: Path,
    arrays: list[np.ndarray],
    names: list[str],
    threads: int,
) -> tuple[Run, str]:
    """A runner over ``arrays`` (in the layout the artifact takes) and the runtime's name."""
    if target == "onnx":
        return onnx_runner(path, arrays, threads)
    if target == "litert":
        return litert_runner(path, arrays, names, threads)
    if framework == "torch":
        return _torch(target, path, arrays)
    if framework == "tensorflow" and target == "native":
        return _saved_model(path, arrays)
    raise ValueError(f"no loader for {framework} {target}")
