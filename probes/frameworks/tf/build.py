"""Native Keras 3 (TensorFlow backend) builder, plus neutral <-> Keras weight transfer.

The spec is channels-first; TensorFlow's CPU kernels want channels-last. Each tensor
carries a layout tag: spatial ops (conv, pool, batch norm on images) run channels-last,
layout-free ops (activations, add, ...) keep whatever they get, and everything else
sees the neutral layout. A model input consumed only by spatial ops is declared
channels-last, so the worker transposes the array *before* timing, not inside the graph.
Imported only inside probe worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from probes.frameworks.tf import layers as tl
from probes.frameworks.tf import tensor_ops
from probes.frameworks.tf.weights import load_weights
from probes.spec import GraphNode, SpecGraph, TensorInfo
from probes.spec.ops_core import ACTIVATIONS
from probes.spec.ops_custom import compile_custom
from probes.spec.ops_spatial import axis_paddings, pair, resolve_pads
from probes.weights import NeutralWeights

CL, NEUTRAL = "cl", "neutral"
SPATIAL = {
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "global_avg_pool",
    "global_max_pool",
    "batch_norm",
    "prelu",
    "group_norm",
    "instance_norm",
    "upsample2d",
}
LAYOUT_FREE = {*ACTIVATIONS, "leaky_relu", "dropout", "add", "multiply"}
GLOBAL_POOLS = {
    "global_avg_pool": (keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D),
    "global_max_pool": (keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D),
}


def gelu_erf(x: Any) -> Any:
    """Exact GELU in its erf form. Keras' "gelu" is TF's, which computes it with erfc;
    tf2onnx turns that into ONNX Erfc, which ONNX Runtime has no kernel for, so every
    model with gelu failed its ONNX export. Equal to within float rounding."""
    return 0.5 * x * (1.0 + keras.ops.erf(x * 0.7071067811865476))


KERAS_ACT: dict[str, Any] = {a: a for a in ACTIVATIONS} | {
    "hardswish": "hard_swish",
    "gelu": gelu_erf,
}


@dataclass
class Tensor:
    value: Any
    layout: str
    info: TensorInfo


@dataclass
class KerasBuild:
    model: keras.Model
    cores: dict[str, keras.layers.Layer] = field(default_factory=dict)
    input_layouts: dict[str, str] = field(default_factory=dict)
    output_layouts: list[str] = field(default_factory=list)


def to_cl(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(arr, 1, -1))


def to_neutral(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(arr, -1, 1))


def _relayout(t: Tensor, want: str) -> Tensor:
    r = t.info.rank
    if t.layout == want or r < 2:
        return Tensor(t.value, want if r >= 2 else NEUTRAL, t.info)
    perm = (*range(2, r + 1), 1) if want == CL else (r, *range(1, r))
    return Tensor(keras.layers.Permute(perm)(t.value), want, t.info)


def _wants_cl(node: GraphNode, ins: list[Tensor]) -> bool:
    return node.op in SPATIAL and ins[0].info.rank >= 2


def _keeps_layout(node: GraphNode, ins: list[Tensor]) -> bool:
    """Layout-free ops, concat of channels-last inputs, and custom nodes that are
    elementwise over inputs of one rank sharing one layout. Other custom nodes (with
    reductions or broadcasting across ranks) see the neutral layout."""
    if node.op in LAYOUT_FREE or (node.op == "concat" and ins[0].layout == CL):
        return True
    if node.op != "custom" or len({t.layout for t in ins}) != 1:
        return False
    return compile_custom(node.params, [t.info for t in ins], node.id).layout_free


def _conv(node: GraphNode, x: Tensor) -> tuple[Any, keras.layers.Layer]:
    p, nd = node.params, x.info.rank - 1
    k, s, d = pair(p.kernel, nd), pair(p.stride, nd), pair(p.dilation, nd)
    spatial = x.info.shape[1:]
    modes = axis_paddings(p.padding, nd)
    pads = [resolve_pads(n, k[i], s[i], d[i], modes[i]) for i, n in enumerate(spatial)]
    same = [resolve_pads(n, k[i], s[i], d[i], "same") for i, n in enumerate(spatial)]
    value, padding = x.value, "valid"
    if pads == same and any(a or b for a, b in pads):
        padding = "same"
    elif any(a or b for a, b in pads):
        pad_layer = keras.layers.ZeroPadding2D if nd == 2 else keras.layers.ZeroPadding1D
        value = pad_layer(tuple(pads) if nd == 2 else pads[0], name=f"{node.id}__pad")(value)
    c_in = x.info.shape[0]
    common = dict(strides=s, padding=padding, dilation_rate=d, use_bias=p.bias, name=node.id)
    if p.groups == c_in and p.groups > 1:
        cls = keras.layers.DepthwiseConv2D if nd == 2 else keras.layers.DepthwiseConv1D
        layer = cls(k, depth_multiplier=p.filters // c_in, **common)
    else:
        cls = keras.layers.Conv2D if nd == 2 else keras.layers.Conv1D
        layer = cls(p.filters, k, groups=p.groups, **common)
    return layer(value), layer


def _conv_transpose(node: GraphNode, x: Tensor) -> tuple[Any, keras.layers.Layer]:
    """Full transposed conv (valid, with output_padding), then PyTorch's crop."""
    p = node.params
    k, s = pair(p.kernel, 2), pair(p.stride, 2)
    pad, extra = pair(p.padding, 2), pair(p.output_padding, 2)
    layer = keras.layers.Conv2DTranspose(
        p.filters,
        k,
        strides=s,
        padding="valid",
        output_padding=extra,
        use_bias=p.bias,
        name=node.id,
    )
    value = layer(x.value)
    if any(pad):
        crop = ((pad[0], pad[0]), (pad[1], pad[1]))
        value = keras.layers.Cropping2D(crop, name=f"{node.id}__crop")(value)
    return value, layer


