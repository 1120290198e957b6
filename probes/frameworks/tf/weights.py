"""Neutral <-> Keras weight conversion (see docs/spec.md, "Weights: one set for both").

Imported only inside probe worker processes.
"""

from __future__ import annotations

import keras
import numpy as np

from probes.spec import GraphNode, SpecGraph
from probes.weights import NeutralWeights


def _is_depthwise(node: GraphNode, c_in: int) -> bool:
    return bool(node.op in ("conv1d", "conv2d") and node.params.groups == c_in > 1)


GRU_PERM = [1, 0, 2]  # PyTorch r,z,n <-> Keras z,r,n (its own inverse)


def _gru_rows(a: np.ndarray) -> np.ndarray:
    return np.concatenate([np.split(a, 3, axis=0)[i] for i in GRU_PERM], axis=0)


def _conv_to_keras(node: GraphNode, c_in: int, k: np.ndarray) -> np.ndarray:
    if _is_depthwise(node, c_in):
        m = k.shape[0] // c_in
        k = k.reshape(c_in, m, *k.shape[2:])
        return k.transpose(2, 3, 0, 1) if k.ndim == 4 else k.transpose(2, 0, 1)
    return k.transpose(*range(2, k.ndim), 1, 0)


def _rnn_to_keras(node: GraphNode, w: dict[str, np.ndarray]) -> list[np.ndarray]:
    out = []
    for d in ("", "_reverse") if node.params.bidirectional else ("",):
        if node.op == "lstm":
            out += [w[f"w_ih{d}"].T, w[f"w_hh{d}"].T, w[f"b{d}"]]
        else:
            out += [
                _gru_rows(w[f"w_ih{d}"]).T,
                _gru_rows(w[f"w_hh{d}"]).T,
                np.stack([_gru_rows(w[f"b_ih{d}"]), _gru_rows(w[f"b_hh{d}"])]),
            ]
    return out


def _attention_to_keras(node: GraphNode, w: dict[str, np.ndarray]) -> list[np.ndarray]:
    e, h = w["w_q"].shape[0], node.params.num_heads
    out = []
    for n in "qkv":
        out += [w[f"w_{n}"].T.reshape(e, h, e // h), w[f"b_{n}"].reshape(h, e // h)]
    return [*out, w["w_o"].T.reshape(h, e // h, e), w["b_o"]]


#: ops whose Keras weights are the neutral arrays themselves, in this order
NAMED: dict[str, tuple[str, ...]] = {
    "batch_norm": ("gamma", "beta", "running_mean", "running_var"),
    "layer_norm": ("gamma", "beta"),
    "group_norm": ("gamma", "beta"),
    "instance_norm": ("gamma", "beta"),
    "prelu": ("alpha",),
    "embedding": ("weight",),
    "position_embedding": ("weight",),
    "class_token": ("weight",),
}


def _to_keras(node: GraphNode, c_in: int, w: dict[str, np.ndarray]) -> list[np.ndarray]:
    op = node.op
    bias = [w["bias"]] if "bias" in w else []
    if op == "dense":
        return [w["weight"].T, *bias]
    if op in ("conv1d", "conv2d"):
        return [_conv_to_keras(node, c_in, w["weight"]), *bias]
    if op == "affine":
        return [w[k] for k in ("scale", "shift") if k in w]
    if op == "conv_transpose2d":  # neutral (in, out, kh, kw) -> Keras (kh, kw, out, in)
        return [w["weight"].transpose(2, 3, 1, 0), *([w["bias"]] if "bias" in w else [])]
    if op in NAMED:
        return [w[k] for k in NAMED[op]]
    if op in ("lstm", "gru"):
        return _rnn_to_keras(node, w)
    if op == "self_attention":
        return _attention_to_keras(node, w)
    raise NotImplementedError(op)


def _conv_from_keras(node: GraphNode, c_in: int, k: np.ndarray) -> np.ndarray:
    if _is_depthwise(node, c_in):
        k = k.transpose(2, 3, 0, 1) if k.ndim == 4 else k.transpose(1, 2, 0)
        return k.reshape(-1, 1, *k.shape[2:])
    return k.transpose(k.ndim - 1, k.ndim - 2, *range(k.ndim - 2))


def _rnn_from_keras(node: GraphNode, v: list[np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    dirs = ("", "_reverse") if node.params.bidirectional else ("",)
    for i, d in enumerate(dirs):
        k, r, b = v[3 * i : 3 * i + 3]
        if node.op == "lstm":
            out.update({f"w_ih{d}": k.T, f"w_hh{d}": r.T, f"b{d}": b})
        else:
            out.update(
                {
                    f"w_ih{d}": _gru_rows(k.T),
                    f"w_hh{d}": _gru_rows(r.T),
                    f"b_ih{d}": _gru_rows(b[0]),
                    f"b_hh{d}": _gru_rows(b[1]),
                }
            )
    return out


def _attention_from_keras(v: list[np.ndarray]) -> dict[str, np.ndarray]:
    e = v[0].shape[0]
    out = {}
    for i, n in enumerate("qkv"):
        out[f"w_{n}"] = v[2 * i].reshape(e, e).T
        out[f"b_{n}"] = v[2 * i + 1].reshape(e)
    return {**out, "w_o": v[6].reshape(e, e).T, "b_o": v[7]}


def _from_keras(node: GraphNode, c_in: int, v: list[np.ndarray]) -> dict[str, np.ndarray]:
    op = node.op
    bias = {"bias": v[1]} if len(v) > 1 else {}
    if op == "dense":
        return {"weight": v[0].T, **bias}
    if op in ("conv1d", "conv2d"):
        return {"weight": _conv_from_keras(node, c_in, v[0]), **bias}
    if op == "affine":
        names = [k for k in ("scale", "shift") if getattr(node.params, k)]
        return dict(zip(names, v, strict=True))
    if op == "conv_transpose2d":
        return {"weight": v[0].transpose(3, 2, 0, 1), **({"bias": v[1]} if len(v) > 1 else {})}
    if op in NAMED:
        return dict(zip(NAMED[op], v, strict=True))
    if op in ("lstm", "gru"):
        return _rnn_from_keras(node, v)
    if op == "self_attention":
        return _attention_from_keras(v)
    raise NotImplementedError(op)


def load_weights(
    cores: dict[str, keras.layers.Layer], graph: SpecGraph, weights: NeutralWeights
) -> None:
    for node in graph.nodes:
        if node.id in weights:
            c_in = graph.tensors[node.inputs[0]].shape[0]
            arrays = [np.ascontiguousarray(a) for a in _to_keras(node, c_in, weights[node.id])]
            cores[node.id].set_weights(arrays)


def dump_weights(
    cores: dict[str, keras.layers.Layer],
    graph: SpecGraph,
    names: dict[str, list[str]] | None = None,
) -> NeutralWeights:
    out: NeutralWeights = {}
    for node in graph.nodes:
        if node.id not in cores:
            continue
        c_in = graph.tensors[node.inputs[0]].shape[0]
        full = _from_keras(node, c_in, cores[node.id].get_weights())
        keep = names.get(node.id, []) if names is not None else list(full)
        if keep:
            out[node.id] = {k: np.ascontiguousarray(full[k]) for k in keep}
    return out
