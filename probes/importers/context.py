"""Conversion state: ONNX value names -> constants or spec tensors, and the emitted spec."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from probes.errors import SpecError
from probes.spec.graph import OPS
from probes.spec.ops_base import TensorInfo
from probes.weights import NeutralWeights

#: Stands for a symbolic batch size while folding shape arithmetic.
BATCH_SENTINEL = 9973


class Unsupported(Exception):
    """A node cannot be converted; ``why`` says what about it."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class Act:
    """An activation: spec tensor ``ref`` of per-sample ``shape`` (batch excluded).

    ``perm`` maps the ONNX value's axes to the spec tensor's (batch first) axes: the ONNX
    value is ``transpose(spec tensor with batch, perm)``. None is the identity.
    """

    ref: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    perm: tuple[int, ...] | None = None

    @property
    def batch_axis(self) -> int:
        return 0 if self.perm is None else self.perm.index(0)

    def onnx_shape(self, batch: int) -> tuple[int, ...]:
        full = (batch, *self.shape)
        return full if self.perm is None else tuple(full[p] for p in self.perm)


@dataclass(frozen=True)
class Padded:
    """A zero ``Pad`` not yet applied: the next Conv takes ``pads`` into its own padding."""

    act: Act
    pads: tuple[int, ...]  # ONNX order: begins of every axis, then ends


Value = Act | Padded | np.ndarray


@dataclass
class Ctx:
    batch: int
    values: dict[str, Value] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    weights: NeutralWeights = field(default_factory=dict)
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    consumers: dict[str, int] = field(default_factory=dict)
    ref_users: dict[str, int] = field(default_factory=dict)
    input_max: dict[str, int] = field(default_factory=dict)
    used_ids: set[str] = field(default_factory=set)
    node_name: str = "node"
    out_used: list[bool] = field(default_factory=list)
    regions: dict[str, Any] = field(default_factory=dict)  # attention_match.Region by output

    def unique(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", hint).strip("_") or "n"
        if not re.match(r"[A-Za-z_]", base):
            base = f"n_{base}"
        name, i = base, 1
        while name in self.used_ids:
            i += 1
            name = f"{base}_{i}"
        self.used_ids.add(name)
        return name

    def emit(
        self,
        op: str,
        inputs: list[Act],
        params: dict[str, Any] | None = None,
        weights: dict[str, np.ndarray] | None = None,
        hint: str | None = None,
    ) -> Act:
        """Append one spec node; its output shape comes from the spec op's own inference."""
        node_id = self.unique(hint or self.node_name)
        params = params or {}
        impl = OPS[op]
        try:
            typed = impl.params_model.model_validate(params)
            out = impl.infer(node_id, typed, [self.tensors[a.ref] for a in inputs])
            defs = impl.weights(typed, [self.tensors[a.ref] for a in inputs])
        except SpecError as e:
            raise Unsupported(e.message) from None
        except ValueError as e:
            raise Unsupported(f"{op} params {params}: {str(e).splitlines()[0]}") from None
        for name, d in defs.items():
            arr = (weights or {}).get(name)
            if arr is None or tuple(arr.shape) != d.shape:
                found = "none" if arr is None else list(arr.shape)
                raise Unsupported(f"{op} weight '{name}' expected {list(d.shape)}, got {found}")
        if weights:
            self.weights[node_id] = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        self.nodes.append(
            {"id": node_id, "op": op, "inputs": [a.ref for a in inputs], "params": params}
        )
        self.tensors[node_id] = out
        return Act(node_id, out.shape, out.dtype)

    def bind(self, name: str, v: Value) -> None:
        """Name an ONNX value; counts how many ONNX consumers each spec tensor has."""
        self.values[name] = v
        if isinstance(v, Act):
            self.ref_users[v.ref] = self.ref_users.get(v.ref, 0) + self.consumers.get(name, 0)

    def node(self, ref: str) -> dict[str, Any] | None:
        return next((n for n in reversed(self.nodes) if n["id"] == ref), None)

    def canonical(self, a: Act) -> Act:
        """The same value with batch first and axes in spec order (a permute if needed)."""
        if a.perm is None or a.perm == tuple(range(len(a.perm))):
            return Act(a.ref, a.shape, a.dtype)
        if a.perm[0] != 0:
            raise Unsupported(f"a transpose moves the batch axis to position {a.batch_axis}")
        dims = [p - 1 for p in a.perm[1:]]
        return self.emit("permute", [Act(a.ref, a.shape, a.dtype)], {"dims": dims})

    def act(self, v: Value | None, what: str = "input") -> Act:
        if isinstance(v, Act):
            return self.canonical(v)
        if isinstance(v, Padded):
            raise Unsupported(f"{what} is zero-padded by a Pad that no Conv absorbs")
        raise Unsupported(f"{what} is a constant where an activation was expected")


def const(v: Value | None, what: str) -> np.ndarray:
    if v is None:
        raise Unsupported(f"{what} is missing")
    if isinstance(v, Act | Padded):
        raise Unsupported(f"{what} must be a constant (an initializer or folded shape arithmetic)")
    return v


def onnx_axis(axis: int, rank: int) -> int:
    """ONNX axis over the full (batch-first) tensor -> per-sample spec axis."""
    a = axis % rank if -rank <= axis < rank else None
    if a is None:
        raise Unsupported(f"axis {axis} out of range for rank {rank}")
    if a == 0:
        raise Unsupported("the op works along the batch axis")
    return a - 1
