"""Dense, normalisation, activations, elementwise and shape ops."""

from __future__ import annotations

import math

from pydantic import Field

from probes.errors import ShapeMismatchError
from probes.spec.ops_base import (
    NoParams,
    Op,
    Params,
    TensorInfo,
    WeightDef,
    expect_rank,
    norm_axis,
    positive,
)


class DenseParams(Params):
    units: int = Field(gt=0)
    bias: bool = True


class Dense(Op):
    """Linear map over the last axis: ``y = x W^T + b`` with neutral W of shape (out, in)."""

    name = "dense"
    params_model = DenseParams

    def infer(self, node: str, p: DenseParams, ins: list[TensorInfo]) -> TensorInfo:
        if ins[0].rank < 1:
            raise ShapeMismatchError("dense needs an input of rank >= 1", node=node)
        return TensorInfo((*ins[0].shape[:-1], p.units))

    def weights(self, p: DenseParams, ins: list[TensorInfo]) -> dict[str, WeightDef]:
        fan_in = ins[0].shape[-1]
        w = {"weight": WeightDef((p.units, fan_in), "he", fan_in)}
        if p.bias:
            w["bias"] = WeightDef((p.units,), "uniform", fan_in)
        return w

    def macs(self, p: DenseParams, ins: list[TensorInfo], out: TensorInfo) -> int:
        return out.size * ins[0].shape[-1]


ACTIVATIONS = ("relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardswish")


def _activation(op_name: str) -> Op:
    cls: type[Op] = type(op_name.capitalize(), (Op,), {"name": op_name})
    return cls()


class SoftmaxParams(Params):
    axis: int = -1


class Softmax(Op):
    name = "softmax"
    params_model = SoftmaxParams

    def infer(self, node: str, p: SoftmaxParams, ins: list[TensorInfo]) -> TensorInfo:
        norm_axis(node, p.axis, ins[0].rank)
        return ins[0]


class BatchNormParams(Params):
    eps: float = Field(default=1e-5, gt=0)
    momentum: float = Field(default=0.1, gt=0, lt=1, description="PyTorch convention.")


class BatchNorm(Op):
    """Normalises over channel axis 0 (channels-first). Running stats are buffers."""

    name = "batch_norm"
    params_model = BatchNormParams

    def infer(self, node: str, p: BatchNormParams, ins: list[TensorInfo]) -> TensorInfo:
        expect_rank(node, "input", ins[0], (1, 2, 3))
        return ins[0]

    def weights(self, p: BatchNormParams, ins: list[TensorInfo]) -> dict[str, WeightDef]:
        c = (ins[0].shape[0],)
        return {
            "gamma": WeightDef(c, "ones_ish"),
            "beta": WeightDef(c, "zeros_ish"),
            "running_mean": WeightDef(c, "mean", trainable=False),
            "running_var": WeightDef(c, "var", trainable=False),
        }


class LayerNormParams(Params):
    eps: float = Field(default=1e-5, gt=0)


class LayerNorm(Op):
    """Normalises over the last axis."""

    name = "layer_norm"
    params_model = LayerNormParams

    def weights(self, p: LayerNormParams, ins: list[TensorInfo]) -> dict[str, WeightDef]:
        c = (ins[0].shape[-1],)
        return {"gamma": WeightDef(c, "ones_ish"), "beta": WeightDef(c, "zeros_ish")}


class DropoutParams(Params):
    rate: float = Field(default=0.5, ge=0, lt=1)


class Dropout(Op):
    name = "dropout"
    params_model = DropoutParams


class _Elementwise(Op):
    arity = (2, None)

    def infer(self, node: str, p: NoParams, ins: list[TensorInfo]) -> TensorInfo:
        for i, t in enumerate(ins[1:], start=1):
            if t.shape != ins[0].shape:
                raise ShapeMismatchError(
                    f"{self.name} needs equal shapes: expected {list(ins[0].shape)} "
                    f"(input 0), found {list(t.shape)} (input {i})",
                    node=node,
                )
        return ins[0]


class Add(_Elementwise):
    name = "add"


