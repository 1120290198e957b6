"""A matched attention region (``attention_match``) -> one ``self_attention`` node.

The region's nodes are replayed on shapes only (``Sym``) with its constants folded, which
gives the head size, the scale and any mask; the weights come from the projections.
Anything that ``self_attention`` would not compute exactly is refused with the reason.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx

from probes.importers.attention_match import Region
from probes.importers.attention_replay import Sym, Val, replay
from probes.importers.attention_replay import attrs_of as _attrs
from probes.importers.context import Act, Ctx, Unsupported, Value
from probes.importers.registry import CONVERTERS, converter


def _const(env: dict[str, Val], name: str) -> np.ndarray | None:
    v = env.get(name)
    return v if isinstance(v, np.ndarray) else None


def _scalar(env: dict[str, Val], node: onnx.NodeProto) -> float:
    """The factor a scalar Mul/Div applies to its activation input."""
    c = [v for v in (_const(env, i) for i in node.input) if v is not None]
    if len(c) != 1 or c[0].size != 1:
        raise Unsupported(f"{node.op_type} by a non-scalar inside attention")
    v = float(c[0].reshape(-1)[0])
    if node.op_type == "Div":
        if _const(env, node.input[1]) is None or v == 0:
            raise Unsupported("attention divides a constant by an activation")
        return 1.0 / v
    return v


def _scale_and_mask(env: dict[str, Val], r: Region, t: int) -> tuple[float, bool]:
    scale, causal = 1.0, False
    for node in [*r.paths["q"], *r.paths["k"], *r.paths["scores"]]:
        if node.op_type in ("Mul", "Div"):
            scale *= _scalar(env, node)
        elif node.op_type in ("Add", "Where"):
            mask = next(
                (c for c in (_const(env, i) for i in node.input[::-1]) if c is not None), None
            )
            if node.op_type == "Where":
                cond = _const(env, node.input[0])
                if cond is None:
                    raise Unsupported("an attention mask computed from the data")
                mask = np.where(cond.astype(bool), 0.0, -np.inf)
            causal = causal or _causal(mask, t)
    return scale, causal


def _causal(mask: np.ndarray | None, t: int) -> bool:
    """True for a causal mask, False for an all-zero one; anything else is refused."""
    if mask is None:
        raise Unsupported("an attention mask computed from the data")
    m = np.asarray(mask, np.float64)
    if not np.any(m):
        return False
    m = m.reshape(-1, *m.shape[-2:]) if m.ndim >= 2 else m
    upper = np.triu(np.ones((t, t), bool), 1)
    square = m.ndim == 3 and m.shape[-2:] == (t, t)
    if square and all(np.all(s[~upper] == 0) and np.all(s[upper] <= -1e4) for s in m):
        return True
    raise Unsupported("an attention mask other than causal (padding masks are not supported)")


def _weight(env: dict[str, Val], proj: onnx.NodeProto) -> np.ndarray:
    """The projection's weight in the neutral (out, in) layout."""
    w = env[proj.input[1]]
    if not isinstance(w, np.ndarray) or w.ndim != 2:
        raise Unsupported("an attention projection whose weight is not a 2-D constant")
    a = _attrs(proj)
    if proj.op_type == "Gemm":
        if a.get("transA", 0):
            raise Unsupported("Gemm with transA=1")
        w = (w if a.get("transB", 0) else w.T) * float(a.get("alpha", 1.0))
        return np.asarray(w)
    return np.asarray(w.T)


def _bias(env: dict[str, Val], r: Region, role: str, units: int) -> np.ndarray:
    proj, add = r.proj[role], r.bias.get(role)
    b: np.ndarray = np.zeros(units, np.float32)
    if proj.op_type == "Gemm" and len(proj.input) > 2 and proj.input[2]:
        c = _const(env, proj.input[2])
        assert c is not None
        b = b + np.broadcast_to(c.reshape(-1), (units,)) * float(_attrs(proj).get("beta", 1.0))
    if add is not None:
        c = next((v for v in (_const(env, i) for i in add.input) if v is not None), None)
        if c is None or c.size not in (1, units):
            raise Unsupported(
                f"an attention bias of shape {'none' if c is None else list(c.shape)}"
            )
        b = b + np.broadcast_to(c.reshape(-1), (units,))
    return b.astype(np.float32)


def _packed_index(env: dict[str, Val], r: Region, role: str, e: int) -> int | None:
    """Which third of a packed in-projection feeds ``role`` (Gather, Split or Slice)."""
    path = r.paths[role]
    for i, node in enumerate(path):
        if node.op_type == "Gather":
            idx = _const(env, node.input[1])
            if idx is not None and idx.size == 1:
                return int(idx.reshape(-1)[0]) % 3
        if node.op_type == "Split":
            nxt = {*(path[i - 1].input if i else ()), *r.mm[0].input, *r.mm[1].input}
            hits = [k for k, o in enumerate(node.output) if o in nxt]
            return hits[0] if len(hits) == 1 else None
        if node.op_type == "Slice":
            start = _const(env, node.input[1])
            if start is not None and start.size == 1:
                return int(start.reshape(-1)[0]) // e
    return None