def _merge(node: GraphNode, x: Tensor, vals: list[Any]) -> Any:
    """Ops over several inputs: add, multiply, concat and matmul."""
    if node.op == "matmul":
        return tensor_ops.MatMul(name=node.id)(vals[0], vals[1])
    if node.op == "concat":
        return keras.layers.Concatenate(axis=_axis(node.params.axis, x), name=node.id)(vals)
    layer = keras.layers.Add if node.op == "add" else keras.layers.Multiply
    return layer(name=node.id)(vals)


def _pool(node: GraphNode, x: Tensor) -> Any:
    p = node.params
    k, s = pair(p.kernel, 2), pair(p.stride if p.stride is not None else p.kernel, 2)
    pad = 0 if p.padding == "valid" else p.padding
    value, padding = x.value, "valid"
    if pad:
        hw = x.info.shape[1:]
        same = [resolve_pads(n, k[i], s[i], 1, "same") for i, n in enumerate(hw)]
        if node.op == "max_pool2d" and same == [(pad, pad)] * 2:
            padding = "same"
        elif node.op == "max_pool2d":
            value = tl.ConstantPad([[pad, pad]] * 2, float("-inf"), name=f"{node.id}__pad")(value)
        else:
            value = keras.layers.ZeroPadding2D(pad, name=f"{node.id}__pad")(value)
    cls = keras.layers.MaxPooling2D if node.op == "max_pool2d" else keras.layers.AveragePooling2D
    return cls(k, s, padding=padding, name=node.id)(value)


