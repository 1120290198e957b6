"""Keras 3 config graph -> neutral spec + weights, one converter per layer class.

Keras tensors are channels-last. Each Keras value is an ``Act`` whose ``perm`` says how
it maps onto the spec tensor, so image inputs become channels-first spec inputs and a
conv stack needs no transposes; ``Flatten`` and friends see Keras's own axis order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from probes.errors import ImportRefusedError, UnsupportedOpsError
from probes.importers import keras_layers, keras_norms, keras_rnn  # noqa: F401  (converters)
from probes.importers.context import Act, Ctx, Unsupported
from probes.importers.keras_file import KerasArchive, read_keras
from probes.importers.keras_layers import KERAS, KLayer, cl_perm
from probes.importers.onnx_file import MAX_ELEMENTS
from probes.importers.onnx_import import Imported
from probes.importers.simplify import simplify
from probes.spec.ops_base import TensorInfo

_NESTED = (
    "a model used as a layer (nested model) is not read: build the model flat, with the "
    "inner model's layers called directly"
)
#: layer classes refused on purpose, with the reason shown to the user (docs/import.md)
REFUSED = {
    "TimeDistributed": "wrapper layers are not read",
    "Functional": _NESTED,
    "Sequential": _NESTED,
    "Model": _NESTED,
}


def snake(name: str) -> str:
    """Keras's own ``to_snake_case``: how the weights file names each layer's group."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _check_layer(raw: dict[str, Any]) -> tuple[str, str]:
    cls, name = str(raw.get("class_name")), str(raw.get("config", {}).get("name", "?"))
    module = str(raw.get("module") or "")
    if cls == "Lambda":
        raise ImportRefusedError(
            f"layer '{name}' is a Lambda: it holds Python code, which is never run; "
            "rewrite it with standard layers"
        )
    nested = cls in ("Functional", "Sequential", "Model") and module.startswith("keras")
    if not nested and (raw.get("registered_name") or (module and not module.startswith("keras"))):
        raise ImportRefusedError(
            f"layer '{name}' is a custom object ({raw.get('registered_name') or module}."
            f"{cls}); custom code is never imported"
        )
    return cls, name


