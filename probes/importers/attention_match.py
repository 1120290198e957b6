"""Find multi-head self-attention subgraphs in an ONNX node list (structure only).

A match is a Softmax whose input is ``MatMul(q, k)`` (through scalar scales and a
constant mask) and whose output feeds ``MatMul(p, v)``, where q, k and v each lead back,
through layout ops only, to a projection (MatMul/Gemm with a constant weight) of one
shared input ``x``, and the attention output leads, through layout ops, to an output
projection. The whole region is replaced by one internal node (domain ``INTERNAL``);
``ops_attention`` then reads its weights, head count, scale and mask, and refuses it
with a clear reason when they are not what ``self_attention`` computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx
from onnx import helper

Node = onnx.NodeProto
INTERNAL = "fwadvisor.internal"
LAYOUT = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Gather", "Slice", "Split"}
PASS = {"Identity", "Cast", "Dropout"}
SCALE = {"Mul", "Div"}
PROJ = {"MatMul", "Gemm"}
MAX_WALK = 64  # nodes between two anchors of one attention block


@dataclass
class Region:
    """One matched attention: its ONNX nodes and the roles the converter needs."""

    x: str
    y: str
    proj: dict[str, Node]  # q, k, v, o -> the MatMul/Gemm
    bias: dict[str, Node]  # q, k, v, o -> the bias Add, when there is one
    paths: dict[str, list[Node]]  # q, k, v, scores, post -> nodes between the anchors
    softmax: Node
    mm: tuple[Node, Node]  # MatMul(q, k) and MatMul(p, v)
    tail: list[Node] = field(default_factory=list)  # layout nodes after the output proj
    nodes: list[Node] = field(default_factory=list)  # every node replaced, in graph order


class _Flow:
    def __init__(self, nodes: list[Node], graph: onnx.GraphProto) -> None:
        inits = {t.name for t in graph.initializer}
        self.dep: set[str] = {i.name for i in graph.input if i.name not in inits}
        self.producer: dict[str, Node] = {}
        self.users: dict[str, list[Node]] = {}
        for n in nodes:
            for o in n.output:
                self.producer[o] = n
            for i in dict.fromkeys(n.input):
                self.users.setdefault(i, []).append(n)
            if n.op_type not in ("Shape", "Size") and any(i in self.dep for i in n.input):
                self.dep.update(o for o in n.output if o)
        self.outputs = {o.name for o in graph.output}

    def dep_inputs(self, n: Node) -> list[str]:
        return [i for i in n.input if i in self.dep]

    def single_user(self, value: str) -> Node | None:
        """The one consumer of ``value`` besides Shape/Size (shape arithmetic on it)."""
        users = [u for u in self.users.get(value, []) if u.op_type not in ("Shape", "Size")]
        if len(users) == 1 and value not in self.outputs:
            return users[0]
        return None

    def is_proj(self, n: Node) -> bool:
        return (
            n.op_type in PROJ
            and len(n.input) > 1
            and n.input[0] in self.dep
            and n.input[1] not in self.dep
        )


def _back(f: _Flow, value: str, allowed: set[str]) -> tuple[list[Node], Node | None, Node | None]:
    """Walk from ``value`` back through ``allowed`` one-activation ops to a projection.

    Returns the nodes walked (nearest first), the projection and its bias Add (if any).
    """
    path: list[Node] = []
    for _ in range(MAX_WALK):  # a cyclic (malformed) graph cannot loop forever
        n = f.producer.get(value)
        if n is None or len(f.dep_inputs(n)) != 1:
            return path, None, None
        if f.is_proj(n):
            return path, n, None
        if n.op_type == "Add":
            src = f.producer.get(f.dep_inputs(n)[0])
            if src is not None and f.is_proj(src):
                return path, src, n
            return path, None, None
        if n.op_type not in allowed:
            return path, None, None
        path.append(n)
        value = f.dep_inputs(n)[0]
    return path, None, None


def _scores(f: _Flow, softmax: Node) -> tuple[list[Node], Node | None]:
    path: list[Node] = []
    value = softmax.input[0]
    for _ in range(MAX_WALK):  # a cyclic (malformed) graph cannot loop forever
        n = f.producer.get(value)
        if n is None:
            return path, None
        deps = f.dep_inputs(n)
        if n.op_type == "MatMul" and len(deps) == 2:
            return path, n
        ok = n.op_type in {*SCALE, *PASS, "Add"} and len(deps) == 1
        ok = ok or (n.op_type == "Where" and deps == [n.input[1]])
        if not ok:
            return path, None
        path.append(n)
        value = deps[0]
    return path, None


def _to_values(f: _Flow, softmax: Node) -> tuple[list[Node], Node | None]:
    path: list[Node] = []
    value = softmax.output[0]
    for _ in range(MAX_WALK):  # a cyclic (malformed) graph cannot loop forever
        n = f.single_user(value)
        if n is None:
            return path, None
        if n.op_type == "MatMul" and n.input[0] == value:
            return path, n
        if n.op_type not in PASS:
            return path, None
        path.append(n)
        value = n.output[0]
    return path, None


def _forward(f: _Flow, value: str) -> tuple[list[Node], Node | None, Node | None, str]:
    """From the attention output through layout ops to the output projection (+ bias)."""
    path: list[Node] = []
    for _ in range(MAX_WALK):  # a cyclic (malformed) graph cannot loop forever
        n = f.single_user(value)
        if n is None:
            return path, None, None, value
        if f.is_proj(n) and n.input[0] == value:
            out = n.output[0]
            add = f.single_user(out)
            if add is not None and add.op_type == "Add" and len(f.dep_inputs(add)) == 1:
                return path, n, add, add.output[0]
            return path, n, None, out
        if n.op_type not in LAYOUT | PASS or len(f.dep_inputs(n)) != 1:
            return path, None, None, value
        path.append(n)
        value = n.output[0]
    return path, None, None, value


def _tail(f: _Flow, value: str) -> list[Node]:
    """At most one Reshape then one Transpose: how exporters restore the input's layout."""
    tail: list[Node] = []
    for op in ("Reshape", "Transpose"):
        n = f.single_user(value)
        if n is not None and n.op_type == op and n.input[0] == value:
            tail.append(n)
            value = n.output[0]
    return tail


