"""The designed calibration grid: which configurations, which ops at which shapes.

Shapes follow the zoo's ranges (channels 3 to 1280, images 2 to 112, sequences 16 to
128, dense 10 to 4096) on a coarse log grid, at batches 1 and 8, so that a model's
node lies between measured cells in FLOPs and bytes. ``quick`` keeps two to four
shapes per op at the default settings of each framework and the cheap ops' smallest
shape only, and times the tuned configurations on the compute ops and fusion chains.
Ids are stable: they are the resume keys.
"""

from __future__ import annotations

from typing import Any

from probes.calibrate.cells import CalibCell
from probes.settings import FrameworkSettings, TFSettings, TorchSettings
from probes.spec import InputSpec, ModelSpec, NodeSpec

#: Configuration key -> settings. The first of each framework is its default.
CONFIGS: dict[str, FrameworkSettings] = {
    "torch/eager": TorchSettings(),
    "torch/eager-t1": TorchSettings(intra_threads=1),
    "torch/compile": TorchSettings(mode="compile"),
    "tensorflow/function": TFSettings(),
    "tensorflow/function-t1": TFSettings(intra_threads=1),
    "tensorflow/xla": TFSettings(mode="xla"),
}
DEFAULT_CONFIGS = ("torch/eager", "tensorflow/function")
#: Groups a tuned configuration measures; it borrows the other kernels from its
#: framework's default. torch.compile runs the same aten/oneDNN conv and matmul kernels
#: as eager and costs seconds per cell to compile, so it measures only what it changes:
#: per-node dispatch and epilogue fusion. XLA brings its own kernels.
#: One thread: also the memory-bound ops, which bound the default's cells (a kernel
#: with all threads is not slower than with one on an idle machine; on a shared one it
#: waits for its descheduled threads).
ONE_THREAD_GROUPS = (
    *("conv2d", "conv2d_k1", "conv2d_dw", "dense", "chain", "dispatch", "recurrent"),
    *("conv1d", "batch_norm", "relu", "add", "pool", "reduce", "activation", "attention"),
)
GROUPS: dict[str, tuple[str, ...]] = {
    "torch/eager-t1": ONE_THREAD_GROUPS,
    "torch/compile": ("dispatch", "chain"),
    "tensorflow/function-t1": ONE_THREAD_GROUPS,
    "tensorflow/xla": (
        "conv2d",
        "conv2d_k1",
        "conv2d_dw",
        "dense",
        "chain",
        "dispatch",
        "recurrent",
    ),
}

#: Cheap memory-bound groups: ``quick`` times them at batch 8 only (the tanh chains
#: of the dispatch group cover tiny tensors at batch 1).
CHEAP_GROUPS = (
    "batch_norm",
    "relu",
    "add",
    "pool",
    "reduce",
    "shape",
    "activation",
    "norm",
    "embedding",
)
ACTS = ("relu6", "gelu", "tanh", "sigmoid", "silu")
Node = tuple[str, str, dict[str, Any]]  # op, id, params (inputs: the previous node)


def _spec(name: str, shape: list[int], nodes: list[Node], dtype: str = "float32") -> ModelSpec:
    inp = InputSpec(
        name="x", shape=shape, dtype=dtype, max_value=1000 if dtype == "int64" else None
    )
    specs, prev = [], "x"
    for op, nid, params in nodes:
        ins = [prev, prev] if op in ("add", "multiply", "concat") else [prev]
        specs.append(NodeSpec(id=nid, op=op, inputs=ins, params=params))
        prev = nid
    return ModelSpec(name=name, inputs=[inp], nodes=specs, outputs=[prev])


def _cell(
    group: str, tag: str, shape: list[int], nodes: list[Node], batch: int, dtype: str = "float32"
) -> CalibCell:
    cid = f"{group}|{tag}|{'x'.join(map(str, shape))}|b{batch}"
    return CalibCell(
        id=cid, group=group, spec=_spec("cal_" + group, shape, nodes, dtype), batch=batch
    )


