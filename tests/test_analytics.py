"""Shape inference, parameter and FLOP counts against hand-computed values."""

from __future__ import annotations

from typing import Any

import pytest

from probes.spec import analyze, build_graph
from probes.spec.ops_spatial import resolve_pads
from tests.conftest import ZOO_NAMES, make_spec, zoo_spec


def stats(
    nodes: list[dict[str, Any]], inputs: list[dict[str, Any]] | None = None
) -> dict[str, tuple[list[int], int, int]]:
    a = analyze(build_graph(make_spec(nodes, inputs)))
    return {n.id: (n.output_shape, n.params, n.flops) for n in a.nodes}


def test_conv_dense_counts() -> None:
    s = stats(
        [
            {
                "id": "c",
                "op": "conv2d",
                "inputs": ["x"],
                "params": {"filters": 8, "kernel": 3, "stride": 2, "padding": "same"},
            },
            {"id": "g", "op": "global_avg_pool", "inputs": ["c"]},
            {"id": "d", "op": "dense", "inputs": ["g"], "params": {"units": 10}},
        ]
    )
    # input 3x8x8, "same" with stride 2 -> 8x4x4 outputs, each 3*3*3 MACs
    assert s["c"] == ([8, 4, 4], 8 * 3 * 9 + 8, 2 * (8 * 4 * 4) * (3 * 9))
    assert s["d"] == ([10], 8 * 10 + 10, 2 * 8 * 10)


def test_depthwise_and_grouped_conv() -> None:
    s = stats(
        [
            {
                "id": "dw",
                "op": "conv2d",
                "inputs": ["x"],
                "params": {"filters": 6, "kernel": 3, "groups": 3, "bias": False, "padding": 1},
            },
        ]
    )
    assert s["dw"] == ([6, 8, 8], 6 * 1 * 9, 2 * 6 * 64 * 9)


def test_dilated_conv_shape() -> None:
    s = stats(
        [
            {
                "id": "c",
                "op": "conv2d",
                "inputs": ["x"],
                "params": {"filters": 2, "kernel": 3, "dilation": 2},
            }
        ]
    )
    assert s["c"][0] == [2, 4, 4]  # effective kernel 5 on 8


def test_tf_same_padding_is_asymmetric() -> None:
    assert resolve_pads(112, 3, 2, 1, "same") == (0, 1)
    assert resolve_pads(7, 3, 1, 1, "same") == (1, 1)
    assert resolve_pads(8, 4, 1, 1, "same") == (1, 2)


def test_recurrent_and_attention_counts() -> None:
    seq = [{"name": "s", "shape": [10, 4]}]
    s = stats(
        [
            {
                "id": "l",
                "op": "lstm",
                "inputs": ["s"],
                "params": {"hidden_size": 3, "bidirectional": True},
            },
            {
                "id": "g",
                "op": "gru",
                "inputs": ["l"],
                "params": {"hidden_size": 5, "return_sequences": False},
            },
        ],
        inputs=seq,
    )
    assert s["l"] == ([10, 6], 2 * (12 * 4 + 12 * 3 + 12), 2 * 2 * 10 * 12 * (4 + 3))
    assert s["g"] == ([5], 15 * 6 + 15 * 5 + 2 * 15, 2 * 10 * 15 * (6 + 5))
    s = stats(
        [{"id": "a", "op": "self_attention", "inputs": ["s"], "params": {"num_heads": 2}}],
        inputs=seq,
    )
    assert s["a"] == ([10, 4], 4 * (16 + 4), 2 * (4 * 10 * 16 + 2 * 100 * 4))


def test_norms_count_only_trainable() -> None:
    a = analyze(build_graph(make_spec([{"id": "b", "op": "batch_norm", "inputs": ["x"]}])))
    assert (a.params, a.buffers) == (6, 6)


def test_shape_ops() -> None:
    s = stats(
        [
            {"id": "p", "op": "permute", "inputs": ["x"], "params": {"dims": [1, 2, 0]}},
            {"id": "r", "op": "reshape", "inputs": ["p"], "params": {"shape": [-1, 3]}},
            {"id": "m", "op": "mean", "inputs": ["r"], "params": {"axis": 0, "keepdims": True}},
            {"id": "c", "op": "concat", "inputs": ["m", "m"], "params": {"axis": 0}},
            {"id": "f", "op": "flatten", "inputs": ["c"]},
        ]
    )
    assert [s[k][0] for k in "prmcf"] == [[8, 8, 3], [64, 3], [1, 3], [2, 3], [6]]


# torchvision's published parameter counts (torchvision.models docs, weights tables).
PUBLISHED = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "vgg16": 138_357_544,
}
# torchvision's published GFLOPS at 224x224 are multiply-accumulates: ours are 2x.
PUBLISHED_GMACS = {"resnet18": 1.81, "resnet50": 4.09, "mobilenet_v2": 0.30, "vgg16": 15.47}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_parameter_counts(name: str) -> None:
    a = analyze(build_graph(zoo_spec(name, None)))
    assert a.params == PUBLISHED[name]
    assert a.flops / 2e9 == pytest.approx(PUBLISHED_GMACS[name], abs=0.01)


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_sizes_validate(name: str) -> None:
    for size in ("default", "small"):
        a = analyze(build_graph(zoo_spec(name, size)))
        assert a.params > 0 and a.flops > 0


def test_bert_tiny_shape() -> None:
    spec = zoo_spec("bert_tiny", None)
    assert spec.inputs[0].shape == [128]
    a = analyze(build_graph(spec))
    emb = next(n for n in a.nodes if n.id == "tok_embed")
    assert emb.params == 30522 * 128 and emb.output_shape == [128, 128]
    assert sum(n.op == "self_attention" for n in a.nodes) == 2
