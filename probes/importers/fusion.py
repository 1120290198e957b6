"""Pattern fusion on the ONNX node list: Erf-form GELU and decomposed LayerNorm.

Each match is replaced by one standard node (``Gelu``, ``LayerNormalization``) that the
converters know; an intermediate value used outside the pattern stops the match.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

Node = onnx.NodeProto


class _Graph:
    def __init__(self, nodes: list[Node], graph: onnx.GraphProto) -> None:
        self.nodes = nodes
        self.producer = {o: n for n in nodes for o in n.output}
        self.users: dict[str, list[Node]] = {}
        for n in nodes:
            for i in dict.fromkeys(n.input):  # Mul(a, a) uses a once
                self.users.setdefault(i, []).append(n)
        self.consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for n in nodes:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self.consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        self.outputs = {o.name for o in graph.output}

    def scalar(self, name: str) -> float | None:
        v = self.consts.get(name)
        return float(v.reshape(-1)[0]) if v is not None and v.size == 1 else None

    def only_user(self, name: str, op: str) -> Node | None:
        users = self.users.get(name, [])
        if len(users) == 1 and users[0].op_type == op and name not in self.outputs:
            return users[0]
        return None

    def other(self, node: Node, name: str) -> str:
        return str(node.input[1] if node.input[0] == name else node.input[0])


def _gelu(g: _Graph, erf: Node) -> tuple[list[Node], Node] | None:
    pre = g.producer.get(erf.input[0])
    if pre is None or pre.op_type not in ("Div", "Mul") or len(g.users[pre.output[0]]) != 1:
        return None
    c = g.scalar(pre.input[1])
    want = np.sqrt(2.0) if pre.op_type == "Div" else 1 / np.sqrt(2.0)
    if c is None or not np.isclose(c, want, rtol=1e-3):
        return None
    x = pre.input[0]
    add = g.only_user(erf.output[0], "Add")
    if add is None or g.scalar(g.other(add, erf.output[0])) != 1.0:
        return None
    m1 = g.only_user(add.output[0], "Mul")
    if m1 is None:
        return None
    half = g.other(m1, add.output[0])
    if g.scalar(half) == 0.5:  # 0.5 * (1 + erf) then * x
        m2 = g.only_user(m1.output[0], "Mul")
        ok = m2 is not None and g.other(m2, m1.output[0]) == x
    elif half == x:  # x * (1 + erf) then * 0.5
        m2 = g.only_user(m1.output[0], "Mul")
        ok = m2 is not None and g.scalar(g.other(m2, m1.output[0])) == 0.5
    else:
        hp = g.producer.get(half)  # (0.5 * x) * (1 + erf)
        ok = hp is not None and hp.op_type == "Mul" and x in hp.input
        ok = ok and g.scalar(g.other(hp, x)) == 0.5 if hp is not None else False
        m2 = m1
        if ok and hp is not None:
            return [hp, pre, erf, add, m1], helper.make_node("Gelu", [x], [m1.output[0]])
    if not ok or m2 is None:
        return None
    return [pre, erf, add, m1, m2], helper.make_node("Gelu", [x], [m2.output[0]])


def _layer_norm(g: _Graph, mean: Node) -> tuple[list[Node], Node] | None:
    """ReduceMean -> Sub -> Pow 2 -> ReduceMean -> Add eps -> Sqrt -> Div [-> Mul g -> Add b]."""
    x = mean.input[0]
    subs = [u for u in g.users.get(mean.output[0], []) if u.op_type == "Sub"]
    if len(subs) != 1 or subs[0].input[0] != x:
        return None
    sub = subs[0]
    users = g.users.get(sub.output[0], [])
    pw = next((u for u in users if u.op_type == "Pow" and g.scalar(u.input[1]) == 2.0), None)
    pw = pw or next((u for u in users if u.op_type == "Mul" and u.input[0] == u.input[1]), None)
    div = next((u for u in users if u.op_type == "Div" and u.input[0] == sub.output[0]), None)
    if pw is None or div is None or len(users) != 2:
        return None
    var = g.only_user(pw.output[0], "ReduceMean")
    add = g.only_user(var.output[0], "Add") if var else None
    sq = g.only_user(add.output[0], "Sqrt") if add else None
    if var is None or add is None or sq is None or sq.output[0] != div.input[1]:
        return None
    eps = g.scalar(g.other(add, var.output[0]))
    if eps is None or not _last_axis(g, mean) or not _last_axis(g, var):
        return None
    chain = [mean, sub, pw, var, add, sq, div]
    out = div.output[0]
    extra: list[str] = []
    mul = g.only_user(out, "Mul")
    if mul is not None and g.other(mul, out) in g.consts:
        extra.append(g.other(mul, out))
        chain.append(mul)
        out = mul.output[0]
        bias = g.only_user(out, "Add")
        if bias is not None and g.other(bias, out) in g.consts:
            extra.append(g.other(bias, out))
            chain.append(bias)
            out = bias.output[0]
    axis = _axis(g, mean)
    fused = helper.make_node("LayerNormalization", [x, *extra], [out], axis=axis, epsilon=eps)
    return chain, fused


def _tf_moments(g: _Graph, mean: Node) -> tuple[list[Node], Node] | None:
    """TensorFlow's form (tf2onnx): x * m + (-mean) * m with m = gamma / sqrt(var + eps)."""
    x = mean.input[0]
    users = g.users.get(mean.output[0], [])
    sub = next((u for u in users if u.op_type == "Sub" and u.input[0] == x), None)
    neg = next((u for u in users if u.op_type == "Neg"), None)
    if sub is None or neg is None or len(users) != 2 or not _last_axis(g, mean):
        return None
    sq = g.only_user(sub.output[0], "Mul")
    var = g.only_user(sq.output[0], "ReduceMean") if sq and sq.input[0] == sq.input[1] else None
    add = g.only_user(var.output[0], "Add") if var and _last_axis(g, var) else None
    sqrt = g.only_user(add.output[0], "Sqrt") if add else None
    inv = g.only_user(sqrt.output[0], "Reciprocal") if sqrt else None
    if add is None or sqrt is None or inv is None or var is None or sq is None:
        return None
    eps = g.scalar(g.other(add, var.output[0]))
    chain = [mean, sub, neg, sq, var, add, sqrt, inv]
    extra: list[str] = []
    m = inv
    gamma = g.only_user(inv.output[0], "Mul")
    if gamma is not None:
        extra.append(g.other(gamma, inv.output[0]))
        chain.append(gamma)
        m = gamma
    m_users = g.users.get(m.output[0], [])
    xm = next((u for u in m_users if u.op_type == "Mul" and x in u.input), None)
    nm = next((u for u in m_users if u.op_type == "Mul" and neg.output[0] in u.input), None)
    if eps is None or xm is None or nm is None or len(m_users) != 2:
        return None
    out = g.only_user(xm.output[0], "Add")
    if out is None or g.other(out, xm.output[0]) != nm.output[0]:
        return None
    chain += [xm, nm, out]
    if not extra:
        extra.append("")  # LayerNormalization's scale slot stays empty
    end = out.output[0]
    beta = g.only_user(end, "Add")
    if beta is not None and g.other(beta, end) in g.consts:
        extra.append(g.other(beta, end))
        chain.append(beta)
        end = beta.output[0]
    axis = _axis(g, mean)
    fused = helper.make_node("LayerNormalization", [x, *extra], [end], axis=axis, epsilon=eps)
    return chain, fused


