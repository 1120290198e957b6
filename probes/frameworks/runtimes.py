"""Artifact runtimes for the export probes: ONNX Runtime and the LiteRT interpreter.

Both run with the same thread budget as the framework under test, so an artifact's
latency is comparable with the source model's. Imported only inside probe workers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

from probes.errors import UnsupportedError

Run = Callable[[], list[np.ndarray]]


def tool_version(dist: str) -> str:
    """Installed version of ``dist``, or UnsupportedError naming how to get it."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        raise UnsupportedError(
            f"{dist} is not installed in this environment (pip install {dist})"
        ) from None


def _natural(name: str) -> tuple[object, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def onnx_runner(path: Path, arrays: list[np.ndarray], threads: int) -> tuple[Run, str]:
    """An ONNX Runtime CPU session over ``path``; inputs bind by position."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    if len(names) != len(arrays):
        raise ValueError(f"ONNX model takes {len(names)} inputs, the spec has {len(arrays)}")
    feed = dict(zip(names, arrays, strict=True))

    def run() -> list[np.ndarray]:
        return [np.asarray(o) for o in sess.run(None, feed)]

    return run, f"onnxruntime {ort.__version__}"


def litert_runner(
    path: Path, arrays: list[np.ndarray], names: list[str], threads: int
) -> tuple[Run, str]:
    """The ai-edge-litert interpreter over ``path``, through its default signature.

    Inputs bind by spec name when the signature uses them (TensorFlow exports), else by
    position in natural order (litert-torch names them ``args_0``, ``args_1``, ...).
    """
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=threads)
    sigs = interp.get_signature_list()
    if not sigs:
        raise ValueError("the LiteRT model has no signature to call")
    key = next(iter(sigs))
    sig_in = list(sigs[key]["inputs"])
    order = names if set(names) <= set(sig_in) else sorted(sig_in, key=_natural)
    if len(order) != len(arrays):
        raise ValueError(f"LiteRT model takes {len(order)} inputs, the spec has {len(arrays)}")
    runner = interp.get_signature_runner(key)
    details = runner.get_input_details()
    # Converters may narrow int64 token ids to int32: follow the declared dtype.
    feed = {
        n: a.astype(details[n]["dtype"], copy=False) for n, a in zip(order, arrays, strict=True)
    }

    def run() -> list[np.ndarray]:
        out = runner(**feed)
        return [np.asarray(out[k]) for k in sorted(out, key=_natural)]

    return run, f"ai-edge-litert {tool_version('ai-edge-litert')}"
