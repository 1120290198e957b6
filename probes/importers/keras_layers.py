"""One converter per Keras layer class (standard layers only), registered by decorator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from probes.importers.context import Act, Ctx, Unsupported
from probes.importers.ops_act import custom


@dataclass
class KLayer:
    cls: str
    name: str
    config: dict[str, Any]
    vars: list[np.ndarray]

    def get(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)

    def var(self, i: int) -> np.ndarray:
        if i >= len(self.vars):
            raise Unsupported(f"the weights file has no variable {i} for this layer")
        return np.asarray(self.vars[i], np.float32)


KConverter = Callable[[Ctx, KLayer, list[Act]], Act]
KERAS: dict[str, KConverter] = {}


def keras_layer(*classes: str) -> Callable[[KConverter], KConverter]:
    def register(fn: KConverter) -> KConverter:
        for c in classes:
            KERAS[c] = fn
        return fn

    return register


def cl_perm(rank: int) -> tuple[int, ...]:
    """Keras channels-last view of a channels-first spec tensor (per-sample ``rank``)."""
    return (0, *range(2, rank + 1), 1)


def chan_first(ctx: Ctx, v: Act) -> Act:
    """The spec tensor [C, *spatial] behind a channels-last Keras value."""
    rank = len(v.shape)
    if v.perm == cl_perm(rank):
        return Act(v.ref, v.shape, v.dtype)
    a = ctx.canonical(v)
    return ctx.emit("permute", [a], {"dims": [rank - 1, *range(rank - 1)]}, hint=f"{v.ref}_cf")


def chan_last(a: Act) -> Act:
    return Act(a.ref, a.shape, a.dtype, cl_perm(len(a.shape)))


def _pair(v: Any) -> list[int]:
    return [int(x) for x in v] if isinstance(v, list | tuple) else [int(v), int(v)]


def _one(v: list[int]) -> int | list[int]:
    return v[0] if len(set(v)) == 1 else v


ACTS = {"relu", "sigmoid", "tanh", "gelu", "silu", "relu6", "hard_swish", "hard_silu"}


def activation(ctx: Ctx, a: Act, name: Any) -> Act:
    """Apply a Keras activation given by name (strings only; anything else is refused)."""
    if not isinstance(name, str):
        raise Unsupported(f"activation {name!r} is not a built-in name")
    if name in ("linear", None):
        return a
    if name == "swish":
        name = "silu"
    if name in ACTS:
        op = "hardswish" if name in ("hard_swish", "hard_silu") else name
        return _keep(a, ctx.emit(op, [_base(a)]))
    if name == "softmax":
        return ctx.emit("softmax", [ctx.canonical(a)], {"axis": -1})
    exprs = {
        "elu": ("where(x > 0, x, exp(minimum(x, 0)) - 1)", {}),
        "leaky_relu": ("where(x >= 0, x, s * x)", {"s": 0.2}),
        "softplus": ("log1p(exp(x))", {}),
        "exponential": ("exp(x)", {}),
    }
    if name not in exprs:
        raise Unsupported(f"activation '{name}'")
    expr, consts = exprs[name]
    return _keep(a, custom(ctx, [_base(a)], expr, consts, name))


def _base(a: Act) -> Act:
    return Act(a.ref, a.shape, a.dtype)


def _keep(a: Act, out: Act) -> Act:
    """An elementwise result keeps its input's Keras view."""
    return Act(out.ref, out.shape, out.dtype, a.perm)


