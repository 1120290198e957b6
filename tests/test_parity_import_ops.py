"""Parity of the spec ops added for imported models, forward and one training step."""

from __future__ import annotations

from typing import Any

import pytest

from probes.checks.parity import check_parity
from probes.runners.local import SubprocessRunner
from probes.spec import ModelSpec
from tests.conftest import make_spec

UPCONV: list[dict[str, Any]] = [
    {"id": "c", "op": "conv2d", "inputs": ["x"], "params": {"filters": 4, "kernel": 3}},
    {
        "id": "up1",
        "op": "conv_transpose2d",
        "inputs": ["c"],
        "params": {"filters": 5, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1},
    },
    {
        "id": "up2",
        "op": "conv_transpose2d",
        "inputs": ["up1"],
        "params": {"filters": 2, "kernel": [2, 3], "stride": [2, 1], "bias": False},
    },
]


def test_conv_transpose2d_shapes() -> None:
    from probes.spec import build_graph

    g = build_graph(make_spec(UPCONV))
    assert g.tensors["up1"].shape == (5, 12, 12)  # (6-1)*2 - 2 + 3 + 1
    assert g.tensors["up2"].shape == (2, 24, 14)


# a batch-first attention core: scores, softmax, weighted sum, then the first token
ATTN: list[dict[str, Any]] = [
    {"id": "q", "op": "reshape", "inputs": ["x"], "params": {"shape": [6, 2, 4]}},
    {"id": "qh", "op": "permute", "inputs": ["q"], "params": {"dims": [1, 0, 2]}},
    {"id": "kt", "op": "permute", "inputs": ["q"], "params": {"dims": [1, 2, 0]}},
    {"id": "s", "op": "matmul", "inputs": ["qh", "kt"]},
    {"id": "p", "op": "softmax", "inputs": ["s"]},
    {"id": "o", "op": "matmul", "inputs": ["p", "qh"]},
    {
        "id": "first",
        "op": "slice",
        "inputs": ["o"],
        "params": {"axis": 1, "end": 1, "squeeze": True},
    },
    {
        "id": "mid",
        "op": "slice",
        "inputs": ["first"],
        "params": {"axis": -1, "start": 1, "end": -1},
    },
    {"id": "out", "op": "dense", "inputs": ["mid"], "params": {"units": 3}},
]


def test_matmul_and_slice_shapes() -> None:
    from probes.spec import build_graph

    g = build_graph(make_spec(ATTN, inputs=[{"name": "x", "shape": [6, 8]}]))
    assert g.tensors["s"].shape == (2, 6, 6)
    assert g.tensors["first"].shape == (2, 4)
    assert g.tensors["mid"].shape == (2, 2)


AFFINE: list[dict[str, Any]] = [
    {"id": "c", "op": "conv2d", "inputs": ["x"], "params": {"filters": 4, "kernel": 3}},
    {"id": "ls", "op": "affine", "inputs": ["c"], "params": {"shape": [4, 1, 1]}},
    {
        "id": "bias",
        "op": "affine",
        "inputs": ["ls"],
        "params": {"shape": [6, 6], "scale": False, "shift": True},
    },
    {"id": "f", "op": "flatten", "inputs": ["bias"]},
    {"id": "both", "op": "affine", "inputs": ["f"], "params": {"shape": [144], "shift": True}},
]


BILINEAR: list[dict[str, Any]] = [
    {"id": "c", "op": "conv2d", "inputs": ["x"], "params": {"filters": 3, "kernel": 3}},
    {"id": "up", "op": "upsample2d", "inputs": ["c"], "params": {"scale": 2, "mode": "bilinear"}},
    {"id": "up3", "op": "upsample2d", "inputs": ["up"], "params": {"scale": 3, "mode": "bilinear"}},
]


