"""Validates a ModelSpec into a SpecGraph: typed params, topological order, inferred shapes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from probes.errors import (
    ArityError,
    CycleError,
    NonPositiveDimError,
    ParamError,
    ShapeMismatchError,
    SpecError,
    UnknownInputError,
    UnknownOpError,
    UnreachableNodeError,
)
from probes.spec.model import ModelSpec, NodeSpec
from probes.spec.ops_base import Op, TensorInfo
from probes.spec.ops_core import CORE_OPS
from probes.spec.ops_custom import CUSTOM_OPS
from probes.spec.ops_norm_act import NORM_ACT_OPS
from probes.spec.ops_resample import RESAMPLE_OPS
from probes.spec.ops_seq import SEQ_OPS
from probes.spec.ops_spatial import SPATIAL_OPS
from probes.spec.ops_tensor import TENSOR_OPS

OPS: dict[str, Op] = {
    op.name: op
    for op in (
        *CORE_OPS,
        *NORM_ACT_OPS,
        *SPATIAL_OPS,
        *RESAMPLE_OPS,
        *TENSOR_OPS,
        *SEQ_OPS,
        *CUSTOM_OPS,
    )
}


@dataclass(frozen=True)
class GraphNode:
    id: str
    op: str
    inputs: tuple[str, ...]
    params: Any
    out: TensorInfo

    @property
    def impl(self) -> Op:
        return OPS[self.op]


@dataclass(frozen=True)
class SpecGraph:
    """A validated spec: nodes in topological order with their output tensors."""

    spec: ModelSpec
    nodes: tuple[GraphNode, ...]
    tensors: dict[str, TensorInfo]

    def inputs_of(self, node: GraphNode) -> list[TensorInfo]:
        return [self.tensors[i] for i in node.inputs]


def _typed_params(n: NodeSpec, index: int) -> Any:
    if n.op not in OPS:
        raise UnknownOpError(
            f"unknown op '{n.op}' (known: {', '.join(sorted(OPS))})",
            node=n.id,
            path=f"nodes.{index}.op",
        )
    op = OPS[n.op]
    lo, hi = op.arity
    if len(n.inputs) < lo or (hi is not None and len(n.inputs) > hi):
        want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo}..{hi}")
        raise ArityError(
            f"op '{n.op}' takes {want} input(s), found {len(n.inputs)}",
            node=n.id,
            path=f"nodes.{index}.inputs",
        )
    try:
        return op.params_model.model_validate(n.params)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        path = f"nodes.{index}.params.{field}"
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, SpecError):  # e.g. ExpressionError: keep its class and message
            msg = f"bad param '{field}' for op '{n.op}': {cause.message}"
            raise type(cause)(msg, node=n.id, path=path) from None
        raise ParamError(
            f"bad param '{field}' for op '{n.op}': {err['msg']} (got {err.get('input')!r})",
            node=n.id,
            path=path,
        ) from None


def _check_names(spec: ModelSpec) -> None:
    seen = _declared_names(spec)
    for i, n in enumerate(spec.nodes):
        for j, ref in enumerate(n.inputs):
            if ref not in seen:
                raise UnknownInputError(
                    f"input '{ref}' is neither a model input nor a node id",
                    node=n.id,
                    path=f"nodes.{i}.inputs.{j}",
                )
    for i, out in enumerate(spec.outputs):
        if out not in seen:
            raise UnknownInputError(f"output '{out}' is not a node or input", path=f"outputs.{i}")


def _declared_names(spec: ModelSpec) -> set[str]:
    """Input names and node ids, each unique; inputs with positive dimensions only."""
    seen: set[str] = set()
    for i, inp in enumerate(spec.inputs):
        if inp.name in seen:
            raise SpecError(f"duplicate input name '{inp.name}'", path=f"inputs.{i}.name")
        seen.add(inp.name)
        if not inp.shape or any(d <= 0 for d in inp.shape):
            raise NonPositiveDimError(
                f"input '{inp.name}' has shape {inp.shape}; every dimension must be positive",
                path=f"inputs.{i}.shape",
            )
    for i, n in enumerate(spec.nodes):
        if n.id in seen:
            raise SpecError(
                "duplicate id (ids and input names must be unique)", node=n.id, path=f"nodes.{i}.id"
            )
        seen.add(n.id)
    return seen


def _topo_order(spec: ModelSpec) -> list[int]:
    index = {n.id: i for i, n in enumerate(spec.nodes)}
    indeg = [sum(1 for r in n.inputs if r in index) for n in spec.nodes]
    users: dict[str, list[int]] = {}
    for i, n in enumerate(spec.nodes):
        for r in n.inputs:
            users.setdefault(r, []).append(i)
    ready = deque(i for i, d in enumerate(indeg) if d == 0)
    order: list[int] = []
    while ready:
        i = ready.popleft()
        order.append(i)
        for u in users.get(spec.nodes[i].id, []):
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
    if len(order) < len(spec.nodes):
        stuck = [spec.nodes[i].id for i, d in enumerate(indeg) if d > 0]
        raise CycleError(f"the graph has a cycle through {stuck}", node=stuck[0])
    return order


def _check_reachable(spec: ModelSpec) -> None:
    by_id = {n.id: n for n in spec.nodes}
    live: set[str] = set()
    stack = list(spec.outputs)
    while stack:
        cur = stack.pop()
        if cur in live:
            continue
        live.add(cur)
        if cur in by_id:
            stack.extend(by_id[cur].inputs)
    for i, n in enumerate(spec.nodes):
        if n.id not in live:
            raise UnreachableNodeError(
                "unreachable: no output depends on this node", node=n.id, path=f"nodes.{i}"
            )


def build_graph(spec: ModelSpec) -> SpecGraph:
    """Validate ``spec`` and infer every tensor's shape. Raises a SpecError naming the node."""
    _check_names(spec)
    params = [_typed_params(n, i) for i, n in enumerate(spec.nodes)]
    order = _topo_order(spec)
    _check_reachable(spec)
    tensors = {i.name: TensorInfo(tuple(i.shape), i.dtype) for i in spec.inputs}
    nodes: list[GraphNode] = []
    for i in order:
        n = spec.nodes[i]
        op = OPS[n.op]
        ins = [tensors[r] for r in n.inputs]
        for j, t in enumerate(ins):
            if op.float_only and t.dtype != "float32":
                raise ShapeMismatchError(
                    f"op '{n.op}' expected a float32 input, found {t.dtype} from '{n.inputs[j]}'",
                    node=n.id,
                    path=f"nodes.{i}.inputs.{j}",
                )
        try:
            out = op.infer(n.id, params[i], ins)
        except SpecError as e:
            e.path = e.path or f"nodes.{i}"
            raise
        tensors[n.id] = out
        nodes.append(GraphNode(n.id, n.op, tuple(n.inputs), params[i], out))
    return SpecGraph(spec=spec, nodes=tuple(nodes), tensors=tensors)