def _core(f: _Flow, softmax: Node) -> tuple[list[Node], Node, Node, list[str]] | None:
    """Score-path nodes, the two MatMuls (the Attention node twice) and the q, k, v values."""
    if softmax.op_type == "Attention":  # opset 23: softmax(q k^T * scale) v in one node
        ins = list(softmax.input)
        if len(ins) < 3 or any(ins[3:]) or any(f.users.get(o) for o in softmax.output[1:]):
            return None
        return [], softmax, softmax, ins[:3]
    spath, m1 = _scores(f, softmax)
    vpath, m2 = _to_values(f, softmax)
    if m1 is None or m2 is None or m2.input[1] not in f.dep:
        return None
    return [*spath, *vpath], m1, m2, [m1.input[0], m1.input[1], m2.input[1]]


def match(f: _Flow, softmax: Node) -> Region | None:
    core = _core(f, softmax)
    if core is None:
        return None
    spath, m1, m2, (qv, kv, vv) = core
    walk = LAYOUT | PASS | SCALE
    (qp, q, qb), (kp, k, kb) = _back(f, qv, walk), _back(f, kv, walk)
    vp, v, vb = _back(f, vv, LAYOUT | PASS)
    post, o, ob, y = _forward(f, m2.output[0])
    if q is None or k is None or v is None or o is None:
        return None
    if len({q.input[0], k.input[0], v.input[0]}) != 1:
        return None  # cross-attention: not self-attention
    tail = _tail(f, y)
    if tail:
        y = tail[-1].output[0]
    proj = {"q": q, "k": k, "v": v, "o": o}
    bias = {r: b for r, b in zip("qkvo", (qb, kb, vb, ob), strict=True) if b is not None}
    paths = {"q": qp, "k": kp, "v": vp, "scores": spath, "post": post}
    return Region(q.input[0], y, proj, bias, paths, softmax, (m1, m2), tail)


def _closure(f: _Flow, r: Region, nodes: list[Node]) -> list[Node] | None:
    """The region's nodes in graph order, shape arithmetic on its values included; None
    when a value inside it is used outside (then the nodes convert one by one)."""
    order = {id(n): i for i, n in enumerate(nodes)}
    core = {id(n): n for n in (*r.proj.values(), *r.bias.values(), *r.tail, r.softmax, *r.mm)}
    for p in r.paths.values():
        core.update({id(n): n for n in p})
    produced = {o for n in core.values() for o in n.output if o}
    for n in nodes:  # Shape/Size of the region's values and the arithmetic on them
        if id(n) in core or any(o in f.dep for o in n.output):
            continue
        if any(i in produced for i in n.input):
            core[id(n)] = n
            produced.update(o for o in n.output if o)
    last = max(order[i] for i in core)
    for value in produced - {r.y}:
        if value in f.outputs or any(id(u) not in core for u in f.users.get(value, [])):
            return None
    if any(order[id(u)] <= last for u in f.users.get(r.y, [])):
        return None
    return sorted(core.values(), key=lambda n: order[id(n)])


def find_attention(
    nodes: list[Node], graph: onnx.GraphProto
) -> tuple[list[Node], dict[str, Region]]:
    """Replace each matched attention region by one internal node named after its output."""
    f = _Flow(nodes, graph)
    regions: dict[str, Region] = {}
    taken: set[int] = set()
    for sm in [n for n in nodes if n.op_type in ("Softmax", "Attention") and not n.domain]:
        r = match(f, sm)
        region = _closure(f, r, nodes) if r is not None else None
        if r is None or region is None or any(id(n) in taken for n in region):
            continue
        r.nodes = region
        taken.update(id(n) for n in region)
        regions[r.y] = r
    if not regions:
        return nodes, regions
    out: list[Node] = []
    for n in nodes:
        if id(n) not in taken:
            out.append(n)
            continue
        r = next((r for r in regions.values() if n is r.nodes[-1]), None)
        if r is not None:
            inside = {o for m in r.nodes for o in m.output}
            outer = [i for m in r.nodes for i in m.input if i and i not in inside]
            ins = [r.x, *dict.fromkeys(i for i in outer if i != r.x)]
            out.append(helper.make_node("SelfAttention", ins, [r.y], domain=INTERNAL))
    return out, regions
