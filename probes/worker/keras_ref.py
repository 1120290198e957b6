"""The reference side of a ``.keras`` import's parity: Keras runs the original layer graph.

``python -m probes.worker.keras_ref IN.npz OUT.npz MODEL.keras`` rebuilds the model from
config.json with standard Keras layers only, built from plain values of their config
(numbers, strings from a fixed set, lists of ints), loads the weights read by our own
reader and runs it once. Never ``keras.models.load_model``; nothing from the file runs.
Image inputs arrive channels-first (as the spec has them) and are moved channels-last.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

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
    import keras

    from probes.importers.keras_file import read_keras
    from probes.importers.keras_import import _history, _layers, _weight_paths
    from probes.importers.keras_layers import KERAS

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
        layer = getattr(keras.layers, cls)(**_plain(cfg))
        nodes = raw.get("inbound_nodes")
        srcs = _history(nodes[0].get("args", [])) if nodes else [str(previous)]
        args = [values[s] for s in srcs]
        values[name] = layer(args if cls in MERGE else args[0])
        arrays = archive.weights.get(wpath or "") or archive.weights.get(f"{wpath}/cell", [])
        if arrays:
            layer.set_weights(arrays)
        previous = name
    outs = archive.config["config"].get("output_layers") if kind != "Sequential" else [[previous]]
    if outs and isinstance(outs[0], str):
        outs = [outs]
    model = keras.Model(inputs, [values[str(o[0])] for o in outs])
    return model, [len(t.shape) == 4 and t.dtype == "float32" for t in inputs]


MERGE = {"Add", "Multiply", "Subtract", "Average", "Maximum", "Minimum", "Concatenate"}


def main(argv: list[str]) -> int:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    model, images = build(Path(argv[2]))
    with np.load(argv[0]) as z:
        arrays = [z[f"arr_{i}"] for i in range(len(z.files))]
    feed = [np.moveaxis(a, 1, -1) if img else a for a, img in zip(arrays, images, strict=True)]
    outs = model(feed if len(feed) > 1 else feed[0], training=False)
    outs = outs if isinstance(outs, list | tuple) else [outs]
    np.savez(argv[1], *[np.asarray(o) for o in outs])
    return 0


def run_keras_reference(
    source: Path, arrays: list[np.ndarray], work_dir: Path, timeout_s: float = 300.0
) -> list[np.ndarray] | str:
    """The original Keras graph's outputs from a fresh process, or why it did not run."""
    inp, out = work_dir / "keras_ref_in.npz", work_dir / "keras_ref_out.npz"
    np.savez(inp, *arrays)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "probes.worker.keras_ref", str(inp), str(out), str(source)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return f"did not finish within {timeout_s:g} s"
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        return lines[-1][:300] if lines else f"exit status {done.returncode}"
    with np.load(out) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
