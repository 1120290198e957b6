"""TensorFlow export targets: SavedModel, LiteRT (TFLiteConverter) and ONNX (tf2onnx).

All three start from one serving function with a static input signature named after the
spec's inputs, in the layout the Keras model takes (channels-last for image inputs).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import tensorflow as tf

from probes.errors import brief
from probes.frameworks.artifacts import load_artifact
from probes.frameworks.exported import Exported, Run, timed
from probes.frameworks.runtimes import tool_version
from probes.frameworks.tf import build as build_tf
from probes.frameworks.tf.backend import _feed, _listed
from probes.settings import cpu_budget
from probes.spec import SpecGraph
from probes.weights import NeutralWeights

ONNX_OPSET = 17
Exporter = Callable[["Serving", Path], Exported]


class Serving:
    """The Keras model behind a tf.function with a static, named input signature."""

    def __init__(self, model: keras.Model, arrays: list[np.ndarray], names: list[str]) -> None:
        self.model, self.arrays, self.names = model, arrays, names
        self.signature = [
            tf.TensorSpec(a.shape, tf.as_dtype(a.dtype), name=n)
            for a, n in zip(arrays, names, strict=True)
        ]
        self.fn = tf.function(self._call, input_signature=self.signature)

    def _call(self, *xs: Any) -> list[Any]:
        return _listed(self.model(list(xs) if len(xs) > 1 else xs[0], training=False))

    def load(self, target: str, path: Path) -> tuple[tuple[Run, str], float]:
        """The artifact's runner over this model's inputs, and the load time."""
        return timed(
            lambda: load_artifact("tensorflow", target, path, self.arrays, self.names, cpu_budget())
        )

    def save(self, path: Path) -> None:
        """Keras's ExportArchive: it tracks the variables so converters can freeze them
        (a bare tf.Module leaves READ_VARIABLE ops that LiteRT cannot run)."""
        archive = keras.export.ExportArchive()
        archive.track(self.model)
        archive.add_endpoint(name="serve", fn=self._call, input_signature=self.signature)
        archive.write_out(str(path), verbose=False)


def _native(s: Serving, d: Path) -> Exported:
    path = d / "saved_model"
    _, export_s = timed(lambda: s.save(path))
    (run, runtime), load_s = s.load("native", path)
    tool = f"tf.saved_model.save {tf.__version__}"
    return Exported(tool, runtime, path, export_s, load_s, run, [])


def _litert(s: Serving, d: Path) -> Exported:
    """Builtin LiteRT ops first; Select TF ops (Flex) only as a fallback, and said so.

    A Flex model needs the Flex delegate in the runtime; when it cannot run here, the
    failure names both steps, so what the model needs is not lost behind the runtime's
    error."""
    sm, path = d / "saved_model_for_litert", d / "model.tflite"
    t0 = time.perf_counter()
    s.save(sm)
    notes: list[str] = []
    try:
        blob = tf.lite.TFLiteConverter.from_saved_model(str(sm)).convert()
    except Exception as builtin_error:
        builtin = f"builtin-only conversion failed with {brief(builtin_error)}"
        conv = tf.lite.TFLiteConverter.from_saved_model(str(sm))
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS,
            tf.lite.OpsSet.SELECT_TF_OPS,
        ]
        try:
            blob = conv.convert()
        except Exception as flex_error:
            raise RuntimeError(
                f"{builtin}; with Select TF ops (Flex) too: {brief(flex_error)}"
            ) from flex_error
        notes.append(f"needs Select TF ops (Flex delegate, a larger runtime): {builtin}")
    path.write_bytes(blob)
    export_s = time.perf_counter() - t0
    try:
        (run, runtime), load_s = s.load("litert", path)
    except Exception as e:
        if not notes:
            raise
        raise RuntimeError(f"{notes[0]}; the Flex model does not run here: {brief(e)}") from e
    tool = f"tf.lite.TFLiteConverter {tf.__version__}"
    return Exported(tool, runtime, path, export_s, load_s, run, notes)


def _onnx(s: Serving, d: Path) -> Exported:
    version = tool_version("tf2onnx")
    import tf2onnx

    path = d / "model.onnx"

    def make() -> None:
        tf2onnx.convert.from_function(
            s.fn, input_signature=s.signature, opset=ONNX_OPSET, output_path=str(path)
        )

    _, export_s = timed(make)
    (run, runtime), load_s = s.load("onnx", path)
    tool = f"tf2onnx.convert.from_function {version} (opset {ONNX_OPSET})"
    return Exported(tool, runtime, path, export_s, load_s, run, [])


EXPORTERS: dict[str, Exporter] = {
    "native": _native,
    "onnx": _onnx,
    "litert": _litert,
}


def export(
    target: str, graph: SpecGraph, weights: NeutralWeights, arrays: list[np.ndarray], d: Path
) -> tuple[list[np.ndarray], Exported]:
    """Reference outputs of the Keras model (its own layout) and the artifact's runner."""
    built = build_tf.build(graph, weights)
    fed = _feed(built, graph, arrays)
    serving = Serving(built.model, fed, [i.name for i in graph.spec.inputs])
    reference = [np.asarray(o) for o in serving.fn(*[tf.constant(a) for a in fed])]
    exp = EXPORTERS[target](serving, d)
    exp.feed, exp.names = serving.arrays, serving.names
    return reference, exp
