"""Tensor ops that imported graphs need: matmul between activations and slicing."""

from __future__ import annotations

from pydantic import Field

from probes.errors import ShapeMismatchError
from probes.spec.ops_base import NoParams, Op, Params, TensorInfo, WeightDef, norm_axis, positive


def broadcast(node: str, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """numpy's broadcasting of two shapes (aligned at the last axis)."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and 1 not in (x, y):
            raise ShapeMismatchError(
                f"shapes {list(a)} and {list(b)} do not broadcast (axis -{i}: {x} vs {y})",
                node=node,
            )
        out.append(max(x, y))
    return tuple(reversed(out))


class MatMul(Op):
    """``a @ b`` over the last two axes, leading axes broadcast: [..., M, K] @ [..., K, N]."""

    name = "matmul"
    params_model = NoParams
    arity = (2, 2)

    def infer(self, node: str, p: NoParams, ins: list[TensorInfo]) -> TensorInfo:
        a, b = ins[0].shape, ins[1].shape
        if len(a) < 2 or len(b) < 2:
            raise ShapeMismatchError(
                f"matmul needs per-sample rank >= 2 on both sides, found {list(a)} and {list(b)}",
                node=node,
            )
        if a[-1] != b[-2]:
            raise ShapeMismatchError(
                f"matmul inner sizes differ: {list(a)} @ {list(b)} ({a[-1]} vs {b[-2]})",
                node=node,
            )
        lead = broadcast(node, a[:-2], b[:-2])
        return TensorInfo((*lead, a[-2], b[-1]))

    def macs(self, p: NoParams, ins: list[TensorInfo], out: TensorInfo) -> int:
        return out.size * ins[0].shape[-1]


class SliceParams(Params):
    axis: int
    start: int = 0
    end: int | None = Field(default=None, description="Exclusive; None: to the end.")
    step: int = Field(default=1, gt=0)
    squeeze: bool = Field(default=False, description="Drop the axis (one element selected).")


class Slice(Op):
    """``x[..., start:end:step, ...]`` on one per-sample axis (Python semantics)."""

    name = "slice"
    params_model = SliceParams
    float_only = False

    def infer(self, node: str, p: SliceParams, ins: list[TensorInfo]) -> TensorInfo:
        shape = list(ins[0].shape)
        ax = norm_axis(node, p.axis, len(shape))
        n = len(range(shape[ax])[p.start : p.end : p.step])
        if p.squeeze:
            if n != 1:
                raise ShapeMismatchError(f"squeeze needs one element, the slice has {n}", node=node)
            del shape[ax]
            if not shape:
                raise ShapeMismatchError("slice would leave a scalar per sample", node=node)
        else:
            shape[ax] = n
        return TensorInfo(positive(node, tuple(shape), "slice"), ins[0].dtype)


TENSOR_OPS: list[Op] = [MatMul(), Slice()]


class AffineParams(Params):
    shape: list[int] = Field(min_length=1, description="Weight shape, broadcast to the input.")
    scale: bool = True
    shift: bool = False


class Affine(Op):
    """``x * scale + shift`` with learned tensors broadcast numpy-style over the input
    (layer scale, a constant bias or mask, a decomposed norm's gamma and beta)."""

    name = "affine"
    params_model = AffineParams

    def infer(self, node: str, p: AffineParams, ins: list[TensorInfo]) -> TensorInfo:
        shape = tuple(p.shape)
        if not (p.scale or p.shift) or any(d <= 0 for d in shape):
            raise ShapeMismatchError("affine needs scale or shift and a positive shape", node=node)
        if len(shape) > ins[0].rank or broadcast(node, shape, ins[0].shape) != ins[0].shape:
            raise ShapeMismatchError(
                f"weight shape {list(shape)} must broadcast to the input {list(ins[0].shape)}",
                node=node,
            )
        return ins[0]

    def weights(self, p: AffineParams, ins: list[TensorInfo]) -> dict[str, WeightDef]:
        w = {}
        if p.scale:
            w["scale"] = WeightDef(tuple(p.shape), "ones_ish")
        if p.shift:
            w["shift"] = WeightDef(tuple(p.shape), "zeros_ish")
        return w


TENSOR_OPS.append(Affine())
