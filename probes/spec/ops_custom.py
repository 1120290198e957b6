"""The ``custom`` op: a user expression compiled to native ops in both frameworks.

``CustomParams`` validates every expression when the spec is validated; ``compile_custom``
turns params plus input shapes into a ``CustomProgram`` (IR, shapes, MACs), which the
builders lower with their own function tables (``run_forward``/``run_backward``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from probes.errors import ExpressionError, SpecError
from probes.spec.expr import MAX_INPUTS, MAX_LITERAL, Expr, Reduce, is_reserved, parse, walk
from probes.spec.expr_eval import NUMPY, AxisMap, Table, lower, neutral_axis, reduce_to
from probes.spec.expr_shapes import Shape, count_macs, infer_shape, reducible_to
from probes.spec.model import IDENT, ModelSpec
from probes.spec.ops_base import Op, Params, TensorInfo

CustomMode = Literal["declared", "autodiff", "explicit", "opaque"]


def _grad_expr(src: str, info: ValidationInfo) -> str:
    parse(src, constants=info.data.get("constants", {}), grad=True)
    return src


class CustomParams(Params):
    """``forward``: expression of the inputs; ``grad``: one expression per input giving
    dLoss/dInput from ``g`` (upstream gradient) and ``y`` (output); see docs/spec.md."""

    name: str = Field(pattern=IDENT, max_length=48)
    constants: dict[str, float] = Field(default_factory=dict, max_length=32)
    forward: str
    grad: list[Annotated[str, AfterValidator(_grad_expr)]] | None = Field(
        default=None, min_length=1, max_length=MAX_INPUTS
    )
    opaque: bool = False

    @field_validator("constants")
    @classmethod
    def _constants(cls, v: dict[str, float]) -> dict[str, float]:
        for name, value in v.items():
            if is_reserved(name) or not name.isidentifier() or not name.isascii():
                raise ExpressionError(f"constant name `{name}` is reserved or not an identifier")
            if not math.isfinite(value) or abs(value) > MAX_LITERAL:
                raise ExpressionError(f"constant `{name}` must be finite with |c| <= 1e6")
        return v

    @field_validator("forward")
    @classmethod
    def _forward(cls, v: str, info: ValidationInfo) -> str:
        parse(v, constants=info.data.get("constants", {}))
        return v


@dataclass(frozen=True)
class CustomProgram:
    """A compiled ``custom`` node: IR plus per-sample shapes (neutral layout)."""

    name: str
    key: str  # name + hash of expressions and shapes: one opaque kernel per key
    forward: Expr
    grads: tuple[Expr, ...] | None
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    grad_shapes: tuple[Shape | None, ...]
    opaque: bool
    macs: int

    @property
    def arity(self) -> int:
        return len(self.in_shapes)

    @property
    def has_reduction(self) -> bool:
        roots = (self.forward, *(self.grads or ()))
        return any(isinstance(n, Reduce) for r in roots for n in walk(r))

    @property
    def layout_free(self) -> bool:
        """Elementwise over inputs of one rank: correct in any layout the inputs share."""
        return not self.has_reduction and len({len(s) for s in self.in_shapes}) == 1


def compile_custom(
    p: CustomParams, ins: Sequence[TensorInfo], node: str | None = None
) -> CustomProgram:
    """Parse, type and shape-check a custom node; errors name ``node``."""

    def parsed(src: str, grad: bool) -> Expr:
        try:
            return parse(src, constants=p.constants, grad=grad)
        except ExpressionError as e:
            raise ExpressionError(e.message, node=node) from None

    env = {f"x{i}": t.shape for i, t in enumerate(ins)}
    fwd = parsed(p.forward, False)
    out = infer_shape(fwd, env, node)
    if out is None or not out:
        what = "is a constant" if out is None else "leaves a scalar per sample (keep an axis)"
        raise ExpressionError(f"forward expression {what}", node=node)
    grads: tuple[Expr, ...] | None = None
    grad_shapes: tuple[Shape | None, ...] = ()
    if p.grad is not None:
        if len(p.grad) != len(ins):
            raise ExpressionError(
                f"grad has {len(p.grad)} expression(s); expected one per input ({len(ins)})",
                node=node,
            )
        grads = tuple(parsed(src, True) for src in p.grad)
        genv = {**env, "g": out, "y": out}
        grad_shapes = tuple(infer_shape(e, genv, node) for e in grads)
        for i, (s, t) in enumerate(zip(grad_shapes, ins, strict=True)):
            if not reducible_to(s, t.shape):
                raise ExpressionError(
                    f"grad {i} has shape {list(s or ())}, which does not reduce to "
                    f"input {i}'s shape {list(t.shape)}",
                    node=node,
                )
    blob = json.dumps([p.model_dump(), [list(t.shape) for t in ins]], sort_keys=True)
    key = f"{p.name}_{hashlib.sha256(blob.encode()).hexdigest()[:12]}"
    return CustomProgram(
        p.name, key, fwd, grads, tuple(env.values()), out, grad_shapes, p.opaque,
        count_macs(fwd, env),
    )  # fmt: skip


class Custom(Op):
    """Expression op; see docs/spec.md ("The custom op"). No weights."""

    name = "custom"
    params_model = CustomParams
    arity = (1, MAX_INPUTS)

    def infer(self, node: str, p: CustomParams, ins: list[TensorInfo]) -> TensorInfo:
        return TensorInfo(compile_custom(p, ins, node).out_shape)

    def macs(self, p: CustomParams, ins: list[TensorInfo], out: TensorInfo) -> int:
        return compile_custom(p, ins).macs


CUSTOM_OPS: list[Op] = [Custom()]


def run_forward(
    prog: CustomProgram, table: Table, xs: Sequence[Any], axis_map: AxisMap = neutral_axis
) -> Any:
    """The forward expression on tensors ``xs`` (batch first) with a backend's table."""
    return lower(prog.forward, table, {f"x{i}": x for i, x in enumerate(xs)}, axis_map)


