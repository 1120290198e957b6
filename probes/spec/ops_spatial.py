"""Convolutions and pools (channels-first: [C, L] or [C, H, W])."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from probes.errors import ShapeMismatchError
from probes.spec.ops_base import (
    NoParams,
    Op,
    Params,
    TensorInfo,
    WeightDef,
    expect_rank,
    positive,
)

Padding = Literal["valid", "same"] | int | list[int]


def pair(v: int | list[int], n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, list) else (v,) * n


def resolve_pads(
    size: int, kernel: int, stride: int, dilation: int, padding: str | int
) -> tuple[int, int]:
    """Padding (before, after) on one axis. ``same`` follows TensorFlow: extra pad goes after."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        eff = dilation * (kernel - 1) + 1
        out = -(-size // stride)
        total = max((out - 1) * stride + eff - size, 0)
        return total // 2, total - total // 2
    assert isinstance(padding, int)
    return padding, padding


def axis_paddings(padding: Padding, n: int) -> list[str | int]:
    if isinstance(padding, list):
        return list(padding)
    return [padding] * n


def out_size(size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int]) -> int:
    eff = dilation * (kernel - 1) + 1
    return (size + pads[0] + pads[1] - eff) // stride + 1


class ConvParams(Params):
    filters: int = Field(gt=0)
    kernel: int | list[int]
    stride: int | list[int] = 1
    padding: Padding = "valid"
    dilation: int | list[int] = 1
    groups: int = Field(default=1, gt=0)
    bias: bool = True

    @field_validator("kernel", "stride", "dilation")
    @classmethod
    def _positive(cls, v: int | list[int]) -> int | list[int]:
        if any(x <= 0 for x in (v if isinstance(v, list) else [v])):
            raise ValueError("must be positive")
        return v

    @field_validator("padding")
    @classmethod
    def _pad(cls, v: Padding) -> Padding:
        if any(isinstance(x, int) and x < 0 for x in (v if isinstance(v, list) else [v])):
            raise ValueError("must be 'valid', 'same' or non-negative integers")
        return v