def _layers(config: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    kind = config.get("class_name")
    if kind not in ("Sequential", "Functional", "Model"):
        raise ImportRefusedError(
            f"top-level object is '{kind}': only Sequential and functional models are read"
        )
    layers = config.get("config", {}).get("layers")
    if not isinstance(layers, list) or not layers:
        raise ImportRefusedError("config.json lists no layers")
    return str(kind), layers


def layer_arrays(archive: KerasArchive, path: str | None) -> list[np.ndarray]:
    """A layer's weight arrays: its own, its RNN cell's, or (Bidirectional) the forward
    cell's then the backward cell's."""
    w = archive.weights
    own = w.get(path or "") or w.get(f"{path}/cell", [])
    if own:
        return list(own)
    return [*w.get(f"{path}/forward_layer/cell", []), *w.get(f"{path}/backward_layer/cell", [])]


def _weight_paths(kind: str, layers: list[dict[str, Any]]) -> list[str | None]:
    """``layers/<snake class>[_n]`` per layer, in model.layers order (Keras 3 saving)."""
    used: dict[str, int] = {}
    out: list[str | None] = []
    for raw in layers:
        if kind == "Sequential" and raw.get("class_name") == "InputLayer":
            out.append(None)
            continue
        base = snake(str(raw.get("class_name")))
        n = used.get(base, 0)
        used[base] = n + 1
        out.append(f"layers/{base}" + (f"_{n}" if n else ""))
    return out


def _input(ctx: Ctx, name: str, raw: dict[str, Any], inputs: list[dict[str, Any]]) -> Act:
    cfg = raw.get("config", {})
    shape = cfg.get("batch_shape") or [None, *cfg.get("batch_input_shape", [None])[1:]]
    dims = list(shape[1:])
    if not dims or any(not isinstance(d, int) or d <= 0 for d in dims):
        raise ImportRefusedError(f"input '{name}' has dynamic dimensions {dims} besides the batch")
    if int(np.prod(dims)) > MAX_ELEMENTS:
        raise ImportRefusedError(f"input '{name}' has per-sample shape {dims}: too many elements")
    dtype = "int64" if "int" in str(cfg.get("dtype", "float32")) else "float32"
    ref = ctx.unique(name)
    image = len(dims) == 3 and dtype == "float32"
    spec_shape = (dims[-1], *dims[:-1]) if image else tuple(dims)
    ctx.tensors[ref] = TensorInfo(tuple(spec_shape), dtype)
    inputs.append({"name": ref, "shape": list(spec_shape), "dtype": dtype})
    return Act(ref, tuple(spec_shape), dtype, cl_perm(3) if image else None)


def _history(arg: Any) -> list[str]:
    """Layer names feeding one call, from Keras 3 ``inbound_nodes`` args."""
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        return [str(arg["config"]["keras_history"][0])]
    if isinstance(arg, list):
        return [n for a in arg for n in _history(a)]
    return []


def _sources(raw: dict[str, Any], previous: str | None) -> list[str]:
    nodes = raw.get("inbound_nodes")
    if nodes is None:  # Sequential: the previous layer
        return [previous] if previous else []
    if len(nodes) != 1:
        raise Unsupported(f"layer called {len(nodes)} times (shared layers)")
    return _history(nodes[0].get("args", []))


def _outputs(config: dict[str, Any], kind: str, last: str) -> list[str]:
    if kind == "Sequential":
        return [last]
    outs = config["config"].get("output_layers", [])
    if outs and isinstance(outs[0], str):
        outs = [outs]
    return [str(o[0]) for o in outs]


def convert_keras(archive: KerasArchive, name: str) -> Imported:
    kind, layers = _layers(archive.config)
    checked = [_check_layer(raw) for raw in layers]
    unknown = [
        (c, n, REFUSED.get(c, "not a supported Keras layer"))
        for c, n in checked
        if c not in KERAS and c != "InputLayer"
    ]
    if unknown:
        raise UnsupportedOpsError(unknown)
    ctx = Ctx(batch=1)
    inputs: list[dict[str, Any]] = []
    values: dict[str, Act] = {}
    failed: list[tuple[str, str, str]] = []
    previous: str | None = None
    for raw, (cls, lname), path in zip(layers, checked, _weight_paths(kind, layers), strict=True):
        try:
            if cls == "InputLayer":
                values[lname] = _input(ctx, lname, raw, inputs)
            else:
                srcs = _sources(raw, previous)
                if kind == "Sequential" and not srcs:
                    values["__input__"] = _input(ctx, "input", _seq_input(raw), inputs)
                    srcs = ["__input__"]
                if any(s not in values for s in srcs):
                    previous = lname
                    continue  # an upstream layer already failed
                ctx.node_name = lname
                arrays = layer_arrays(archive, path)
                layer = KLayer(cls, lname, raw.get("config", {}), arrays)
                values[lname] = KERAS[cls](ctx, layer, [values[s] for s in srcs])
        except Unsupported as e:
            failed.append((cls, lname, e.why))
        previous = lname
    if failed:
        raise UnsupportedOpsError(failed)
    outputs = [ctx.canonical(values[o]).ref for o in _outputs(archive.config, kind, previous or "")]
    spec = {
        "name": re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "imported",
        "description": "imported from Keras (.keras)",
        "task": "classification",
        "inputs": inputs,
        "nodes": ctx.nodes,
        "outputs": outputs,
    }
    for i in inputs:
        if i["dtype"] == "int64":
            i["max_value"] = ctx.input_max.get(i["name"], 2)
    extra: dict[str, Any] = {"format": "keras", "static_batch": None, "input_dtypes": []}
    return simplify(Imported(spec, ctx.weights, ctx.tensors, extra))


def _seq_input(first: dict[str, Any]) -> dict[str, Any]:
    shape = first.get("build_config", {}).get("input_shape")
    if not shape:
        raise Unsupported("a Sequential model without an input shape")
    return {"config": {"batch_shape": shape, "dtype": "float32"}}


def import_keras(path: Path) -> Imported:
    return convert_keras(read_keras(path), path.stem)
