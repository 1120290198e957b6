"""Ops that grow the spatial size: transposed convolution (U-Net decoders)."""

from __future__ import annotations

import math

from pydantic import Field, field_validator

from probes.errors import ShapeMismatchError
from probes.spec.ops_base import Op, Params, TensorInfo, WeightDef, expect_rank, positive
from probes.spec.ops_spatial import pair


class ConvTransposeParams(Params):
    filters: int = Field(gt=0)
    kernel: int | list[int]
    stride: int | list[int] = 1
    padding: int | list[int] = Field(default=0, description="Cropped from both sides.")
    output_padding: int | list[int] = Field(default=0, description="Added at the end.")
    bias: bool = True

    @field_validator("kernel", "stride")
    @classmethod
    def _positive(cls, v: int | list[int]) -> int | list[int]:
        if any(x <= 0 for x in (v if isinstance(v, list) else [v])):
            raise ValueError("must be positive")
        return v

    @field_validator("padding", "output_padding")
    @classmethod
    def _non_negative(cls, v: int | list[int]) -> int | list[int]:
        if any(x < 0 for x in (v if isinstance(v, list) else [v])):
            raise ValueError("must be non-negative")
        return v


class ConvTranspose2d(Op):
    """PyTorch's ConvTranspose2d: out = (in - 1) * stride - 2 * padding + kernel + output_padding.

    Neutral weight ``(in, out, kh, kw)`` as in PyTorch and ONNX.
    """

    name = "conv_transpose2d"
    params_model = ConvTransposeParams

    def geometry(self, node: str, p: ConvTransposeParams) -> tuple[tuple[int, ...], ...]:
        k, s = pair(p.kernel, 2), pair(p.stride, 2)
        pad, op = pair(p.padding, 2), pair(p.output_padding, 2)
        if any(len(v) != 2 for v in (k, s, pad, op)):
            raise ShapeMismatchError("kernel/stride/padding need 1 or 2 values", node=node)
        if any(o >= st for o, st in zip(op, s, strict=True)):
            raise ShapeMismatchError(f"output_padding {list(op)} must be < stride", node=node)
        return k, s, pad, op

    def infer(self, node: str, p: ConvTransposeParams, ins: list[TensorInfo]) -> TensorInfo:
        expect_rank(node, "input [C, H, W]", ins[0], (3,))
        k, s, pad, op = self.geometry(node, p)
        hw = tuple(
            (n - 1) * s[i] - 2 * pad[i] + k[i] + op[i] for i, n in enumerate(ins[0].shape[1:])
        )
        return TensorInfo(positive(node, (p.filters, *hw), f"conv_transpose2d on {ins[0].shape}"))

    def weights(self, p: ConvTransposeParams, ins: list[TensorInfo]) -> dict[str, WeightDef]:
        k = pair(p.kernel, 2)
        fan_in = p.filters * math.prod(k)
        w = {"weight": WeightDef((ins[0].shape[0], p.filters, *k), "he", fan_in)}
        if p.bias:
            w["bias"] = WeightDef((p.filters,), "uniform", fan_in)
        return w

    def macs(self, p: ConvTransposeParams, ins: list[TensorInfo], out: TensorInfo) -> int:
        return ins[0].size * p.filters * math.prod(pair(p.kernel, 2))


RESAMPLE_OPS: list[Op] = [ConvTranspose2d()]