def run_backward(
    prog: CustomProgram,
    table: Table,
    xs: Sequence[Any],
    y: Any,
    g: Any,
    axis_map: AxisMap = neutral_axis,
) -> list[Any]:
    """dLoss/dx_i from the declared grad expressions, each reduced to x_i's shape."""
    assert prog.grads is not None
    env = {**{f"x{i}": x for i, x in enumerate(xs)}, "g": g, "y": y}
    return [
        reduce_to(lower(e, table, env, axis_map), s, prog.in_shapes[i], xs[i], table, axis_map)
        for i, (e, s) in enumerate(zip(prog.grads, prog.grad_shapes, strict=True))
    ]


def _f64(arrays: Sequence[Any]) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def numpy_forward(
    prog: CustomProgram, arrays: Sequence[Any], axis_map: AxisMap = neutral_axis
) -> np.ndarray:
    """Reference forward in float64 (the opaque kernel's implementation)."""
    with np.errstate(all="ignore"):
        out = run_forward(prog, NUMPY, _f64(arrays), axis_map)
    return np.asarray(out, dtype=np.float64)


def numpy_backward(
    prog: CustomProgram,
    arrays: Sequence[Any],
    y: Any,
    g: Any,
    axis_map: AxisMap = neutral_axis,
) -> list[np.ndarray]:
    """Reference declared gradients in float64."""
    xs, (y64, g64) = _f64(arrays), _f64([y, g])
    with np.errstate(all="ignore"):
        grads = run_backward(prog, NUMPY, xs, y64, g64, axis_map)
    return [np.asarray(v, dtype=np.float64) for v in grads]


def with_custom_mode(spec: ModelSpec, mode: CustomMode) -> ModelSpec:
    """A copy of ``spec`` whose custom nodes run in ``mode``.

    ``declared``: as written. ``autodiff``: native ops, framework autodiff (grad dropped),
    the "built-in ops" equivalent. ``explicit``: native ops with the declared grad where
    one is declared (nodes without one use autodiff). ``opaque``: a kernel the framework
    cannot see, differentiable only with a grad.
    """
    if mode == "declared":
        return spec
    customs = [n for n in spec.nodes if n.op == "custom"]
    if mode == "explicit" and not any(n.params.get("grad") for n in customs):
        first = customs[0].id if customs else None
        raise SpecError("mode 'explicit' needs a declared grad on a custom node", node=first)
    nodes = []
    for n in spec.nodes:
        params = dict(n.params)
        if n.op == "custom":
            if mode == "autodiff":
                params.pop("grad", None)
            params["opaque"] = mode == "opaque"
        nodes.append(n.model_copy(update={"params": params}))
    return spec.model_copy(update={"nodes": nodes})
