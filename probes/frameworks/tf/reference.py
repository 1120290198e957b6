"""The original Keras layer graph of a ``.keras`` file, rebuilt from standard layers.

Each layer is built from its whitelisted class and only plain values of its config
(numbers, lists of ints, strings from a fixed set): initializers, regularizers,
constraints and dtype policies are dropped, so no deserializer ever sees the file.
The weights come from our own reader. Never ``keras.models.load_model``.
Imported only inside the reference worker process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from probes.importers.keras_file import read_keras
from probes.importers.keras_import import _history, _layers, _weight_paths, layer_arrays
from probes.importers.keras_layers import KERAS

SKIP = ("initializer", "regularizer", "constraint", "dtype", "quantization")
SAFE_STRINGS = {
    "relu", "sigmoid", "tanh", "gelu", "silu", "swish", "relu6", "hard_swish", "hard_silu",
    "softmax", "linear", "elu", "leaky_relu", "softplus", "exponential",
    "valid", "same", "channels_last", "nearest",
}  # fmt: skip


def _plain(cfg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        if any(s in k for s in SKIP) or k in ("trainable", "batch_shape", "seed"):
            continue
        ok = v is None or isinstance(v, bool | int | float)
        ok = ok or (isinstance(v, str) and (v in SAFE_STRINGS or k == "name"))
        ok = ok or (isinstance(v, list) and all(isinstance(x, int) for x in v))
        if ok:
            out[k] = v
    return out


def build(path: Path) -> tuple[Any, list[bool]]:
    archive = read_keras(path)
    kind, layers = _layers(archive.config)
    values: dict[str, Any] = {}
    inputs: list[Any] = []
    previous: str | None = None
    for raw, wpath in zip(layers, _weight_paths(kind, layers), strict=True):
        cls, cfg = raw["class_name"], raw.get("config", {})
        name = str(cfg.get("name"))
        if cls == "InputLayer" or (kind == "Sequential" and previous is None):
            shape = (cfg.get("batch_shape") or raw.get("build_config", {}).get("input_shape"))[1:]
            dtype = "int32" if "int" in str(cfg.get("dtype", "float32")) else "float32"
            t = keras.Input(tuple(shape), dtype=dtype)
            inputs.append(t)
            values[name if cls == "InputLayer" else "__input__"] = t
            previous = name if cls == "InputLayer" else "__input__"
            if cls == "InputLayer":
                continue
        if cls not in KERAS:  # the importer refused it already; never trust the name
            raise SystemExit(f"layer class {cls!r} is not one we rebuild")
        layer = (
            _bidirectional(cfg)
            if cls == "Bidirectional"
            else getattr(keras.layers, cls)(**_plain(cfg))
        )
        nodes = raw.get("inbound_nodes")
        srcs = _history(nodes[0].get("args", [])) if nodes else [str(previous)]
        args = [values[s] for s in srcs]
        values[name] = layer(args if cls in MERGE else args[0])
        arrays = layer_arrays(archive, wpath)
        if arrays:
            layer.set_weights(arrays)
        previous = name
    outs = archive.config["config"].get("output_layers") if kind != "Sequential" else [[previous]]
    if outs and isinstance(outs[0], str):
        outs = [outs]
    model = keras.Model(inputs, [values[str(o[0])] for o in outs])
    return model, [len(t.shape) == 4 and t.dtype == "float32" for t in inputs]


def _bidirectional(cfg: dict[str, Any]) -> Any:
    """The wrapper around a fresh LSTM/GRU (the importer checked the inner class)."""
    inner = cfg["layer"]
    if inner.get("class_name") not in ("LSTM", "GRU"):
        raise SystemExit("Bidirectional around a layer we do not rebuild")
    core = getattr(keras.layers, inner["class_name"])(**_plain(inner.get("config", {})))
    return keras.layers.Bidirectional(core, merge_mode="concat", name=str(cfg.get("name")))


MERGE = {"Add", "Multiply", "Subtract", "Average", "Maximum", "Minimum", "Concatenate"}
