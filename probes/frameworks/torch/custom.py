"""PyTorch side of the ``custom`` op: native lowering, explicit grad, opaque kernel.

Imported only inside probe worker processes (through ``build_torch``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from probes.errors import NotDifferentiableError
from probes.spec.ops_custom import (
    CustomProgram,
    numpy_backward,
    numpy_forward,
    run_backward,
    run_forward,
)

TORCH: dict[str, Callable[..., Any]] = {
    "exp": torch.exp,
    "log": torch.log,
    "log1p": torch.log1p,
    "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt,
    "abs": torch.abs,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "sin": torch.sin,
    "cos": torch.cos,
    "erf": torch.erf,
    "square": torch.square,
    "minimum": torch.minimum,
    "maximum": torch.maximum,
    "clip": torch.clamp,
    "where": torch.where,
    "sum": lambda v, a, k: torch.sum(v, dim=a, keepdim=k),
    "mean": lambda v, a, k: torch.mean(v, dim=a, keepdim=k),
    "max": lambda v, a, k: torch.amax(v, dim=a, keepdim=k),
    "min": lambda v, a, k: torch.amin(v, dim=a, keepdim=k),
    "scalar": lambda v, ref: torch.full((), v, dtype=ref.dtype, device=ref.device),
    "full_like": lambda ref, v: torch.full_like(ref, v),
}
GRAD_MODES = ("autodiff", "explicit", "opaque")


class _ExplicitGrad(torch.autograd.Function):
    """Native forward; backward lowers the declared grad expressions."""

    @staticmethod
    def forward(ctx: Any, prog: CustomProgram, *xs: torch.Tensor) -> torch.Tensor:
        y = run_forward(prog, TORCH, xs)
        ctx.prog = prog
        ctx.save_for_backward(*xs, y)
        return y

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        *xs, y = ctx.saved_tensors
        return (None, *run_backward(ctx.prog, TORCH, xs, y, g))


def not_differentiable(prog: CustomProgram) -> NotDifferentiableError:
    return NotDifferentiableError(
        f"custom op '{prog.name}' is opaque and declares no grad, so it cannot be trained; "
        "add `grad` expressions or set `opaque: false`"
    )


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _like(a: np.ndarray, t: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(device=t.device, dtype=t.dtype)


_OPAQUE: dict[str, Any] = {}


def opaque_op(prog: CustomProgram) -> Any:
    """``torch.ops.fwadvisor.<key>``: a kernel autograd and compilers cannot look into.

    Runs the numpy evaluator. Defined once per process per key (name + expression and
    shape hash). Its backward is a second opaque op, so torch.compile and torch.export
    can trace around both through their fake (shape-only) implementations.
    """
    if prog.key in _OPAQUE:
        return _OPAQUE[prog.key]
    xs_schema = ", ".join(f"Tensor x{i}" for i in range(prog.arity))

    def forward(*xs: torch.Tensor) -> torch.Tensor:
        return _like(numpy_forward(prog, [_np(x) for x in xs]), xs[0])

    def backward_impl(*args: torch.Tensor) -> list[torch.Tensor]:
        *xs, y, g = args
        grads = numpy_backward(prog, [_np(x) for x in xs], _np(y), _np(g))
        return [_like(a, x) for a, x in zip(grads, xs, strict=True)]

    op = torch.library.custom_op(
        f"fwadvisor::{prog.key}", forward, mutates_args=(), schema=f"({xs_schema}) -> Tensor"
    )
    op.register_fake(lambda *xs: xs[0].new_empty((xs[0].shape[0], *prog.out_shape)))
    bwd = torch.library.custom_op(
        f"fwadvisor::{prog.key}_backward",
        backward_impl,
        mutates_args=(),
        schema=f"({xs_schema}, Tensor y, Tensor g) -> Tensor[]",
    )
    bwd.register_fake(lambda *args: [x.new_empty(x.shape) for x in args[:-2]])

    def setup(ctx: Any, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        ctx.save_for_backward(*inputs, output)

    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if prog.grads is None:
            raise not_differentiable(prog)
        return tuple(bwd(*ctx.saved_tensors, g))

    op.register_autograd(backward, setup_context=setup)
    _OPAQUE[prog.key] = op
    return op


class CustomExpr(nn.Module):
    """A ``custom`` node: native ops, native ops with an explicit grad, or opaque."""

    def __init__(self, prog: CustomProgram) -> None:
        super().__init__()
        self.prog = prog
        self.op = opaque_op(prog) if prog.opaque else None

    def extra_repr(self) -> str:
        grad = "explicit" if self.prog.grads is not None else "autodiff"
        return f"{self.prog.name}, opaque={self.prog.opaque}, grad={grad}"

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.op is not None:
            return self.op(*xs)
        if self.prog.grads is not None:
            out = _ExplicitGrad.apply(self.prog, *xs)
            return cast(torch.Tensor, out)
        return run_forward(self.prog, TORCH, xs)


def custom_grads(
    prog: CustomProgram,
    arrays: Sequence[np.ndarray],
    upstream: np.ndarray,
    mode: str,
    dtype: torch.dtype = torch.float64,
) -> list[np.ndarray]:
    """dLoss/dx_i for loss = sum(y * upstream), as torch computes it in ``mode``.

    ``autodiff`` differentiates the native forward, ``explicit`` runs the declared grad
    as an autograd.Function, ``opaque`` goes through the opaque kernel's autograd.
    """
    assert mode in GRAD_MODES, mode
    variant = replace(
        prog, opaque=mode == "opaque", grads=None if mode == "autodiff" else prog.grads
    )
    xs = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    y = CustomExpr(variant)(*xs)
    (y * torch.tensor(upstream, dtype=dtype)).sum().backward()
    return [x.grad.detach().to(torch.float64).numpy() for x in xs]  # type: ignore[union-attr]