def _qkv(env: dict[str, Val], r: Region, e: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    q, k, v = (r.proj[x] for x in "qkv")
    if q is k and k is v:
        w, b = _weight(env, q), _bias(env, r, "q", 3 * e)
        if w.shape != (3 * e, e):
            raise Unsupported(f"a packed attention projection of shape {list(w.shape)}")
        found = [_packed_index(env, r, role, e) for role in "qkv"]
        known = [i for i in found if i is not None]
        order = known if sorted(known) == [0, 1, 2] else [0, 1, 2]  # default: torch's q, k, v
        for role, i in zip("qkv", order, strict=True):
            out[f"w_{role}"], out[f"b_{role}"] = w[i * e : (i + 1) * e], b[i * e : (i + 1) * e]
        return out
    if len({id(q), id(k), id(v)}) != 3:
        raise Unsupported("attention whose q, k and v share only part of a projection")
    for role in "qkv":
        w = _weight(env, r.proj[role])
        if w.shape != (e, e):
            raise Unsupported(f"an attention {role} projection of shape {list(w.shape)}")
        out[f"w_{role}"], out[f"b_{role}"] = w, _bias(env, r, role, e)
    return out


def _sym(env: dict[str, Val], name: str) -> tuple[int, ...]:
    v = env[name]
    if not isinstance(v, Sym):
        raise Unsupported("an attention operand is a constant")
    return v.shape


def _heads(env: dict[str, Val], r: Region, t: int, e: int) -> int:
    m1, m2 = r.mm
    q, k = _sym(env, m1.input[0]), _sym(env, m1.input[1])
    if m1 is m2:  # opset-23 Attention: q, k, v all [B, H, T, D]
        v, ok = _sym(env, m1.input[2]), len(q) == 4 and q == k
        d = q[-1]
        ok = ok and _sym(env, m1.input[2]) == q and q[-2] == t
    else:
        v, s = _sym(env, m2.input[1]), _sym(env, m1.output[0])
        d = q[-1]
        ok = s[-2:] == (t, t) and k[-2] == d and v[-2:] == (t, d)
    if not ok or e % d:
        raise Unsupported(f"attention with queries {list(q)}, keys {list(k)}, values {list(v)}")
    return e // d


def _fused_op(r: Region, d: int) -> tuple[float, bool]:
    """Scale and causality of an opset-23 Attention node (refusing what differs)."""
    a = _attrs(r.mm[0])
    if a.get("softcap", 0.0) or a.get("q_num_heads") or a.get("kv_num_heads"):
        raise Unsupported("Attention with softcap or 3-D inputs")
    return float(a.get("scale", 1 / math.sqrt(d))), bool(a.get("is_causal", 0))


def _anchor(env: dict[str, Val], r: Region, b: int, t: int, batch: int) -> int:
    """How many tail nodes it takes to reach a [B, T, E] or [T, B, E] value, and where B is."""
    names = [r.tail[0].input[0], *(n.output[0] for n in r.tail)] if r.tail else [r.y]
    for i, name in enumerate(names):
        s = env[name]
        if not isinstance(s, Sym) or len(s.shape) != 3:
            continue
        layouts = [p for p, want in ((0, (batch, t)), (1, (t, batch))) if s.shape[:2] == want]
        if layouts:
            return i * 2 + (b if b in layouts else layouts[0])
    raise Unsupported("the attention output never returns to a [batch, T, E] layout")


def convert_attention(ctx: Ctx, r: Region, x: Value | None, label: str) -> list[Value]:
    if not isinstance(x, Act) or len(x.shape) != 2 or x.batch_axis not in (0, 1):
        raise Unsupported("self-attention on an input that is not [batch, T, E] or [T, batch, E]")
    t, e = x.shape
    env = replay(ctx, r, x)
    weights = _qkv(env, r, e)
    heads = _heads(env, r, t, e)
    scale, causal = _scale_and_mask(env, r, t)
    if r.mm[0] is r.mm[1]:
        inner, causal = _fused_op(r, e // heads)
        scale *= inner  # the node scales by itself
    if not math.isclose(scale * math.sqrt(e // heads), 1.0, rel_tol=1e-3):
        raise Unsupported(f"attention scaled by {scale:.4g}, not 1/sqrt(head size)")
    w_o = _weight(env, r.proj["o"])
    if w_o.shape != (e, e):
        raise Unsupported(f"an attention output projection of shape {list(w_o.shape)}")
    weights["w_o"], weights["b_o"] = w_o, _bias(env, r, "o", e)
    base = Act(x.ref, x.shape, x.dtype) if x.perm in (None, (1, 0, 2)) else ctx.canonical(x)
    ctx.node_name = label
    out = ctx.emit("self_attention", [base], {"num_heads": heads, "causal": causal}, weights)
    code = _anchor(env, r, x.batch_axis, t, ctx.batch)
    skip, at = divmod(code, 2)
    value: Value = Act(out.ref, out.shape, out.dtype, (1, 0, 2) if at == 1 else None)
    for node in r.tail[skip:]:
        ins = [value, *(env[i] for i in node.input[1:] if i)]
        ctx.out_used = [True]
        value = CONVERTERS[node.op_type](ctx, _attrs(node), ins, label)[0]  # type: ignore[arg-type]
    for name, v in env.items():  # shape arithmetic the rest of the graph may still read
        if isinstance(v, np.ndarray) and name not in ctx.values:
            ctx.values[name] = v
    return [value]


@converter("Attention")
def attention_alone(
    ctx: Ctx, attrs: dict[str, Any], ins: list[Value | None], name: str
) -> list[Value]:
    """Reached only when the node is not between projections of one input."""
    raise Unsupported(
        "Attention is converted only as self-attention: q, k and v projected from one input "
        "and followed by an output projection, without a mask input or cached keys"
    )
