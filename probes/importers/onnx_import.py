"""ONNX graph -> neutral spec + weights. Walks nodes in order, folding constants first."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from probes.errors import ImportRefusedError, UnsupportedOpsError
from probes.importers import (  # noqa: F401  (each module registers its converters)
    ops_act,
    ops_attention,
    ops_conv,
    ops_dense,
    ops_norm,
    ops_seq,
    ops_shape,
)
from probes.importers.attention_match import INTERNAL, find_attention
from probes.importers.context import BATCH_SENTINEL, Act, Ctx, Unsupported, Value
from probes.importers.fold import fold_node
from probes.importers.fusion import fuse
from probes.importers.onnx_file import MAX_ELEMENTS, STANDARD_DOMAINS
from probes.importers.registry import CONVERTERS, FOLDERS, known
from probes.importers.simplify import simplify
from probes.spec.ops_base import TensorInfo
from probes.weights import NeutralWeights

CONTROL_FLOW = ("If", "Loop", "Scan")


@dataclass
class Imported:
    spec: dict[str, Any]
    weights: NeutralWeights
    shapes: dict[str, TensorInfo]
    extra: dict[str, Any] = field(default_factory=dict)


def _node_label(node: onnx.NodeProto, index: int) -> str:
    return node.name or (node.output[0] if node.output else f"#{index}")


def _prescan(graph: onnx.GraphProto, out: list[tuple[str, str, str]]) -> None:
    """Every node whose op we do not know, custom domains and control flow included."""
    for i, node in enumerate(graph.node):
        label = _node_label(node, i)
        if node.domain not in STANDARD_DOMAINS:
            out.append((f"{node.domain}.{node.op_type}", label, "custom domain"))
        elif node.op_type in ("Loop", "Scan"):
            out.append((node.op_type, label, "control flow cannot be folded"))
        elif node.op_type == "If":
            for attr in node.attribute:
                if attr.HasField("g"):
                    _prescan(attr.g, out)
        elif not known(node.op_type):
            out.append((node.op_type, label, ""))


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _inputs(
    graph: onnx.GraphProto, ctx: Ctx, shapes: dict[str, list[int]] | None
) -> list[dict[str, Any]]:
    inits = {t.name for t in graph.initializer}
    specs: list[dict[str, Any]] = []
    for vi in graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        elem = tt.elem_type
        dtype = {
            onnx.TensorProto.FLOAT: "float32",
            onnx.TensorProto.INT64: "int64",
            onnx.TensorProto.INT32: "int64",
        }.get(elem)
        if dtype is None:
            raise ImportRefusedError(
                f"input '{vi.name}' has element type "
                f"{onnx.TensorProto.DataType.Name(elem)}; only float32 and int64/int32 work"
            )
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if shapes and vi.name in shapes:
            dims = [dims[0] if dims else None, *shapes[vi.name]]
        if len(dims) < 2:
            raise ImportRefusedError(
                f"input '{vi.name}' has rank {len(dims)}: expected a batch axis plus at least one"
            )
        if any(d is None or d <= 0 for d in dims[1:]):
            raise ImportRefusedError(
                f"input '{vi.name}' has dynamic or zero dimensions {dims[1:]} besides the batch; "
                f"give them with --input-shape {vi.name}=D1,D2,..."
            )
        name = ctx.unique(vi.name)
        shape = tuple(int(d) for d in dims[1:] if d is not None)
        if math.prod(shape) > MAX_ELEMENTS:
            raise ImportRefusedError(
                f"input '{vi.name}' has per-sample shape {list(shape)}: more than "
                f"{MAX_ELEMENTS:,} elements"
            )
        ctx.values[vi.name] = Act(name, shape, dtype)
        ctx.tensors[name] = TensorInfo(shape, dtype)
        specs.append({"name": name, "shape": list(shape), "dtype": dtype, "onnx": vi.name})
    if not specs:
        raise ImportRefusedError("the model has no inputs besides its weights")
    return specs


def _batch(graph: onnx.GraphProto) -> int:
    inits = {t.name for t in graph.initializer}
    for vi in graph.input:
        if vi.name not in inits:
            dims = vi.type.tensor_type.shape.dim
            if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
                return int(dims[0].dim_value)
    return BATCH_SENTINEL


def run_nodes(ctx: Ctx, nodes: list[onnx.NodeProto], failed: list[tuple[str, str, str]]) -> None:
    for i, node in enumerate(nodes):
        label = _node_label(node, i)
        ins: list[Value | None] = []
        blocked = False
        for name in node.input:
            if not name:
                ins.append(None)
            elif name in ctx.values:
                ins.append(ctx.values[name])
            else:
                blocked = True
        if blocked:
            continue  # an upstream node already failed; it is the one reported
        try:
            outs = _convert(ctx, node, _attrs(node), ins, label, failed)
        except Unsupported as e:
            failed.append((node.op_type, label, e.why))
            continue
        for name, v in zip(node.output, outs, strict=False):
            if name:
                ctx.bind(name, v)


def _convert(
    ctx: Ctx,
    node: onnx.NodeProto,
    attrs: dict[str, Any],
    ins: list[Value | None],
    label: str,
    failed: list[tuple[str, str, str]],
) -> list[Value]:
    op = node.op_type
    if node.domain == INTERNAL:
        return _attention(ctx, node, ins, label)
    if op == "If":
        return _inline_if(ctx, attrs, ins, failed)
    present = [v for v in ins if v is not None]
    if op in FOLDERS and all(isinstance(v, np.ndarray) for v in present):
        return list(fold_node(op, attrs, [v if isinstance(v, np.ndarray) else None for v in ins]))
    if op not in CONVERTERS:
        raise Unsupported(f"{op} on activations")
    ctx.node_name = label
    ctx.out_used = [bool(o) and ctx.consumers.get(o, 0) > 0 for o in node.output]
    return CONVERTERS[op](ctx, attrs, ins, label)


def _attention(
    ctx: Ctx,
    node: onnx.NodeProto,
    ins: list[Value | None],
    label: str,
) -> list[Value]:
    """A matched attention region as one ``self_attention``; else its nodes one by one."""
    from probes.importers.ops_attention import convert_attention

    region = ctx.regions[node.output[0]]
    try:
        return convert_attention(ctx, region, ins[0], label)
    except Unsupported as e:
        why = e.why
    inner: list[tuple[str, str, str]] = []
    run_nodes(ctx, region.nodes, inner)
    if inner or node.output[0] not in ctx.values:
        raise Unsupported(f"attention block not converted: {why}")
    return [ctx.values[node.output[0]]]


def _inline_if(
    ctx: Ctx, attrs: dict[str, Any], ins: list[Value | None], failed: list[tuple[str, str, str]]
) -> list[Value]:
    cond = ins[0]
    if not isinstance(cond, np.ndarray):
        raise Unsupported("its condition depends on the input data, so it cannot be folded")
    branch: onnx.GraphProto = attrs["then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"]
    for t in branch.initializer:
        ctx.values[t.name] = numpy_helper.to_array(t)
    before = len(failed)
    run_nodes(ctx, list(branch.node), failed)
    if len(failed) > before:
        raise Unsupported("a node inside the chosen branch failed")
    return [ctx.values[o.name] for o in branch.output]


def convert_graph(
    model: onnx.ModelProto, name: str, input_shapes: dict[str, list[int]] | None = None
) -> Imported:
    graph = model.graph
    unknown: list[tuple[str, str, str]] = []
    _prescan(graph, unknown)
    if unknown:
        raise UnsupportedOpsError(unknown)
    ctx = Ctx(batch=_batch(graph))
    for t in graph.initializer:
        ctx.values[t.name] = numpy_helper.to_array(t)
    inputs = _inputs(graph, ctx, input_shapes)
    fused = fuse(list(graph.node), graph)
    nodes, ctx.regions = find_attention(fused, graph)
    used = [*(u for node in fused for u in node.input), *(o.name for o in graph.output)]
    for u in used:
        ctx.consumers[u] = ctx.consumers.get(u, 0) + 1
    failed: list[tuple[str, str, str]] = []
    run_nodes(ctx, nodes, failed)
    if failed:
        raise UnsupportedOpsError(failed)
    outputs = [_output(ctx, o.name, inputs) for o in graph.output]
    for i in inputs:
        del i["onnx"]
        if i["dtype"] == "int64":
            i["max_value"] = ctx.input_max.get(i["name"], 2)
    spec = {
        "name": re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "imported",
        "description": f"imported from ONNX ({model.producer_name or 'unknown producer'})",
        "task": "classification",
        "inputs": inputs,
        "nodes": ctx.nodes,
        "outputs": outputs,
    }
    extra = {
        "format": "onnx",
        "static_batch": None if ctx.batch == BATCH_SENTINEL else ctx.batch,
        "input_dtypes": [_np_dtype(graph, i) for i in _real_inputs(graph)],
    }
    return simplify(Imported(spec, ctx.weights, ctx.tensors, extra))


def _output(ctx: Ctx, name: str, inputs: list[dict[str, Any]]) -> str:
    v = ctx.values.get(name)
    if not isinstance(v, Act):
        raise ImportRefusedError(f"output '{name}' is a constant, not computed from the inputs")
    a = ctx.canonical(v)
    if a.ref in {i["name"] for i in inputs}:
        raise ImportRefusedError(f"output '{name}' is a model input passed through")
    return a.ref


def _real_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    inits = {t.name for t in graph.initializer}
    return [vi for vi in graph.input if vi.name not in inits]


def _np_dtype(graph: onnx.GraphProto, vi: onnx.ValueInfoProto) -> str:
    return str(helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))