@keras_layer("Dense")
def dense(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    a = ctx.canonical(ins[0])
    bias = ly.get("use_bias", True)
    w = {"weight": ly.var(0).T, **({"bias": ly.var(1)} if bias else {})}
    out = ctx.emit("dense", [a], {"units": int(ly.get("units")), "bias": bool(bias)}, w)
    return activation(ctx, out, ly.get("activation", "linear"))


def _check_channels_last(ly: KLayer) -> None:
    if ly.get("data_format") not in (None, "channels_last"):
        raise Unsupported("data_format=channels_first")


@keras_layer("Conv2D", "Conv1D", "DepthwiseConv2D")
def conv(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    _check_channels_last(ly)
    a = chan_first(ctx, ins[0])
    nd = len(a.shape) - 1
    k = ly.var(0)
    depthwise = ly.cls == "DepthwiseConv2D"
    if depthwise:
        c, m = k.shape[2], k.shape[3]
        weight = k.transpose(2, 3, 0, 1).reshape(c * m, 1, *k.shape[:2])
        filters, groups = c * m, c
    else:
        weight = k.transpose(nd + 1, nd, *range(nd))
        filters, groups = int(ly.get("filters")), int(ly.get("groups", 1))
    size = _pair(ly.get("kernel_size"))[:nd]
    strides = _pair(ly.get("strides", 1))[:nd]
    dil = _pair(ly.get("dilation_rate", 1))[:nd]
    padding = str(ly.get("padding", "valid"))
    if padding not in ("valid", "same"):
        raise Unsupported(f"padding '{padding}'")
    bias = bool(ly.get("use_bias", True))
    params = {
        "filters": filters,
        "kernel": _one(size),
        "stride": _one(strides),
        "dilation": _one(dil),
        "padding": padding,
        "groups": groups,
        "bias": bias,
    }
    weights = {"weight": weight, **({"bias": ly.var(1)} if bias else {})}
    out = ctx.emit(f"conv{nd}d", [a], params, weights)
    return activation(ctx, chan_last(out), ly.get("activation", "linear"))


@keras_layer("BatchNormalization")
def batch_norm(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    if ly.get("axis", -1) not in (-1, [-1], len(ins[0].shape), [len(ins[0].shape)]):
        raise Unsupported(f"batch normalization over axis {ly.get('axis')}")
    a = chan_first(ctx, ins[0]) if len(ins[0].shape) > 1 else ins[0]
    i, c = 0, a.shape[0]
    gamma = ly.var(i) if ly.get("scale", True) else np.ones(c, np.float32)
    i += bool(ly.get("scale", True))
    beta = ly.var(i) if ly.get("center", True) else np.zeros(c, np.float32)
    i += bool(ly.get("center", True))
    weights = {
        "gamma": gamma,
        "beta": beta,
        "running_mean": ly.var(i),
        "running_var": ly.var(i + 1),
    }
    momentum = min(max(1.0 - float(ly.get("momentum", 0.99)), 1e-3), 0.999)
    params = {"eps": float(ly.get("epsilon", 1e-3)), "momentum": momentum}
    out = ctx.emit("batch_norm", [a], params, weights)
    return chan_last(out) if len(ins[0].shape) > 1 else out


@keras_layer("LayerNormalization")
def layer_norm(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    if ly.get("axis", -1) not in (-1, [-1], len(ins[0].shape), [len(ins[0].shape)]):
        raise Unsupported(f"layer normalization over axis {ly.get('axis')}")
    if ly.get("rms_scaling"):
        raise Unsupported("rms_scaling")
    a = ctx.canonical(ins[0])
    e, i = a.shape[-1], 0
    gamma = ly.var(i) if ly.get("scale", True) else np.ones(e, np.float32)
    i += bool(ly.get("scale", True))
    beta = ly.var(i) if ly.get("center", True) else np.zeros(e, np.float32)
    params = {"eps": float(ly.get("epsilon", 1e-3))}
    return ctx.emit("layer_norm", [a], params, {"gamma": gamma, "beta": beta})


@keras_layer("Embedding")
def embedding(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    a = ctx.canonical(ins[0])
    if a.dtype != "int64":
        raise Unsupported("an Embedding over float input")
    table = ly.var(0)
    if not ctx.node(a.ref):
        ctx.input_max[a.ref] = max(ctx.input_max.get(a.ref, 0), int(table.shape[0]))
    params = {"num_embeddings": int(table.shape[0]), "embedding_dim": int(table.shape[1])}
    return ctx.emit("embedding", [a], params, {"weight": table})


@keras_layer("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout")
def identity(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    return ins[0]  # inference: no-ops


@keras_layer("Activation")
def act(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    return activation(ctx, ins[0], ly.get("activation"))


@keras_layer("ReLU")
def relu(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    mx, slope, th = ly.get("max_value"), ly.get("negative_slope", 0.0), ly.get("threshold", 0.0)
    if slope or th:
        raise Unsupported("ReLU with negative_slope or threshold")
    if mx is None:
        return activation(ctx, ins[0], "relu")
    if float(mx) == 6.0:
        return activation(ctx, ins[0], "relu6")
    return _keep(
        ins[0], custom(ctx, [_base(ins[0])], "clip(x, 0, m)", {"m": float(mx)}, "relu_max")
    )


@keras_layer("LeakyReLU")
def leaky(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    s = float(ly.get("negative_slope", ly.get("alpha", 0.3)))
    if s >= 0:
        return _keep(ins[0], ctx.emit("leaky_relu", [_base(ins[0])], {"alpha": s}))
    return _keep(ins[0], custom(ctx, [_base(ins[0])], "where(x >= 0, x, s * x)", {"s": s}, "leaky"))


@keras_layer("Softmax")
def softmax(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    if ly.get("axis", -1) not in (-1, [-1]):
        raise Unsupported("softmax over an axis other than the last")
    return ctx.emit("softmax", [ctx.canonical(ins[0])], {"axis": -1})


@keras_layer("MaxPooling2D", "AveragePooling2D")
def pool(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    _check_channels_last(ly)
    a = chan_first(ctx, ins[0])
    k = _pair(ly.get("pool_size", 2))
    s = _pair(ly.get("strides") or k)
    if ly.get("padding", "valid") != "valid":
        raise Unsupported("pooling with padding='same'")
    op = "max_pool2d" if ly.cls == "MaxPooling2D" else "avg_pool2d"
    return chan_last(ctx.emit(op, [a], {"kernel": _one(k), "stride": _one(s)}))


@keras_layer(
    "GlobalAveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling1D",
)
def global_pool(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    _check_channels_last(ly)
    if ly.get("keepdims"):
        raise Unsupported("keepdims=True")
    a = chan_first(ctx, ins[0])
    return ctx.emit("global_max_pool" if "Max" in ly.cls else "global_avg_pool", [a])


@keras_layer("UpSampling2D")
def upsample(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    size = _pair(ly.get("size", 2))
    if size[0] != size[1] or ly.get("interpolation", "nearest") != "nearest":
        raise Unsupported("UpSampling2D other than nearest with one integer factor")
    return chan_last(ctx.emit("upsample2d", [chan_first(ctx, ins[0])], {"scale": size[0]}))


@keras_layer("Flatten")
def flatten(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    a = ctx.canonical(ins[0])  # Keras order: a channels-last image flattens as H, W, C
    return ctx.emit("flatten", [a]) if len(a.shape) > 1 else a


@keras_layer("Reshape")
def reshape(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    return ctx.emit("reshape", [ctx.canonical(ins[0])], {"shape": list(ly.get("target_shape"))})


@keras_layer("Permute")
def permute(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    a = ins[0]
    base = a.perm or tuple(range(len(a.shape) + 1))
    dims = [0, *[int(d) for d in ly.get("dims")]]
    return Act(a.ref, a.shape, a.dtype, tuple(base[d] for d in dims))


@keras_layer("Add", "Multiply", "Subtract", "Average", "Maximum", "Minimum")
def merge(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    same_view = len({a.perm for a in ins}) == 1 and len({a.shape for a in ins}) == 1
    args = [_base(a) for a in ins] if same_view else [ctx.canonical(a) for a in ins]
    if ly.cls in ("Add", "Multiply") and len({a.shape for a in args}) == 1:
        out = ctx.emit("add" if ly.cls == "Add" else "multiply", args)
    else:
        names = [f"x{i}" for i in range(len(args))]
        expr = {
            "Add": " + ".join(names),
            "Multiply": " * ".join(names),
            "Subtract": "x0 - x1",
            "Average": f"({' + '.join(names)}) / {len(names)}",
            "Maximum": "maximum(x0, x1)",
            "Minimum": "minimum(x0, x1)",
        }[ly.cls]
        if ly.cls in ("Maximum", "Minimum") and len(args) != 2:
            raise Unsupported(f"{ly.cls} of {len(args)} inputs")
        out = custom(ctx, args, expr, {}, ly.cls)
    return Act(out.ref, out.shape, out.dtype, ins[0].perm if same_view else None)


@keras_layer("Concatenate")
def concat(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    rank = len(ins[0].shape) + 1
    axis = int(ly.get("axis", -1)) % rank
    if axis == 0:
        raise Unsupported("concatenation along the batch axis")
    if len({a.perm for a in ins}) == 1 and ins[0].perm is not None:
        out = ctx.emit("concat", [_base(a) for a in ins], {"axis": ins[0].perm[axis] - 1})
        return Act(out.ref, out.shape, out.dtype, ins[0].perm)
    return ctx.emit("concat", [ctx.canonical(a) for a in ins], {"axis": axis - 1})