def _adaptive(node: GraphNode, x: Tensor) -> Any:
    in_hw, out_hw = list(x.info.shape[1:]), list(node.out.shape[1:])
    if in_hw == out_hw:
        return x.value
    if all(i % o == 0 for i, o in zip(in_hw, out_hw, strict=True)):
        pool = tuple(i // o for i, o in zip(in_hw, out_hw, strict=True))
        return keras.layers.AveragePooling2D(pool, name=node.id)(x.value)
    return tl.AdaptiveAvgPool2D(in_hw, out_hw, name=node.id)(x.value)


def _axis(axis: int, t: Tensor) -> int:
    """Per-sample neutral axis -> Keras tensor axis (batch first) under t's layout."""
    r = t.info.rank
    a = axis % r
    if t.layout == CL:
        a = r - 1 if a == 0 else a - 1
    return a + 1


def _layer(node: GraphNode, ins: list[Tensor]) -> tuple[Any, keras.layers.Layer | None]:
    op, p, x = node.op, node.params, ins[0]
    vals = [t.value for t in ins]
    if op in ("conv1d", "conv2d", "conv_transpose2d"):
        return _conv_transpose(node, x) if op == "conv_transpose2d" else _conv(node, x)
    if op in ("max_pool2d", "avg_pool2d"):
        return _pool(node, x), None
    if op == "adaptive_avg_pool2d":
        return _adaptive(node, x), None
    if op in GLOBAL_POOLS:
        return GLOBAL_POOLS[op][x.info.rank - 2](name=node.id)(x.value), None
    if op == "custom":
        shapes = [list(t.info.shape) for t in ins]
        custom = tl.CustomExpr(p.model_dump(), shapes, x.layout == CL, name=node.id)
        return custom(vals), None
    if op in ("add", "multiply", "concat", "matmul"):
        return _merge(node, x, vals), None
    factories: dict[str, Any] = {
        "dense": lambda: keras.layers.Dense(p.units, use_bias=p.bias, name=node.id),
        "batch_norm": lambda: keras.layers.BatchNormalization(
            axis=-1 if x.layout == CL or x.info.rank == 1 else 1,
            epsilon=p.eps,
            momentum=1.0 - p.momentum,
            name=node.id,
        ),
        "layer_norm": lambda: keras.layers.LayerNormalization(epsilon=p.eps, name=node.id),
        "leaky_relu": lambda: keras.layers.LeakyReLU(negative_slope=p.alpha, name=node.id),
        "prelu": lambda: tensor_ops.ChannelPRelu(x.info.shape[0], name=node.id),
        "group_norm": lambda: keras.layers.GroupNormalization(
            p.groups, axis=-1, epsilon=p.eps, name=node.id
        ),
        "instance_norm": lambda: keras.layers.GroupNormalization(
            x.info.shape[0], axis=-1, epsilon=p.eps, name=node.id
        ),
        "softmax": lambda: keras.layers.Softmax(axis=_axis(p.axis, x), name=node.id),
        "dropout": lambda: keras.layers.Dropout(p.rate, name=node.id),
        "flatten": lambda: keras.layers.Flatten(name=node.id),
        "upsample2d": lambda: keras.layers.UpSampling2D(
            p.scale, interpolation=p.mode, name=node.id
        ),
        "reshape": lambda: keras.layers.Reshape(tuple(node.out.shape), name=node.id),
        "permute": lambda: keras.layers.Permute(tuple(d + 1 for d in p.dims), name=node.id),
        "mean": lambda: tl.ReduceMean(_axis(p.axis, x), p.keepdims, name=node.id),
        "embedding": lambda: keras.layers.Embedding(
            p.num_embeddings, p.embedding_dim, name=node.id
        ),
        "position_embedding": lambda: tl.PositionEmbedding(p.max_len, name=node.id),
        "class_token": lambda: tl.ClassToken(p.at == "end", name=node.id),
        "self_attention": lambda: tl.SelfAttention(
            p.num_heads, x.info.shape[1] // p.num_heads, p.causal, name=node.id
        ),
        "affine": lambda: tensor_ops.Affine(list(p.shape), p.scale, p.shift, name=node.id),
        "slice": lambda: tensor_ops.Slice(
            p.axis % x.info.rank + 1, p.start, p.end, p.step, p.squeeze, name=node.id
        ),
        "lstm": lambda: _recurrent(keras.layers.LSTM, node),
        "gru": lambda: _recurrent(keras.layers.GRU, node),
    }
    if op in KERAS_ACT:
        return keras.layers.Activation(KERAS_ACT[op], name=node.id)(x.value), None
    if op not in factories:
        raise NotImplementedError(f"keras builder has no op '{op}'")
    layer = factories[op]()
    return layer(x.value), layer


def _recurrent(cls: Any, node: GraphNode) -> keras.layers.Layer:
    p = node.params
    if not p.bidirectional:
        return cls(p.hidden_size, return_sequences=p.return_sequences, name=node.id)
    inner = cls(p.hidden_size, return_sequences=p.return_sequences)
    return keras.layers.Bidirectional(inner, merge_mode="concat", name=node.id)


def _input_layouts(graph: SpecGraph) -> dict[str, str]:
    layouts = {}
    for inp in graph.spec.inputs:
        users = [n for n in graph.nodes if inp.name in n.inputs]
        spatial = (
            len(inp.shape) >= 2
            and inp.dtype == "float32"
            and users
            and all(n.op in SPATIAL for n in users)
        )
        layouts[inp.name] = CL if spatial else NEUTRAL
    return layouts


def build(graph: SpecGraph, weights: NeutralWeights) -> KerasBuild:
    layouts = _input_layouts(graph)
    kin, env = {}, {}
    for inp in graph.spec.inputs:
        info = TensorInfo(tuple(inp.shape), inp.dtype)
        shape = (*inp.shape[1:], inp.shape[0]) if layouts[inp.name] == CL else tuple(inp.shape)
        kin[inp.name] = keras.Input(shape=shape, dtype=inp.dtype, name=inp.name)
        env[inp.name] = Tensor(kin[inp.name], layouts[inp.name], info)
    cores: dict[str, keras.layers.Layer] = {}
    for node in graph.nodes:
        ins = [env[i] for i in node.inputs]
        if _wants_cl(node, ins):
            want = CL
        elif _keeps_layout(node, ins):
            want = ins[0].layout
        else:
            want = NEUTRAL
        ins = [_relayout(t, want) for t in ins]
        value, core = _layer(node, ins)
        layout = NEUTRAL if node.op in GLOBAL_POOLS else want
        env[node.id] = Tensor(value, layout if node.out.rank >= 2 else NEUTRAL, node.out)
        if core is not None and node.id in weights:
            cores[node.id] = core
    outs = [env[o] for o in graph.spec.outputs]
    model = keras.Model(
        inputs=[kin[i.name] for i in graph.spec.inputs],
        outputs=[o.value for o in outs] if len(outs) > 1 else outs[0].value,
        name=graph.spec.name.replace(".", "_").replace("-", "_"),
    )
    built = KerasBuild(model, cores, layouts, [o.layout for o in outs])
    load_weights(built.cores, graph, weights)
    return built