def _axis(g: _Graph, node: Node) -> int | None:
    """The one reduced axis of a keepdims ReduceMean (the converter checks it is the last)."""
    axes = [list(a.ints) for a in node.attribute if a.name == "axes"]
    if not axes and len(node.input) > 1 and node.input[1] in g.consts:
        axes = [[int(v) for v in g.consts[node.input[1]].reshape(-1)]]
    keep = [a.i for a in node.attribute if a.name == "keepdims"]
    if len(axes) != 1 or len(axes[0]) != 1 or keep == [0] or axes[0][0] == 0:
        return None
    return int(axes[0][0])


def _last_axis(g: _Graph, node: Node) -> bool:
    return _axis(g, node) is not None


def fuse(nodes: list[Node], graph: onnx.GraphProto) -> list[Node]:
    g = _Graph(nodes, graph)
    replaced: dict[int, Node] = {}
    dropped: set[int] = set()
    for n in nodes:
        if id(n) in dropped:
            continue
        found = _gelu(g, n) if n.op_type == "Erf" else None
        if n.op_type == "ReduceMean":
            found = _layer_norm(g, n) or _tf_moments(g, n)
        if found is None or any(id(m) in dropped for m in found[0]):
            continue
        chain, fused = found
        last = max(chain, key=nodes.index)
        for m in chain:
            dropped.add(id(m))
        replaced[id(last)] = fused
    return [replaced.get(id(n), n) for n in nodes if id(n) not in dropped or id(n) in replaced]