class _Conv(Op):
    params_model = ConvParams
    ndim: int

    def geometry(self, p: ConvParams) -> tuple[tuple[int, ...], ...]:
        n = self.ndim
        k, s, d = pair(p.kernel, n), pair(p.stride, n), pair(p.dilation, n)
        for name, v in (("kernel", k), ("stride", s), ("dilation", d)):
            if len(v) != n:
                raise ValueError(f"{name} needs {n} values, got {list(v)}")
        return k, s, d

    def infer(self, node: str, p: ConvParams, ins: list[TensorInfo]) -> TensorInfo:
        expect_rank(node, "input [C, *spatial]", ins[0], (self.ndim + 1,))
        try:
            k, s, d = self.geometry(p)
            pads = axis_paddings(p.padding, self.ndim)
            if len(pads) != self.ndim:
                raise ValueError(f"padding needs {self.ndim} values, got {pads}")
        except ValueError as e:
            raise ShapeMismatchError(str(e), node=node) from None
        c_in = ins[0].shape[0]
        if c_in % p.groups or p.filters % p.groups:
            raise ShapeMismatchError(
                f"groups={p.groups} must divide input channels ({c_in}) and filters ({p.filters})",
                node=node,
            )
        spatial = tuple(
            out_size(size, k[i], s[i], d[i], resolve_pads(size, k[i], s[i], d[i], pads[i]))
            for i, size in enumerate(ins[0].shape[1:])
        )
        return TensorInfo(
            positive(node, (p.filters, *spatial), f"{self.name} on {list(ins[0].shape)}")
        )

    def weights(self, p: ConvParams, ins: list[TensorInfo]) -> dict[str, WeightDef]:
        k, _, _ = self.geometry(p)
        c_in_g = ins[0].shape[0] // p.groups
        fan_in = c_in_g * math.prod(k)
        w = {"weight": WeightDef((p.filters, c_in_g, *k), "he", fan_in)}
        if p.bias:
            w["bias"] = WeightDef((p.filters,), "uniform", fan_in)
        return w

    def macs(self, p: ConvParams, ins: list[TensorInfo], out: TensorInfo) -> int:
        k, _, _ = self.geometry(p)
        return out.size * (ins[0].shape[0] // p.groups) * math.prod(k)


class Conv1d(_Conv):
    name = "conv1d"
    ndim = 1


class Conv2d(_Conv):
    name = "conv2d"
    ndim = 2


class PoolParams(Params):
    kernel: int | list[int]
    stride: int | list[int] | None = Field(default=None, description="Defaults to kernel.")
    padding: Literal["valid"] | int = "valid"


class _Pool2d(Op):
    params_model = PoolParams

    def infer(self, node: str, p: PoolParams, ins: list[TensorInfo]) -> TensorInfo:
        expect_rank(node, "input [C, H, W]", ins[0], (3,))
        k = pair(p.kernel, 2)
        s = pair(p.stride if p.stride is not None else p.kernel, 2)
        if len(k) != 2 or len(s) != 2 or min(*k, *s) <= 0:
            raise ShapeMismatchError("kernel/stride must be 1 or 2 positive ints", node=node)
        pad = 0 if p.padding == "valid" else p.padding
        if pad * 2 > min(k):
            raise ShapeMismatchError(
                f"padding {pad} must be at most half the kernel {list(k)}", node=node
            )
        hw = tuple(
            out_size(size, k[i], s[i], 1, (pad, pad)) for i, size in enumerate(ins[0].shape[1:])
        )
        return TensorInfo(
            positive(node, (ins[0].shape[0], *hw), f"{self.name} on {list(ins[0].shape)}")
        )


class MaxPool2d(_Pool2d):
    name = "max_pool2d"


class AvgPool2d(_Pool2d):
    """Zero padding counts toward the average (PyTorch ``count_include_pad=True``)."""

    name = "avg_pool2d"


class AdaptivePoolParams(Params):
    output_size: int | list[int]


class AdaptiveAvgPool2d(Op):
    """PyTorch's adaptive average pool: bin i spans [floor(i*in/out), ceil((i+1)*in/out))."""

    name = "adaptive_avg_pool2d"
    params_model = AdaptivePoolParams

    def infer(self, node: str, p: AdaptivePoolParams, ins: list[TensorInfo]) -> TensorInfo:
        expect_rank(node, "input [C, H, W]", ins[0], (3,))
        o = pair(p.output_size, 2)
        if len(o) != 2:
            raise ShapeMismatchError(f"output_size needs 2 values, got {list(o)}", node=node)
        return TensorInfo(positive(node, (ins[0].shape[0], *o), "adaptive_avg_pool2d"))


class GlobalAvgPool(Op):
    """Mean over every spatial axis: [C, *spatial] -> [C]."""

    name = "global_avg_pool"
    params_model = NoParams

    def infer(self, node: str, p: NoParams, ins: list[TensorInfo]) -> TensorInfo:
        expect_rank(node, "input [C, *spatial]", ins[0], (2, 3))
        return TensorInfo((ins[0].shape[0],))


class UpsampleParams(Params):
    scale: int = Field(gt=0)
    mode: Literal["nearest", "bilinear"] = Field(
        default="nearest", description="bilinear: half-pixel centres (align_corners=False)."
    )


class Upsample2d(Op):
    """Nearest-neighbour or bilinear upsampling of [C, H, W] by an integer factor."""

    name = "upsample2d"
    params_model = UpsampleParams

    def infer(self, node: str, p: UpsampleParams, ins: list[TensorInfo]) -> TensorInfo:
        expect_rank(node, "input [C, H, W]", ins[0], (3,))
        c, h, w = ins[0].shape
        return TensorInfo((c, h * p.scale, w * p.scale))


SPATIAL_OPS: list[Op] = [
    Conv1d(),
    Conv2d(),
    MaxPool2d(),
    AvgPool2d(),
    AdaptiveAvgPool2d(),
    GlobalAvgPool(),
    Upsample2d(),
]
