"""Native torch.nn builder for a SpecGraph, plus neutral <-> torch weight transfer.

Imported only inside probe worker processes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from probes.frameworks.torch.custom import CustomExpr
from probes.spec import GraphNode, SpecGraph
from probes.spec.ops_custom import compile_custom
from probes.spec.ops_spatial import axis_paddings, pair, resolve_pads
from probes.weights import NeutralWeights

ACT = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "hardswish": nn.Hardswish,
}


def _dim(axis: int) -> int:
    """Per-sample axis -> tensor dim (batch first)."""
    return axis + 1 if axis >= 0 else axis


class Lambda(nn.Module):
    """A parameter-free op with a fixed function; ``kind`` names it in repr."""

    def __init__(self, kind: str, **kw: Any) -> None:
        super().__init__()
        self.kind, self.kw = kind, kw

    def extra_repr(self) -> str:
        return f"{self.kind}, {self.kw}"

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        k, kw = self.kind, self.kw
        if k in ("add", "multiply"):
            return _fold(xs, add=k == "add")
        if k == "concat":
            return torch.cat(xs, dim=kw["dim"])
        if k == "matmul":
            return torch.matmul(xs[0], xs[1])
        return _unary(k, xs[0], kw)


def _fold(xs: tuple[torch.Tensor, ...], add: bool) -> torch.Tensor:
    """x0 + x1 + ... (or x0 * x1 * ...), left to right."""
    out = xs[0]
    for x in xs[1:]:
        out = out + x if add else out * x
    return out


def _unary(k: str, x: torch.Tensor, kw: dict[str, Any]) -> torch.Tensor:
    if k == "flatten":
        return torch.flatten(x, 1)
    if k == "reshape":
        return x.reshape(x.shape[0], *kw["shape"])
    if k == "permute":
        return x.permute(0, *[d + 1 for d in kw["dims"]])
    if k == "mean":
        return x.mean(dim=kw["dim"], keepdim=kw["keepdims"])
    if k == "global_avg_pool":
        return x.mean(dim=tuple(range(2, x.dim())))
    if k == "global_max_pool":
        return x.amax(dim=tuple(range(2, x.dim())))
    if k == "slice":
        index = [slice(None)] * x.dim()
        index[kw["dim"]] = slice(kw["start"], kw["end"], kw["step"])
        out = x[tuple(index)]
        return out.squeeze(kw["dim"]) if kw["squeeze"] else out
    raise ValueError(k)


class Affine(nn.Module):
    """x * scale + shift, learned tensors broadcast over the per-sample shape."""

    def __init__(self, shape: list[int], scale: bool, shift: bool) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(shape)) if scale else None
        self.shift = nn.Parameter(torch.zeros(shape)) if shift else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            x = x * self.scale
        return x + self.shift if self.shift is not None else x

    def neutral(self) -> dict[str, torch.Tensor]:
        pairs = (("scale", self.scale), ("shift", self.shift))
        return {k: v for k, v in pairs if v is not None}


class Padded(nn.Module):
    """Explicit asymmetric zero padding (TensorFlow ``same``) before a conv."""

    def __init__(self, pad: tuple[int, ...], core: nn.Module) -> None:
        super().__init__()
        self.pad, self.core = pad, core

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.core(F.pad(x, self.pad))


class PositionEmbedding(nn.Module):
    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(max_len, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight[: x.shape[1]]


class ClassToken(nn.Module):
    def __init__(self, dim: int, at_end: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim))
        self.at_end = at_end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tok = self.weight.to(x.dtype).expand(x.shape[0], 1, -1)
        return torch.cat([x, tok] if self.at_end else [tok, x], dim=1)


class Recurrent(nn.Module):
    def __init__(self, cell: type[nn.LSTM] | type[nn.GRU], f: int, p: Any) -> None:
        super().__init__()
        self.core = cell(f, p.hidden_size, batch_first=True, bidirectional=p.bidirectional)
        self.return_sequences = p.return_sequences
        if cell is nn.LSTM:  # neutral LSTM has one bias; keep PyTorch's second one at zero
            for name, prm in self.core.named_parameters():
                if name.startswith("bias_hh"):
                    prm.requires_grad_(False)
                    nn.init.zeros_(prm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, state = self.core(x)
        if self.return_sequences:
            return seq
        h = state[0] if isinstance(state, tuple) else state
        return torch.cat(list(h), dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, e: int, t: int, p: Any) -> None:
        super().__init__()
        self.core = nn.MultiheadAttention(e, p.num_heads, batch_first=True)
        self.causal = p.causal
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1) if p.causal else None
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.core(x, x, x, need_weights=False, attn_mask=self.mask, is_causal=self.causal)
        return out


def _conv(node: GraphNode, ins: list[Any]) -> nn.Module:
    p, x = node.params, ins[0]
    nd = len(x.shape) - 1
    k: Any = pair(p.kernel, nd)
    s: Any = pair(p.stride, nd)
    d: Any = pair(p.dilation, nd)
    pads = [
        resolve_pads(size, k[i], s[i], d[i], mode)
        for i, (size, mode) in enumerate(
            zip(x.shape[1:], axis_paddings(p.padding, nd), strict=True)
        )
    ]
    cls: Any = nn.Conv2d if nd == 2 else nn.Conv1d
    sym = all(a == b for a, b in pads)
    conv = cls(
        x.shape[0],
        p.filters,
        k,
        stride=s,
        dilation=d,
        groups=p.groups,
        bias=p.bias,
        padding=tuple(a for a, _ in pads) if sym else 0,
    )
    if sym:
        return conv
    flat: list[int] = [v for pad in reversed(pads) for v in pad]  # F.pad wants last axis first
    return Padded(tuple(flat), conv)


def _module(node: GraphNode, ins: list[Any]) -> nn.Module:
    op, p = node.op, node.params
    x = ins[0]
    if op in ACT:
        return ACT[op]()
    simple: dict[str, Any] = {
        "dense": lambda: nn.Linear(x.shape[-1], p.units, bias=p.bias),
        "softmax": lambda: nn.Softmax(dim=_dim(p.axis)),
        "layer_norm": lambda: nn.LayerNorm(x.shape[-1], eps=p.eps),
        "dropout": lambda: nn.Dropout(p.rate),
        "embedding": lambda: nn.Embedding(p.num_embeddings, p.embedding_dim),
        "position_embedding": lambda: PositionEmbedding(p.max_len, x.shape[1]),
        "class_token": lambda: ClassToken(x.shape[1], p.at == "end"),
        "adaptive_avg_pool2d": lambda: nn.AdaptiveAvgPool2d(pair(p.output_size, 2)),
        "lstm": lambda: Recurrent(nn.LSTM, x.shape[1], p),
        "gru": lambda: Recurrent(nn.GRU, x.shape[1], p),
        "self_attention": lambda: SelfAttention(x.shape[1], x.shape[0], p),
        "upsample2d": lambda: nn.Upsample(
            scale_factor=p.scale,
            mode=p.mode,
            **({"align_corners": False} if p.mode == "bilinear" else {}),
        ),
        "matmul": lambda: Lambda("matmul"),
        "affine": lambda: Affine(list(p.shape), p.scale, p.shift),
        "slice": lambda: Lambda(
            "slice",
            dim=p.axis % x.rank + 1,
            start=p.start,
            end=p.end,
            step=p.step,
            squeeze=p.squeeze,
        ),
        "conv_transpose2d": lambda: nn.ConvTranspose2d(
            x.shape[0],
            p.filters,
            p.kernel,
            stride=p.stride,
            padding=p.padding,
            output_padding=p.output_padding,
            bias=p.bias,
        ),
        "add": lambda: Lambda("add"),
        "multiply": lambda: Lambda("multiply"),
        "flatten": lambda: Lambda("flatten"),
        "global_avg_pool": lambda: Lambda("global_avg_pool"),
        "global_max_pool": lambda: Lambda("global_max_pool"),
        "leaky_relu": lambda: nn.LeakyReLU(p.alpha),
        "prelu": lambda: nn.PReLU(x.shape[0]),
        "group_norm": lambda: nn.GroupNorm(p.groups, x.shape[0], eps=p.eps),
        "instance_norm": lambda: nn.GroupNorm(x.shape[0], x.shape[0], eps=p.eps),
        "concat": lambda: Lambda("concat", dim=_dim(p.axis)),
        "reshape": lambda: Lambda("reshape", shape=tuple(node.out.shape)),
        "permute": lambda: Lambda("permute", dims=list(p.dims)),
        "mean": lambda: Lambda("mean", dim=_dim(p.axis), keepdims=p.keepdims),
        "batch_norm": lambda: (nn.BatchNorm2d if x.rank == 3 else nn.BatchNorm1d)(
            x.shape[0], eps=p.eps, momentum=p.momentum
        ),
    }
    if op in simple:
        return simple[op]()
    if op in ("conv1d", "conv2d"):
        return _conv(node, ins)
    if op in ("max_pool2d", "avg_pool2d"):
        return _pool(node)
    if op == "custom":
        return CustomExpr(compile_custom(p, ins, node.id))
    raise NotImplementedError(f"torch builder has no op '{op}'")


def _pool(node: GraphNode) -> nn.Module:
    p = node.params
    pad = 0 if p.padding == "valid" else p.padding
    stride = p.stride if p.stride is not None else p.kernel
    if node.op == "max_pool2d":
        return nn.MaxPool2d(p.kernel, stride, padding=pad)
    return nn.AvgPool2d(p.kernel, stride, padding=pad, count_include_pad=True)


def _key(node_id: str) -> str:
    return f"n_{node_id}"  # avoids clashes with ModuleDict attributes (keys, values, ...)


class SpecModule(nn.Module):
    """Runs the spec's DAG in topological order over native torch.nn layers."""

    def __init__(self, graph: SpecGraph) -> None:
        super().__init__()
        self.layers = nn.ModuleDict()
        self.plan: list[tuple[str, tuple[str, ...]]] = []
        for node in graph.nodes:
            self.layers[_key(node.id)] = _module(node, graph.inputs_of(node))
            self.plan.append((node.id, node.inputs))
        self.input_names = [i.name for i in graph.spec.inputs]
        self.output_names = list(graph.spec.outputs)
        self.ops = {n.id: n.op for n in graph.nodes}

    def forward(self, *args: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        env = dict(zip(self.input_names, args, strict=True))
        for node_id, ins in self.plan:
            env[node_id] = self.layers[_key(node_id)](*[env[i] for i in ins])
        outs = tuple(env[o] for o in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    def layer(self, node_id: str) -> nn.Module:
        return self.layers[_key(node_id)]


_GAMMA_BETA = {"gamma": "weight", "beta": "bias"}
#: neutral weight name -> torch attribute, for ops that map one to one
NORM_ATTRS: dict[str, dict[str, str]] = {
    "batch_norm": {**_GAMMA_BETA, "running_mean": "running_mean", "running_var": "running_var"},
    "layer_norm": _GAMMA_BETA,
    "group_norm": _GAMMA_BETA,
    "instance_norm": _GAMMA_BETA,
    "prelu": {"alpha": "weight"},
}


#: ops whose module holds the neutral ``weight`` (and ``bias`` if any) under those names
WEIGHT_BIAS_OPS = (
    "dense",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "embedding",
    "position_embedding",
    "class_token",
)


def _tensor_map(op: str, mod: nn.Module) -> dict[str, torch.Tensor]:
    """Neutral weight name -> the torch tensor (or a view of it) holding it."""
    core: Any = getattr(mod, "core", mod)
    if op in WEIGHT_BIAS_OPS:
        m = {"weight": core.weight}
        if getattr(core, "bias", None) is not None:
            m["bias"] = core.bias
        return m
    if op == "affine":
        return core.neutral()
    if op in NORM_ATTRS:
        return {k: getattr(core, attr) for k, attr in NORM_ATTRS[op].items()}
    if op in ("lstm", "gru"):
        out = {}
        for d in ("", "_reverse") if core.bidirectional else ("",):
            out[f"w_ih{d}"] = getattr(core, f"weight_ih_l0{d}")
            out[f"w_hh{d}"] = getattr(core, f"weight_hh_l0{d}")
            if op == "lstm":
                out[f"b{d}"] = getattr(core, f"bias_ih_l0{d}")
            else:
                out[f"b_ih{d}"] = getattr(core, f"bias_ih_l0{d}")
                out[f"b_hh{d}"] = getattr(core, f"bias_hh_l0{d}")
        return out
    if op == "self_attention":
        return _attention_map(core)
    return {}


def _attention_map(core: Any) -> dict[str, torch.Tensor]:
    """PyTorch packs Q, K and V in one in-projection; the neutral names are views of it."""
    e = core.embed_dim
    w, b = core.in_proj_weight, core.in_proj_bias
    out = {}
    for i, name in enumerate("qkv"):
        out[f"w_{name}"] = w[i * e : (i + 1) * e]
        out[f"b_{name}"] = b[i * e : (i + 1) * e]
    out["w_o"], out["b_o"] = core.out_proj.weight, core.out_proj.bias
    return out


def load_weights(model: SpecModule, weights: NeutralWeights) -> None:
    with torch.no_grad():
        for node_id, arrays in weights.items():
            tmap = _tensor_map(model.ops[node_id], model.layer(node_id))
            for name, arr in arrays.items():
                tmap[name].copy_(torch.from_numpy(np.ascontiguousarray(arr)))


def dump_weights(model: SpecModule, names: dict[str, list[str]] | None = None) -> NeutralWeights:
    """Neutral weights back out of the model (all, or only ``names`` per node)."""
    out: NeutralWeights = {}
    for node_id, op in model.ops.items():
        tmap = _tensor_map(op, model.layer(node_id))
        keep = names.get(node_id, []) if names is not None else list(tmap)
        if keep:
            out[node_id] = {k: tmap[k].detach().cpu().numpy().copy() for k in keep}
    return out


def build(graph: SpecGraph, weights: NeutralWeights) -> SpecModule:
    model = SpecModule(graph)
    load_weights(model, weights)
    return model.eval()
