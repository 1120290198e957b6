"""Every validation error is raised, names the node, and says what was expected/found."""

from __future__ import annotations

from typing import Any

import pytest

from probes import errors
from probes.spec import Limits, analyze, build_graph, check_limits, spec_from_mapping
from tests.conftest import make_spec, zoo_spec


def conv(node_id: str, src: str, **params: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "op": "conv2d",
        "inputs": [src],
        "params": {"filters": 4, "kernel": 3, **params},
    }


def check(exc: type[errors.SpecError], node: str | None, *fragments: str, **kw: Any) -> None:
    nodes = kw.pop("nodes")
    with pytest.raises(exc) as info:
        build_graph(make_spec(nodes, **kw))
    assert info.value.node == node
    for frag in fragments:
        assert frag in info.value.message, info.value.message
    if node:
        assert f"node '{node}'" in info.value.message


def test_unknown_op() -> None:
    check(
        errors.UnknownOpError,
        "c",
        "unknown op 'conv3d'",
        "conv2d",
        nodes=[{"id": "c", "op": "conv3d", "inputs": ["x"]}],
    )


def test_bad_param_value() -> None:
    check(errors.ParamError, "c", "filters", nodes=[conv("c", "x", filters=0)])


def test_unknown_param() -> None:
    check(
        errors.ParamError,
        "c",
        "'unitz'",
        nodes=[{"id": "c", "op": "dense", "inputs": ["x"], "params": {"unitz": 3}}],
    )


def test_bad_param_type() -> None:
    check(errors.ParamError, "c", "padding", nodes=[conv("c", "x", padding="full")])


def test_wrong_number_of_inputs() -> None:
    check(
        errors.ArityError,
        "a",
        "at least 2",
        "found 1",
        nodes=[{"id": "a", "op": "add", "inputs": ["x"]}],
    )
    check(
        errors.ArityError,
        "r",
        "takes 1",
        "found 2",
        nodes=[{"id": "r", "op": "relu", "inputs": ["x", "x"]}],
    )


def test_unknown_input_reference() -> None:
    check(errors.UnknownInputError, "c", "'nope'", nodes=[conv("c", "nope")])


def test_unknown_output() -> None:
    check(errors.UnknownInputError, None, "'zzz'", nodes=[conv("c", "x")], outputs=["zzz"])


def test_cycle() -> None:
    nodes = [
        {"id": "a", "op": "add", "inputs": ["x", "b"]},
        {"id": "b", "op": "relu", "inputs": ["a"]},
    ]
    with pytest.raises(errors.CycleError) as info:
        build_graph(make_spec(nodes, outputs=["b"]))
    assert "cycle" in info.value.message and "'a'" in info.value.message


def test_unreachable_node() -> None:
    check(
        errors.UnreachableNodeError,
        "dead",
        "unreachable",
        nodes=[conv("c", "x"), {"id": "dead", "op": "relu", "inputs": ["x"]}],
        outputs=["c"],
    )


def test_shape_mismatch_states_expected_and_found() -> None:
    nodes = [
        conv("a", "x"),
        conv("b", "x", kernel=1),
        {"id": "s", "op": "add", "inputs": ["a", "b"]},
    ]
    check(errors.ShapeMismatchError, "s", "expected [4, 6, 6]", "found [4, 8, 8]", nodes=nodes)


def test_shape_mismatch_rank() -> None:
    check(
        errors.ShapeMismatchError,
        "l",
        "rank 2",
        "found shape [3, 8, 8]",
        nodes=[{"id": "l", "op": "lstm", "inputs": ["x"], "params": {"hidden_size": 4}}],
    )


def test_dtype_mismatch() -> None:
    check(
        errors.ShapeMismatchError,
        "e",
        "int64",
        "float32",
        nodes=[
            {
                "id": "e",
                "op": "embedding",
                "inputs": ["x"],
                "params": {"num_embeddings": 5, "embedding_dim": 2},
            }
        ],
    )


def test_non_positive_input_dimension() -> None:
    with pytest.raises(errors.NonPositiveDimError) as info:
        build_graph(make_spec([conv("c", "x")], inputs=[{"name": "x", "shape": [3, 0, 8]}]))
    assert "[3, 0, 8]" in info.value.message and info.value.path == "inputs.0.shape"


def test_non_positive_computed_dimension() -> None:
    check(errors.NonPositiveDimError, "c", "non-positive", nodes=[conv("c", "x", kernel=9)])


def test_duplicate_id() -> None:
    check(errors.SpecError, "c", "duplicate", nodes=[conv("c", "x"), conv("c", "x")])


def test_document_errors_name_the_node_and_path() -> None:
    raw = {
        "name": "t",
        "inputs": [{"name": "x", "shape": [3]}],
        "nodes": [{"id": "d1", "op": "dense", "inputs": "x-not-a-list"}],
        "outputs": ["d1"],
    }
    with pytest.raises(errors.SpecError) as info:
        spec_from_mapping(raw)
    assert info.value.node == "d1" and info.value.path == "nodes.0.inputs"


@pytest.mark.parametrize(
    ("limits", "fragment"),
    [
        (Limits(max_nodes=10), "68 nodes"),
        (Limits(max_params=1_000_000), "11,689,512 parameters"),
        (Limits(max_activation_bytes=100 * 2**20), "activation memory estimate at batch 32"),
    ],
)
def test_limits_refuse_with_estimate(limits: Limits, fragment: str) -> None:
    analysis = analyze(build_graph(zoo_spec("resnet18", None)))
    with pytest.raises(errors.LimitExceededError) as info:
        check_limits(analysis, 32, limits)
    assert fragment in info.value.message


def test_limits_allow_default_zoo() -> None:
    check_limits(analyze(build_graph(zoo_spec("vgg16", None))), 8, Limits())
