"""Ops imported models need as first-class nodes: leaky/parametric ReLU, global max
pooling, group and instance normalization. Each is one native layer in both builders."""

from __future__ import annotations

from pydantic import Field

from probes.errors import ShapeMismatchError
from probes.spec.ops_base import NoParams, Op, Params, TensorInfo, WeightDef, expect_rank


class LeakyReluParams(Params):
    alpha: float = Field(default=0.01, ge=0, description="Slope for negative inputs.")


class LeakyRelu(Op):
    name = "leaky_relu"
    params_model = LeakyReluParams


class PRelu(Op):
    """``max(x, 0) + alpha * min(x, 0)`` with one learned slope per channel (axis 0,
    or the only axis of a vector), as torch.nn.PReLU(num_parameters=C)."""

    name = "prelu"
    params_model = NoParams

    def weights(self, p: NoParams, ins: list[TensorInfo]) -> dict[str, WeightDef]:
        return {"alpha": WeightDef((ins[0].shape[0],), "zeros_ish")}


class GlobalMaxPool(Op):
    """Max over every spatial axis: [C, *spatial] -> [C]."""

    name = "global_max_pool"
    params_model = NoParams

    def infer(self, node: str, p: NoParams, ins: list[TensorInfo]) -> TensorInfo:
        expect_rank(node, "input [C, *spatial]", ins[0], (2, 3))
        return TensorInfo((ins[0].shape[0],))


class GroupNormParams(Params):
    groups: int = Field(gt=0)
    eps: float = Field(default=1e-5, gt=0)


class InstanceNormParams(Params):
    eps: float = Field(default=1e-5, gt=0)


class GroupNorm(Op):
    """Normalises each group of channels over its channels and positions, then a
    per-channel scale and shift: torch.nn.GroupNorm, keras GroupNormalization."""

    name = "group_norm"
    params_model = GroupNormParams

    def groups(self, p: GroupNormParams | InstanceNormParams, ins: list[TensorInfo]) -> int:
        return p.groups if isinstance(p, GroupNormParams) else ins[0].shape[0]

    def infer(
        self, node: str, p: GroupNormParams | InstanceNormParams, ins: list[TensorInfo]
    ) -> TensorInfo:
        expect_rank(node, "input [C, *spatial]", ins[0], (2, 3, 4))
        c, g = ins[0].shape[0], self.groups(p, ins)
        if c % g:
            raise ShapeMismatchError(f"{c} channels do not split into {g} groups", node=node)
        return ins[0]

    def weights(
        self, p: GroupNormParams | InstanceNormParams, ins: list[TensorInfo]
    ) -> dict[str, WeightDef]:
        c = (ins[0].shape[0],)
        return {"gamma": WeightDef(c, "ones_ish"), "beta": WeightDef(c, "zeros_ish")}


class InstanceNorm(GroupNorm):
    """Group norm with one group per channel (torch.nn.InstanceNorm2d(affine=True))."""

    name = "instance_norm"
    params_model = InstanceNormParams  # type: ignore[assignment]


NORM_ACT_OPS: list[Op] = [LeakyRelu(), PRelu(), GlobalMaxPool(), GroupNorm(), InstanceNorm()]
