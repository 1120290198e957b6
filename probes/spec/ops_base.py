"""Op protocol: parameters, arity, shape inference, weights and MACs of one op."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from probes.errors import NonPositiveDimError, ShapeMismatchError

Shape = tuple[int, ...]
InitKind = Literal["he", "uniform", "ones_ish", "zeros_ish", "mean", "var", "normal"]


@dataclass(frozen=True)
class TensorInfo:
    """Per-sample shape (batch excluded) and dtype of one tensor."""

    shape: Shape
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class WeightDef:
    """One neutral weight array: its shape, how it is initialised, whether it trains."""

    shape: Shape
    init: InitKind
    fan_in: int = 1
    trainable: bool = True

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


class Op:
    """Base op. Subclasses set ``name``/``params_model``/``arity`` and override hooks."""

    name: ClassVar[str]
    params_model: ClassVar[type[Params]] = NoParams
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    float_only: ClassVar[bool] = True

    def infer(self, node: str, p: Any, ins: list[TensorInfo]) -> TensorInfo:
        return ins[0]

    def weights(self, p: Any, ins: list[TensorInfo]) -> dict[str, WeightDef]:
        return {}

    def macs(self, p: Any, ins: list[TensorInfo], out: TensorInfo) -> int:
        """Multiply-accumulates per sample. FLOPs are reported as 2 x MACs."""
        return 0


def norm_axis(node: str, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ShapeMismatchError(
            f"axis {axis} is out of range for a per-sample tensor of rank {rank}", node=node
        )
    return axis % rank


def expect_rank(node: str, what: str, t: TensorInfo, ranks: tuple[int, ...]) -> None:
    if t.rank not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ShapeMismatchError(
            f"expected {what} of per-sample rank {want}, found shape {list(t.shape)} "
            f"(rank {t.rank})",
            node=node,
        )


def positive(node: str, shape: Shape, why: str) -> Shape:
    if any(d <= 0 for d in shape):
        raise NonPositiveDimError(f"{why} gives non-positive dimension {list(shape)}", node=node)
    return shape