# the norms and activations that imports map one to one (group/instance norm, PReLU, ...)
NORMS: list[dict[str, Any]] = [
    {"id": "c", "op": "conv2d", "inputs": ["x"], "params": {"filters": 4, "kernel": 3}},
    {"id": "gn", "op": "group_norm", "inputs": ["c"], "params": {"groups": 2, "eps": 1e-5}},
    {"id": "pr", "op": "prelu", "inputs": ["gn"]},
    {"id": "inn", "op": "instance_norm", "inputs": ["pr"], "params": {"eps": 1e-3}},
    {"id": "lr", "op": "leaky_relu", "inputs": ["inn"], "params": {"alpha": 0.2}},
    {"id": "gmp", "op": "global_max_pool", "inputs": ["lr"]},
    {"id": "d", "op": "dense", "inputs": ["gmp"], "params": {"units": 5}},
    {"id": "out", "op": "prelu", "inputs": ["d"]},
]


def test_norm_and_activation_ops_shapes_and_params() -> None:
    from probes.spec import analyze, build_graph

    g = build_graph(make_spec(NORMS, inputs=[{"name": "x", "shape": [3, 8, 8]}]))
    assert g.tensors["gmp"].shape == (4,)
    assert {n.id: n.out.shape for n in g.nodes}["inn"] == (4, 6, 6)
    # conv 112, group norm 8, prelu 4, instance norm 8, dense 25, prelu 5
    assert analyze(g).params == 112 + 8 + 4 + 8 + 25 + 5


# a ViT head: a learned token before and one after, positions, read both ends
CLS: list[dict[str, Any]] = [
    {"id": "e", "op": "dense", "inputs": ["x"], "params": {"units": 8}},
    {"id": "cls", "op": "class_token", "inputs": ["e"]},
    {"id": "last", "op": "class_token", "inputs": ["cls"], "params": {"at": "end"}},
    {"id": "pos", "op": "position_embedding", "inputs": ["last"], "params": {"max_len": 8}},
    {"id": "ln", "op": "layer_norm", "inputs": ["pos"]},
    {"id": "ends", "op": "slice", "inputs": ["ln"], "params": {"axis": 0, "step": 7}},
    {"id": "f", "op": "flatten", "inputs": ["ends"]},
    {"id": "out", "op": "dense", "inputs": ["f"], "params": {"units": 3}},
]


def test_class_token_shapes_and_params() -> None:
    from probes.spec import analyze, build_graph

    g = build_graph(make_spec(CLS, inputs=[{"name": "x", "shape": [6, 8]}]))
    assert g.tensors["cls"].shape == (7, 8) and g.tensors["last"].shape == (8, 8)
    assert g.tensors["ends"].shape == (2, 8)  # the first and the last token
    # dense 72, tokens 2 x 8, positions 64, layer norm 16, dense 51
    assert analyze(g).params == 72 + 16 + 64 + 16 + 51


def _rename(nodes: list[dict[str, Any]], prefix: str, src: str) -> list[dict[str, Any]]:
    ids = {str(n["id"]) for n in nodes}
    out = []
    for n in nodes:
        ins = [f"{prefix}{i}" if i in ids else src for i in n["inputs"]]
        out.append({**n, "id": f"{prefix}{n['id']}", "inputs": ins})
    return out


def combined_spec() -> ModelSpec:
    """Every new op in one two-input model: one parity run covers them all."""
    nodes = [
        *_rename(UPCONV, "u_", "img"),
        *_rename(AFFINE, "a_", "img"),
        *_rename(BILINEAR, "b_", "img"),
        *_rename(ATTN, "m_", "seq"),
        *_rename(NORMS, "n_", "img"),
        *_rename(CLS, "t_", "seq"),
    ]
    inputs = [{"name": "img", "shape": [3, 8, 8]}, {"name": "seq", "shape": [6, 8]}]
    outs = ["u_up2", "a_both", "b_up3", "m_out", "n_out", "t_out"]
    return make_spec(nodes, inputs=inputs, outputs=outs)


@pytest.mark.parametrize("mode", ["forward", "train_step"])
def test_new_ops_parity(mode: str, runner: SubprocessRunner) -> None:
    report = check_parity(combined_spec(), runner, mode=mode)  # type: ignore[arg-type]
    assert report.passed, report.model_dump()
    if mode == "forward":
        assert len(report.compared) == 6
        assert all(c.max_abs_value > 1e-2 for c in report.compared)
