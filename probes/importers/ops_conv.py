"""Conv, BatchNormalization, pools, global pools, spatial means and Resize."""

from __future__ import annotations

from typing import Any

import numpy as np

from probes.importers.context import Act, Ctx, Padded, Unsupported, Value, const
from probes.importers.registry import converter
from probes.spec.ops_spatial import resolve_pads

Ins = list[Value | None]


def _padding(
    attrs: dict[str, Any], a: Act, k: list[int], s: list[int], d: list[int]
) -> str | int | list[int]:
    """ONNX pads/auto_pad -> the spec's padding (symmetric ints, or TF-style ``same``)."""
    nd = len(k)
    auto = attrs.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return "valid"
    sizes = a.shape[1:]
    same = [resolve_pads(sizes[i], k[i], s[i], d[i], "same") for i in range(nd)]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if auto == "SAME_LOWER" and any(b != e for b, e in same):
            raise Unsupported("auto_pad=SAME_LOWER with uneven padding")
        return "same"
    pads = [int(p) for p in attrs.get("pads", [0] * (2 * nd))]
    begin, end = pads[:nd], pads[nd:]
    if begin == end:
        return begin[0] if len(set(begin)) == 1 else begin
    if [(b, e) for b, e in zip(begin, end, strict=True)] == same:
        return "same"
    raise Unsupported(f"asymmetric pads {pads}")


def _geometry(attrs: dict[str, Any], w_shape: tuple[int, ...], nd: int) -> tuple[list[int], ...]:
    k = [int(v) for v in attrs.get("kernel_shape", w_shape[2:])]
    s = [int(v) for v in attrs.get("strides", [1] * nd)]
    d = [int(v) for v in attrs.get("dilations", [1] * nd)]
    return k, s, d


def _one(v: list[int]) -> int | list[int]:
    return v[0] if len(set(v)) == 1 else v