class Multiply(_Elementwise):
    name = "multiply"


class ConcatParams(Params):
    axis: int = -1


class Concat(Op):
    name = "concat"
    params_model = ConcatParams
    arity = (2, None)

    def infer(self, node: str, p: ConcatParams, ins: list[TensorInfo]) -> TensorInfo:
        rank = ins[0].rank
        ax = norm_axis(node, p.axis, rank)
        ref = [d for i, d in enumerate(ins[0].shape) if i != ax]
        total = 0
        for i, t in enumerate(ins):
            other = [d for j, d in enumerate(t.shape) if j != ax] if t.rank == rank else None
            if other != ref:
                raise ShapeMismatchError(
                    f"concat on axis {p.axis}: expected input {i} to match {list(ins[0].shape)} "
                    f"except on that axis, found {list(t.shape)}",
                    node=node,
                )
            total += t.shape[ax]
        shape = list(ins[0].shape)
        shape[ax] = total
        return TensorInfo(tuple(shape))


class Flatten(Op):
    name = "flatten"
    float_only = False

    def infer(self, node: str, p: NoParams, ins: list[TensorInfo]) -> TensorInfo:
        return TensorInfo((ins[0].size,), ins[0].dtype)


class ReshapeParams(Params):
    shape: list[int] = Field(min_length=1)


class Reshape(Op):
    """Per-sample reshape in channels-first order; one dimension may be -1."""

    name = "reshape"
    params_model = ReshapeParams
    float_only = False

    def infer(self, node: str, p: ReshapeParams, ins: list[TensorInfo]) -> TensorInfo:
        target = list(p.shape)
        if target.count(-1) > 1 or any(d == 0 or d < -1 for d in target):
            raise ShapeMismatchError(
                f"reshape target {target} may hold one -1 and otherwise positive sizes",
                node=node,
            )
        known = math.prod(d for d in target if d != -1)
        if -1 in target:
            if ins[0].size % known:
                raise ShapeMismatchError(
                    f"cannot reshape {list(ins[0].shape)} ({ins[0].size} elements) to {target}",
                    node=node,
                )
            target[target.index(-1)] = ins[0].size // known
        if math.prod(target) != ins[0].size:
            raise ShapeMismatchError(
                f"reshape expected {math.prod(target)} elements for {list(p.shape)}, "
                f"found {ins[0].size} in {list(ins[0].shape)}",
                node=node,
            )
        return TensorInfo(tuple(target), ins[0].dtype)


class PermuteParams(Params):
    dims: list[int] = Field(min_length=1)


class Permute(Op):
    """Reorders per-sample axes (0-based, batch stays first)."""

    name = "permute"
    params_model = PermuteParams
    float_only = False

    def infer(self, node: str, p: PermuteParams, ins: list[TensorInfo]) -> TensorInfo:
        if sorted(p.dims) != list(range(ins[0].rank)):
            raise ShapeMismatchError(
                f"permute dims {p.dims} must be a permutation of 0..{ins[0].rank - 1} "
                f"for input shape {list(ins[0].shape)}",
                node=node,
            )
        return TensorInfo(tuple(ins[0].shape[d] for d in p.dims), ins[0].dtype)


class MeanParams(Params):
    axis: int
    keepdims: bool = False


class Mean(Op):
    name = "mean"
    params_model = MeanParams

    def infer(self, node: str, p: MeanParams, ins: list[TensorInfo]) -> TensorInfo:
        ax = norm_axis(node, p.axis, ins[0].rank)
        shape = list(ins[0].shape)
        if p.keepdims:
            shape[ax] = 1
        else:
            del shape[ax]
        if not shape:
            raise ShapeMismatchError("mean would leave a scalar per sample", node=node)
        return TensorInfo(positive(node, tuple(shape), "mean"))


CORE_OPS: list[Op] = [
    Dense(),
    *[_activation(a) for a in ACTIVATIONS],
    Softmax(),
    BatchNorm(),
    LayerNorm(),
    Dropout(),
    Add(),
    Multiply(),
    Concat(),
    Flatten(),
    Reshape(),
    Permute(),
    Mean(),
]