def _conv(
    c_in: int, c_out: int, hw: int, k: int, s: int = 1, groups: int = 1
) -> tuple[list[int], list[Node], str]:
    p = {"filters": c_out, "kernel": k, "stride": s, "padding": k // 2, "groups": groups}
    return [c_in, hw, hw], [("conv2d", "n", p)], f"{c_in}-{c_out}k{k}s{s}g{groups}"


Item = tuple[list[int], list[Node], str]


def _p(**params: Any) -> dict[str, Any]:
    return params


def _shapes(quick: bool) -> dict[str, list[Item]]:
    q = quick
    # Low resolutions (2 to 16) are a regime of their own: at the same FLOPs a 512-channel
    # conv on 2x2 reads 30x the weights of a 64-channel one on 16x16, and oneDNN's
    # blocking is least efficient there. Deep stages and small inputs live in it
    # (resnet18 at 64x64 ran its 2x2 convs 3x slower than cells at 7x7 predicted).
    # Tiny convs (a few channels on 4x4 to 8x8: 20 us in torch, a third of the smallest
    # 28x28 cell) bracket the grid's low end, where the fixed cost per call is fitted.
    conv = [(16, 16, 56), (64, 64, 28), (128, 128, 14), (256, 256, 7)]
    low = [(64, 64, 16), (128, 128, 8), (256, 256, 4), (512, 512, 2)]
    tiny = [(16, 16, 8), (8, 32, 4)]
    conv = (
        [*conv[1:3], low[2], tiny[0]]
        if q
        else [*conv, (32, 32, 28), (512, 512, 7), (64, 128, 28), *low, *tiny]
    )
    first = [(3, 64, 64, 7, 2), (3, 32, 64, 3, 2)] + (
        [] if q else [(1, 6, 28, 5, 1), (3, 64, 32, 3, 1)]
    )
    k1 = [(64, 256, 14), (256, 64, 14), (192, 32, 8)] + (
        [] if q else [(32, 96, 28), (16, 16, 56), (960, 160, 7), (24, 144, 16), (384, 64, 4)]
    )
    k1 += [] if q else [(256, 512, 2)]
    dw = [(96, 28, 1), (384, 14, 1), (384, 4, 1)] + (
        [] if q else [(32, 56, 1), (144, 28, 2), (960, 7, 1), (144, 16, 1), (192, 8, 2)]
    )
    dense = [(512, 512), (2048, 1000)] + (
        [] if q else [(784, 128), (128, 10), (4096, 4096), (256, 1024)]
    )
    elem = [[64, 28, 28]] + ([] if q else [[16, 56, 56], [256, 14, 14], [1024]])
    small = elem[:1] if q else elem[:2]
    pool = [(64, 56, 3, 2)] + ([] if q else [(16, 32, 2, 2), (128, 28, 2, 2)])
    out: dict[str, list[Item]] = {
        "conv2d": [_conv(c, c2, hw, 3) for c, c2, hw in conv]
        + [_conv(c, c2, hw, k, s) for c, c2, hw, k, s in first],
        "conv2d_k1": [_conv(c, c2, hw, 1) for c, c2, hw in k1],
        "conv2d_dw": [_conv(c, c, hw, 3, s, groups=c) for c, hw, s in dw],
        "dense": [([f], [("dense", "n", {"units": u})], f"{f}-{u}") for f, u in dense]
        + [([64, 128], [("dense", "n", {"units": 128})], "seq64-128")],
        "batch_norm": [(e, [("batch_norm", "n", _p())], "") for e in elem if len(e) == 3],
        "relu": [(e, [("relu", "n", _p())], "") for e in elem],
        "add": [(e, [("add", "n", _p())], "") for e in elem],
        "pool": [
            ([c, hw, hw], [(op, "n", {"kernel": k, "stride": s})], f"{op}{k}s{s}")
            for c, hw, k, s in pool
            for op in ("max_pool2d", "avg_pool2d")
        ],
        "reduce": [
            ([c, hw, hw], [("global_avg_pool", "n", _p())], f"gap{c}")
            for c, hw in ((512, 7), (64, 28))
        ]
        + [([512, 14, 14], [("adaptive_avg_pool2d", "n", _p(output_size=[7, 7]))], "adaptive")]
        + [([64, 128], [("mean", "n", _p(axis=0))], "mean")],
        "shape": [(e, [("flatten", "n", _p())], "flatten") for e in small if len(e) == 3]
        + [(e, [("dropout", "n", _p(rate=0.2))], "dropout") for e in small]
        + [([64, 14, 14], [("upsample2d", "n", {"scale": 2})], "upsample")],
        "activation": [(e, [(a, "n", _p())], a) for e in small for a in ACTS[: 3 if q else 5]],
        "norm": [
            ([t, e], [(op, "n", _p())], op)
            for t, e in ((64, 128), (128, 256))[: 1 if q else 2]
            for op in ("layer_norm", "softmax")
        ],
        "embedding": [
            ([t], [("embedding", "n", {"num_embeddings": 1000, "embedding_dim": e})], f"e{e}")
            for t, e in ((64, 128),)
        ]
        + [
            ([t, e], [("position_embedding", "n", {"max_len": 512})], "pos")
            for t, e in ((128, 128),)
        ],
        "recurrent": [
            ([t, f], [(op, "n", {"hidden_size": h})], f"{op}{h}")
            for t, f, h in ((32, 64, 128),) + (() if q else ((64, 32, 64),))
            for op in ("lstm", "gru")
        ],
        "attention": [
            ([t, e], [("self_attention", "n", {"num_heads": hd})], f"h{hd}")
            for t, e, hd in ((64, 128, 2),) + (() if q else ((128, 256, 4),))
        ],
        "conv1d": [
            ([1, 4000], [("conv1d", "n", {"filters": 32, "kernel": 80, "stride": 4})], "k80")
        ]
        + (
            []
            if q
            else [([32, 1000], [("conv1d", "n", {"filters": 64, "kernel": 3, "padding": 1})], "k3")]
        ),
        # tanh, not relu: graph optimisers fold a chain of an idempotent op into one node
        "dispatch": [([8], [("tanh", f"n{i}", {}) for i in range(k)], f"tanh{k}") for k in (1, 16)],
        "chain": [_chain(c, hw) for c, hw in ((64, 28), (128, 14))[: 1 if q else 2]]
        + [([512], [("dense", "d", {"units": 512}), ("relu", "r", {})], "dense-relu")],
    }
    return out


def _chain(c: int, hw: int) -> tuple[list[int], list[Node], str]:
    nodes: list[Node] = [
        ("conv2d", "c", {"filters": c, "kernel": 3, "padding": 1}),
        ("batch_norm", "b", {}),
        ("relu", "r", {}),
    ]
    return [c, hw, hw], nodes, f"cbr{c}"


def known_ids() -> dict[str, set[str]]:
    """Every cell id of either grid, per configuration (anything else is stale)."""
    out: dict[str, set[str]] = {k: set() for k in CONFIGS}
    for quick in (True, False):
        for key, cells in grid(quick).items():
            out[key] |= {c.id for c in cells}
    return out


def grid(quick: bool = False) -> dict[str, list[CalibCell]]:
    """Configuration key -> its cells, in measuring order. ``quick``: the default
    configurations only, on the smaller shape set."""
    shapes = _shapes(quick)
    batches = (1, 8)
    out: dict[str, list[CalibCell]] = {}
    for key in DEFAULT_CONFIGS if quick else CONFIGS:
        cells = []
        for group, items in shapes.items():
            if key in GROUPS and group not in GROUPS[key]:
                continue
            for shape, nodes, tag in items:
                dtype = "int64" if nodes[0][0] == "embedding" else "float32"
                for b in (8,) if quick and group in CHEAP_GROUPS else batches:
                    cells.append(_cell(group, tag, shape, nodes, b, dtype))
        out[key] = cells
    return out