@converter("Pad")
def pad(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    pads = [int(p) for p in const(ins[1], "the pads")]
    value = ins[2] if len(ins) > 2 else None
    if attrs.get("mode", "constant") != "constant" or (
        value is not None and np.any(const(value, "the value"))
    ):
        raise Unsupported("only zero padding (mode=constant, value 0)")
    if len(ins) > 3 and ins[3] is not None:
        raise Unsupported("Pad with explicit axes")
    rank = len(a.shape) + 1
    if len(pads) != 2 * rank or pads[0] or pads[1] or pads[rank] or pads[rank + 1] or min(pads) < 0:
        raise Unsupported(f"pads {pads} (spatial axes only, non-negative)")
    return [Padded(a, tuple(pads))]


def _merge_pad(
    attrs: dict[str, Any], v: Value | None, nd: int
) -> tuple[Value | None, dict[str, Any]]:
    """Fold a preceding zero Pad into a Conv's own pads."""
    if not isinstance(v, Padded):
        return v, attrs
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise Unsupported("a Pad before a Conv with auto_pad")
    own = [int(p) for p in attrs.get("pads", [0] * (2 * nd))]
    rank = nd + 2
    extra = list(v.pads[2:rank]) + list(v.pads[rank + 2 :])
    return v.act, {
        **attrs,
        "auto_pad": "NOTSET",
        "pads": [a + b for a, b in zip(own, extra, strict=True)],
    }


@converter("Conv")
def conv(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    w = const(ins[1], "the Conv weight")
    nd = w.ndim - 2
    src, attrs = _merge_pad(attrs, ins[0], nd)
    a = ctx.act(src)
    if nd not in (1, 2):
        raise Unsupported(f"{nd}-D convolution (1-D and 2-D are supported)")
    k, s, d = _geometry(attrs, w.shape, nd)
    bias = const(ins[2], "the Conv bias") if len(ins) > 2 and ins[2] is not None else None
    if bias is not None and not np.any(bias):
        bias = None  # exporters add a zero bias to bias-free convs (dynamo does)
    params = {
        "filters": int(w.shape[0]),
        "kernel": _one(k),
        "stride": _one(s),
        "dilation": _one(d),
        "padding": _padding(attrs, a, k, s, d),
        "groups": int(attrs.get("group", 1)),
        "bias": bias is not None,
    }
    weights = {"weight": w} if bias is None else {"weight": w, "bias": bias}
    return [ctx.emit(f"conv{nd}d", [a], params, weights)]


@converter("BatchNormalization")
def batch_norm(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    if attrs.get("training_mode", 0):
        raise Unsupported("BatchNormalization in training mode")
    names = ("gamma", "beta", "running_mean", "running_var")
    weights = {n: const(v, f"BatchNormalization {n}") for n, v in zip(names, ins[1:5], strict=True)}
    momentum = 1.0 - float(attrs.get("momentum", 0.9))
    params = {"eps": float(attrs.get("epsilon", 1e-5)), "momentum": min(max(momentum, 1e-3), 0.999)}
    return [ctx.emit("batch_norm", [a], params, weights)]


def _pool_params(attrs: dict[str, Any], a: Act) -> dict[str, Any]:
    k = [int(v) for v in attrs["kernel_shape"]]
    s = [int(v) for v in attrs.get("strides", k)]
    if any(int(v) != 1 for v in attrs.get("dilations", [1, 1])):
        raise Unsupported("dilated pooling")
    pad = _padding(attrs, a, k, s, [1, 1])
    if attrs.get("ceil_mode", 0):
        pads = pad if isinstance(pad, int) else 0
        floor = [(a.shape[i + 1] + 2 * pads - k[i]) // s[i] + 1 for i in range(2)]
        ceil = [-(-(a.shape[i + 1] + 2 * pads - k[i]) // s[i]) + 1 for i in range(2)]
        if floor != ceil:
            raise Unsupported("ceil_mode=1 changes the output size here")
    if not isinstance(pad, int) and pad != "valid":
        raise Unsupported(f"pool padding {pad} (symmetric and equal on both axes only)")
    return {"kernel": _one(k), "stride": _one(s), "padding": pad if pad else "valid"}


@converter("MaxPool")
def max_pool(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    if len(a.shape) != 3:
        raise Unsupported("only 2-D max pooling")
    return [ctx.emit("max_pool2d", [a], _pool_params(attrs, a))]


@converter("AveragePool")
def avg_pool(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    if len(a.shape) != 3:
        raise Unsupported("only 2-D average pooling")
    params = _pool_params(attrs, a)
    if params["padding"] != "valid" and not attrs.get("count_include_pad", 0):
        raise Unsupported("padded average pooling that excludes the padding from the count")
    return [ctx.emit("avg_pool2d", [a], params)]


def _global(ctx: Ctx, a: Act, keep: bool, op: str) -> Act:
    out = ctx.emit("global_max_pool" if op == "max" else "global_avg_pool", [a])
    shape = [a.shape[0], *([1] * (len(a.shape) - 1))] if keep else [a.shape[0]]
    return ctx.emit("reshape", [out], {"shape": shape}) if list(out.shape) != shape else out


@converter("GlobalAveragePool")
def global_avg(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    return [_global(ctx, ctx.act(ins[0]), True, "avg")]


@converter("GlobalMaxPool")
def global_max(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    return [_global(ctx, ctx.act(ins[0]), True, "max")]


def _reduce_axes(attrs: dict[str, Any], ins: Ins, rank: int) -> list[int]:
    if len(ins) > 1 and ins[1] is not None:
        axes = [int(v) for v in const(ins[1], "axes").reshape(-1)]
    else:
        axes = [int(v) for v in attrs.get("axes", [])]
    return sorted(ax % rank for ax in axes) or list(range(rank))


@converter("ReduceMean")
def reduce_mean(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    return [_reduce(ctx, attrs, ins, False)]


@converter("ReduceMax")
def reduce_max(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    return [_reduce(ctx, attrs, ins, True)]


def _reduce(ctx: Ctx, attrs: dict[str, Any], ins: Ins, mx: bool) -> Act:
    a = ctx.act(ins[0])
    rank = len(a.shape) + 1
    axes = _reduce_axes(attrs, ins, rank)
    keep = bool(attrs.get("keepdims", 1))
    if 0 in axes:
        raise Unsupported("reduces over the batch axis")
    if axes == list(range(2, rank)) and rank in (3, 4):
        return _global(ctx, a, keep, "max" if mx else "avg")
    if len(axes) == 1 and not mx:
        return ctx.emit("mean", [a], {"axis": axes[0] - 1, "keepdims": keep})
    raise Unsupported(f"reduction over axes {axes}")


@converter("Resize", "Upsample")
def resize(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    mode = attrs.get("mode", "nearest")
    coords = attrs.get("coordinate_transformation_mode", "half_pixel")
    if len(a.shape) != 3 or mode not in ("nearest", "linear"):
        raise Unsupported(f"Resize mode '{mode}' (nearest or linear on [C, H, W] only)")
    if mode == "linear" and coords not in ("half_pixel", "pytorch_half_pixel"):
        raise Unsupported(f"linear Resize with coordinate_transformation_mode={coords}")
    if mode == "nearest" and coords not in ("asymmetric", "half_pixel", "pytorch_half_pixel"):
        raise Unsupported(f"nearest Resize with coordinate_transformation_mode={coords}")
    scales = None
    for v in ins[1:]:
        if isinstance(v, np.ndarray) and v.size == 4 and v.dtype.kind == "f":
            scales = [float(x) for x in v]
        elif isinstance(v, np.ndarray) and v.size == 4:
            scales = [float(o) / float(i) for o, i in zip(v, (1, *a.shape), strict=True)]
    if scales is None or scales[2] != scales[3] or scales[2] != int(scales[2]) or scales[1] != 1:
        raise Unsupported(f"Resize scales {scales} (an equal integer factor on H and W)")
    spec_mode = "bilinear" if mode == "linear" else "nearest"
    return [ctx.emit("upsample2d", [a], {"scale": int(scales[2]), "mode": spec_mode})]


@converter("ConvTranspose")
def conv_transpose(ctx: Ctx, attrs: dict[str, Any], ins: Ins, name: str) -> list[Value]:
    a = ctx.act(ins[0])
    w = const(ins[1], "the ConvTranspose weight")
    if w.ndim != 4:
        raise Unsupported("only 2-D transposed convolution")
    if int(attrs.get("group", 1)) != 1 or any(int(d) != 1 for d in attrs.get("dilations", [])):
        raise Unsupported("grouped or dilated transposed convolution")
    if attrs.get("output_shape") or attrs.get("auto_pad", "NOTSET") != "NOTSET":
        raise Unsupported("ConvTranspose with output_shape or auto_pad")
    pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
    if pads[:2] != pads[2:]:
        raise Unsupported(f"asymmetric pads {pads}")
    bias = const(ins[2], "the bias") if len(ins) > 2 and ins[2] is not None else None
    params = {
        "filters": int(w.shape[1]),
        "kernel": _one([int(v) for v in attrs.get("kernel_shape", w.shape[2:])]),
        "stride": _one([int(v) for v in attrs.get("strides", [1, 1])]),
        "padding": _one(pads[:2]),
        "output_padding": _one([int(v) for v in attrs.get("output_padding", [0, 0])]),
        "bias": bias is not None,
    }
    weights = {"weight": w} if bias is None else {"weight": w, "bias": bias}
    return [ctx.emit("conv_transpose2d", [a], params, weights)]
