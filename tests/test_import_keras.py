"""Keras 3 ``.keras`` import: our own zip + HDF5 reader, never ``load_model``.

Fixtures are saved by Keras in a subprocess (tests/fixtures/keras_models.py); hostile
archives are written by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from probes.errors import ImportRefusedError, UnsupportedOpsError
from probes.importers import import_file
from probes.importers.parity import three_way_parity
from probes.runners.local import SubprocessRunner
from probes.spec import analyze, build_graph

SCRIPT = Path(__file__).parent / "fixtures" / "keras_models.py"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("keras")
    subprocess.run([sys.executable, str(SCRIPT), str(out)], check=True, capture_output=True)
    return out


@pytest.mark.parametrize(
    ("name", "ops"),
    [
        ("kcnn", {"conv2d", "batch_norm", "relu6", "add", "layer_norm", "concat", "softmax"}),
        ("kseq", {"embedding", "lstm", "gru", "dense"}),
        ("knorms", {"group_norm", "prelu", "leaky_relu", "global_max_pool"}),
        ("kbidir", {"gru", "lstm", "dense"}),
    ],
)
def test_keras_import_same_params_as_keras(
    saved: Path, tmp_path: Path, name: str, ops: set[str]
) -> None:
    res = import_file(saved / f"{name}.keras", tmp_path / f"{name}.yaml")
    graph = build_graph(res.spec)
    assert ops <= {n.op for n in graph.nodes}
    assert analyze(graph).params == json.loads((saved / "params.json").read_text())[name]


def test_keras_image_input_becomes_channels_first(saved: Path, tmp_path: Path) -> None:
    spec = import_file(saved / "kcnn.keras", tmp_path / "k.yaml").spec
    assert spec.inputs[0].shape == [3, 16, 16]
    depthwise = next(n for n in spec.nodes if n.id == "dw")
    assert depthwise.params["groups"] == 8


@pytest.mark.parametrize(
    "name", ["kcnn", "knorms", "kbidir", pytest.param("kseq", marks=pytest.mark.slow)]
)
def test_keras_three_way_parity(saved: Path, tmp_path: Path, name: str) -> None:
    res = import_file(saved / f"{name}.keras", tmp_path / f"{name}.yaml")
    report = three_way_parity(res.spec, saved / f"{name}.keras", SubprocessRunner(timeout_s=300))
    assert report.passed, report.model_dump_json(indent=2)
    assert report.compared[0].name.startswith("keras (original graph) vs torch")


def _archive(path: Path, config: dict[str, object], extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", json.dumps(config))
        for k, v in (extra or {}).items():
            z.writestr(k, v)
    return path


def _seq(*layers: dict[str, Any], shape: list[object] | None = None) -> dict[str, object]:
    inp = {"class_name": "InputLayer", "config": {"batch_shape": shape or [None, 4], "name": "in"}}
    return {"class_name": "Sequential", "config": {"name": "m", "layers": [inp, *layers]}}


@pytest.mark.parametrize(
    ("name", "layer", "why"),
    [
        (
            "knested",
            "Functional (node inner_block: a model used as a layer",
            "build the model flat",
        ),
    ],
)
def test_wrappers_and_nested_models_are_refused_with_the_reason(
    saved: Path, tmp_path: Path, name: str, layer: str, why: str
) -> None:
    with pytest.raises(UnsupportedOpsError) as e:
        import_file(saved / f"{name}.keras", tmp_path / f"{name}.yaml")
    assert layer in str(e.value) and why in str(e.value)
    assert len(e.value.nodes) == 1  # one line, naming the one layer


def test_lambda_layer_is_refused_by_name(tmp_path: Path) -> None:
    lam = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {
            "name": "evil_fn",
            "function": {"class_name": "__lambda__", "config": {"code": "payload"}},
        },
    }
    path = _archive(tmp_path / "lam.keras", _seq(lam))
    with pytest.raises(ImportRefusedError, match="layer 'evil_fn' is a Lambda"):
        import_file(path, tmp_path / "lam.yaml")


def test_custom_object_is_refused(tmp_path: Path) -> None:
    layer = {
        "module": "mypkg.layers",
        "class_name": "Fancy",
        "registered_name": "MyPkg>Fancy",
        "config": {"name": "fancy_1"},
    }
    path = _archive(tmp_path / "c.keras", _seq(layer))
    with pytest.raises(ImportRefusedError, match="layer 'fancy_1' is a custom object"):
        import_file(path, tmp_path / "c.yaml")


def test_zip_bomb_is_refused(tmp_path: Path) -> None:
    bomb = b"\0" * (64 * 2**20)  # 64 MiB of zeros deflate ~1000:1
    path = _archive(tmp_path / "bomb.keras", _seq(), {"model.weights.h5": bomb})
    with pytest.raises(ImportRefusedError, match="zip bomb"):
        import_file(path, tmp_path / "bomb.yaml")


def test_absurd_input_dimension_is_refused(tmp_path: Path) -> None:
    dense = {"class_name": "Dense", "module": "keras.layers", "config": {"name": "d", "units": 2}}
    path = _archive(tmp_path / "huge.keras", _seq(dense, shape=[None, 10**12]))
    with pytest.raises(ImportRefusedError, match="too many elements"):
        import_file(path, tmp_path / "huge.yaml")


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.keras"
    path.write_bytes(b"PK not really")
    with pytest.raises(ImportRefusedError, match=r"not a \.keras archive"):
        import_file(path, tmp_path / "x.yaml")


def test_hdf5_dataset_declaring_absurd_size_is_refused(tmp_path: Path) -> None:
    import io

    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:  # chunked + gzip: tiny on disk, 2**33 floats declared
        h5.create_dataset(
            "layers/dense/vars/0",
            shape=(2**17, 2**16),
            dtype="f4",
            chunks=(1024, 1024),
            compression="gzip",
        )
    dense = {"class_name": "Dense", "module": "keras.layers", "config": {"name": "d", "units": 2}}
    path = _archive(tmp_path / "h5.keras", _seq(dense), {"model.weights.h5": buf.getvalue()})
    with pytest.raises(ImportRefusedError, match="too large"):
        import_file(path, tmp_path / "h5.yaml")
