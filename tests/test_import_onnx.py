"""ONNX import of real torch.onnx.export files (both exporters): spec, weights, parity.

The fixtures are exported in one subprocess per module (tests/fixtures/onnx_models.py);
nothing is downloaded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from probes.importers import import_file
from probes.importers.cache import cached_import
from probes.importers.parity import three_way_parity
from probes.runners.local import SubprocessRunner
from probes.spec import analyze, build_graph, load_spec_file, resolve_spec
from probes.weights import init_weights
from tests.conftest import ZOO

FIXTURES = Path(__file__).parent / "fixtures" / "onnx_models.py"
DEFAULT = [
    "cnn_folded",
    "cnn_dynamo",
    "lstm_tagger",
    "gru_classifier",
    "unet",
    "mlp_ts",
    "encoder_ts",
    "norms_ts",
    "vit_ts",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx")
    subprocess.run(
        [sys.executable, str(FIXTURES), str(out), *DEFAULT], check=True, capture_output=True
    )
    return out


EXPECT = {
    # name: (ops that must appear, trainable params as torch counts them)
    "cnn_folded": (
        {"conv2d", "relu6", "hardswish", "leaky_relu", "global_avg_pool", "softmax"},
        542,
    ),
    "cnn_dynamo": ({"conv2d", "batch_norm", "max_pool2d", "dense"}, 570),
    "lstm_tagger": ({"embedding", "lstm", "dense"}, 800 + 4 * 12 * (16 + 12 + 1) + 65),
    "gru_classifier": ({"gru", "dense"}, 3 * 10 * (6 + 10 + 2) + 33),
    "unet": ({"conv2d", "conv_transpose2d", "upsample2d", "concat", "sigmoid"}, 4132),
    "mlp_ts": ({"dense", "layer_norm", "gelu"}, 868),
    # nn.GroupNorm exports as reshape + InstanceNormalization + affines: fused back
    "norms_ts": ({"group_norm", "prelu", "instance_norm", "leaky_relu"}, 300),
    "encoder_ts": (
        {"embedding", "position_embedding", "self_attention", "slice", "layer_norm", "gelu"},
        3203,
    ),
    # patch conv, a learned class token, positions, one pre-norm encoder layer, head on token 0
    "vit_ts": (
        {"conv2d", "class_token", "position_embedding", "self_attention", "slice", "layer_norm"},
        784 + 16 + 17 * 16 + 2224 + 32 + 85,
    ),
}


@pytest.mark.parametrize("name", DEFAULT)
def test_import_builds_a_valid_spec_with_the_files_weights(
    exported: Path, tmp_path: Path, name: str
) -> None:
    res = import_file(exported / f"{name}.onnx", tmp_path / f"{name}.yaml")
    spec = load_spec_file(res.spec_file)  # from disk: the weights path is relative
    assert spec.weights is not None and Path(spec.weights.file) == res.weights_file.resolve()
    assert yaml.safe_load(res.spec_file.read_text())["weights"]["file"] == f"{name}.safetensors"
    graph = build_graph(spec)
    ops, params = EXPECT[name]
    assert ops <= {n.op for n in graph.nodes}
    assert "custom" not in {n.op for n in graph.nodes}  # every op first-class
    assert analyze(graph).params == params
    weights = init_weights(graph, seed=123)  # the seed no longer matters: file weights
    assert init_weights(graph, seed=7).keys() == weights.keys()
    for node, arrays in weights.items():
        for k, arr in arrays.items():
            np.testing.assert_array_equal(arr, init_weights(graph, seed=7)[node][k])


def test_folded_and_kept_batchnorm_give_the_same_function(exported: Path, tmp_path: Path) -> None:
    folded = import_file(exported / "cnn_folded.onnx", tmp_path / "f.yaml").spec
    kept = import_file(exported / "cnn_dynamo.onnx", tmp_path / "k.yaml").spec
    assert "batch_norm" not in {n.op for n in folded.nodes}
    assert sum(n.op == "batch_norm" for n in kept.nodes) == 2


def test_weights_file_tampering_is_detected(exported: Path, tmp_path: Path) -> None:
    res = import_file(exported / "mlp_ts.onnx", tmp_path / "m.yaml")
    data = bytearray(res.weights_file.read_bytes())
    data[-1] ^= 0xFF
    res.weights_file.write_bytes(bytes(data))
    from probes.errors import SpecFileError

    with pytest.raises(SpecFileError, match="does not match its sha256"):
        init_weights(build_graph(load_spec_file(res.spec_file)))


def test_resolve_spec_imports_once_per_content(exported: Path, tmp_path: Path) -> None:
    src = exported / "mlp_ts.onnx"
    first = cached_import(src, tmp_path)
    again = cached_import(src, tmp_path)
    assert not first.cached and again.cached and again.spec_file == first.spec_file
    spec = resolve_spec(str(src), ZOO, tmp_path)
    assert spec.weights is not None and spec.weights.sha256 == first.spec.weights.sha256  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name",
    [
        "cnn_dynamo",
        "vit_ts",
        pytest.param("unet", marks=pytest.mark.slow),
        pytest.param("lstm_tagger", marks=pytest.mark.slow),
        pytest.param("gru_classifier", marks=pytest.mark.slow),
        pytest.param("mlp_ts", marks=pytest.mark.slow),
        pytest.param("encoder_ts", marks=pytest.mark.slow),
        pytest.param("norms_ts", marks=pytest.mark.slow),
    ],
)
def test_three_way_parity(exported: Path, tmp_path: Path, name: str) -> None:
    res = import_file(exported / f"{name}.onnx", tmp_path / f"{name}.yaml")
    report = three_way_parity(
        res.spec, exported / f"{name}.onnx", SubprocessRunner(timeout_s=300), batch=2
    )
    assert report.passed, report.model_dump_json(indent=2)
    assert len(report.compared) == 3
    assert {c.name.split(":")[0] for c in report.compared} == {
        "onnxruntime vs torch",
        "onnxruntime vs tensorflow",
        "torch vs tensorflow",
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "encoder_dynamo",
        "bilstm_tagger",
        "bigru_tagger",
        "gru_tagger",
        "mlp_dynamo",
        "norms_dynamo",
        "vit_dynamo",
        "mixer_ts",
        "mixer_dynamo",
    ],
)
def test_more_exports_three_way(tmp_path: Path, name: str) -> None:
    subprocess.run(
        [sys.executable, str(FIXTURES), str(tmp_path), name], check=True, capture_output=True
    )
    res = import_file(tmp_path / f"{name}.onnx", tmp_path / f"{name}.yaml")
    report = three_way_parity(
        res.spec, tmp_path / f"{name}.onnx", SubprocessRunner(timeout_s=300), batch=2
    )
    assert report.passed, report.model_dump_json(indent=2)


@pytest.mark.slow
def test_tf2onnx_export_of_a_keras_model(tmp_path: Path) -> None:
    script = Path(__file__).parent / "fixtures" / "tf2onnx_export.py"
    src = tmp_path / "kcnn_tf2onnx.onnx"
    subprocess.run([sys.executable, str(script), str(src)], check=True, capture_output=True)
    res = import_file(src, tmp_path / "k.yaml")
    assert "layer_norm" in {n.op for n in res.spec.nodes}  # TF's moments form, fused
    report = three_way_parity(res.spec, src, SubprocessRunner(timeout_s=300), batch=2)
    assert report.passed, report.model_dump_json(indent=2)
