"""One seeded, framework-neutral set of weights, loaded into both frameworks.

Neutral conventions (PyTorch-like): dense (out, in); conv (out, in/groups, *k);
LSTM gates i,f,g,o with one bias; GRU gates r,z,n with input and recurrent biases;
attention w_q/w_k/w_v/w_o as (out, in). Each node draws from its own stream
(seed, crc32(node id)), so adding a node never changes another node's weights.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np

from probes.errors import SpecFileError
from probes.spec import SpecGraph, WeightDef

NeutralWeights = dict[str, dict[str, np.ndarray]]


def _draw(rng: np.random.Generator, w: WeightDef) -> np.ndarray:
    if w.init == "he":
        bound = np.sqrt(6.0 / w.fan_in)
        arr = rng.uniform(-bound, bound, w.shape)
    elif w.init == "uniform":
        bound = 1.0 / np.sqrt(w.fan_in)
        arr = rng.uniform(-bound, bound, w.shape)
    elif w.init == "ones_ish":
        arr = rng.uniform(0.8, 1.2, w.shape)
    elif w.init in ("zeros_ish", "mean"):
        arr = rng.uniform(-0.1, 0.1, w.shape)
    elif w.init == "var":
        arr = rng.uniform(0.5, 1.5, w.shape)
    else:  # normal
        arr = rng.standard_normal(w.shape)
    return arr.astype(np.float32)


def init_weights(graph: SpecGraph, seed: int = 0) -> NeutralWeights:
    """The spec's imported weights when it names a file, else deterministic seeded ones."""
    if graph.spec.weights is not None:
        return load_spec_weights(graph)
    out: NeutralWeights = {}
    for n in graph.nodes:
        defs = n.impl.weights(n.params, graph.inputs_of(n))
        if not defs:
            continue
        rng = np.random.default_rng([seed, zlib.crc32(n.id.encode())])
        out[n.id] = {name: _draw(rng, w) for name, w in defs.items()}
    return out


def trainable_names(graph: SpecGraph) -> dict[str, list[str]]:
    return {
        n.id: [k for k, w in n.impl.weights(n.params, graph.inputs_of(n)).items() if w.trainable]
        for n in graph.nodes
    }


def flatten_weights(weights: NeutralWeights) -> dict[str, np.ndarray]:
    """``{node: {name: arr}}`` -> ``{"node/name": arr}`` for npz files."""
    return {f"{node}/{name}": arr for node, ws in weights.items() for name, arr in ws.items()}


def unflatten_weights(flat: dict[str, np.ndarray]) -> NeutralWeights:
    out: NeutralWeights = {}
    for key, arr in flat.items():
        node, name = key.split("/", 1)
        out.setdefault(node, {})[name] = arr
    return out


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub misreads **kwargs


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def make_inputs(graph: SpecGraph, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs in the neutral layout; int64 inputs in [0, max_value)."""
    rng = np.random.default_rng([seed, 0x1A7])
    arrays: dict[str, np.ndarray] = {}
    for inp in graph.spec.inputs:
        shape = (batch, *inp.shape)
        if inp.dtype == "int64":
            arrays[inp.name] = rng.integers(0, inp.max_value or 2, shape, dtype=np.int64)
        else:
            arrays[inp.name] = rng.standard_normal(shape).astype(np.float32)
    return arrays


def make_targets(graph: SpecGraph, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random regression targets for every output (neutral layout), for the training step
    of parity, timing and the custom-op probe; the parent and the workers draw the same."""
    rng = np.random.default_rng([seed, 0x7A6])
    return {
        out: rng.standard_normal((batch, *graph.tensors[out].shape)).astype(np.float32)
        for out in graph.spec.outputs
    }


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_safetensors(path: Path, weights: NeutralWeights) -> str:
    """Write ``{node: {name: arr}}`` as safetensors (keys ``node/name``); returns its sha256."""
    from safetensors.numpy import save_file  # only importers and workers need it

    flat = {k: np.ascontiguousarray(v) for k, v in flatten_weights(weights).items()}
    save_file(flat, str(path), metadata={"format": "fwadvisor-neutral-v1"})
    return file_sha256(path)


def load_spec_weights(graph: SpecGraph) -> NeutralWeights:
    """Read the spec's safetensors file and check it against every node's weight shapes."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    ref = graph.spec.weights
    assert ref is not None
    path = Path(ref.file)
    try:
        if file_sha256(path) != ref.sha256:
            raise SpecFileError(f"{path}: weights file does not match its sha256 in the spec")
        flat = load_file(str(path))
    except (OSError, SafetensorError) as e:
        raise SpecFileError(f"{path}: cannot read weights ({e})") from None
    weights = unflatten_weights(flat)
    for n in graph.nodes:
        defs = n.impl.weights(n.params, graph.inputs_of(n))
        got = weights.get(n.id, {})
        for name, d in defs.items():
            arr = got.get(name)
            if arr is None or tuple(arr.shape) != d.shape:
                found = "missing" if arr is None else f"shape {list(arr.shape)}"
                raise SpecFileError(
                    f"{path}: node '{n.id}' weight '{name}' expected shape {list(d.shape)}, "
                    f"found {found}"
                )
            got[name] = arr.astype(np.float32, copy=False)
    return {n: ws for n, ws in weights.items() if n in {g.id for g in graph.nodes}}
