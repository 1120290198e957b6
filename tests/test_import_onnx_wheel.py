"""The test models shipped inside the installed ``onnx`` wheel (backend/test/data).

They are written at opsets 6 to 12, below what the importer reads (13 to 23), so the test
first upgrades each with ONNX's own version converter to opset 17. Every model must then
either import into a valid spec or be refused with a clear one-line error naming what
is unsupported: never another exception. A sample of the imported ones passes
three-way parity (ONNX Runtime on the upgraded file, torch build, Keras build).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import onnx
import pytest
from onnx import version_converter

from probes.errors import AdvisorError, UnsupportedOpsError
from probes.importers import import_file
from probes.importers.onnx_import import convert_graph
from probes.importers.parity import three_way_parity
from probes.runners.local import SubprocessRunner
from probes.spec import build_graph, spec_from_mapping

DATA = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data"
MODELS = sorted(
    [*glob.glob(str(DATA / "*" / "*" / "model.onnx")), *glob.glob(str(DATA / "light" / "*.onnx"))]
)
pytestmark = pytest.mark.skipif(not MODELS, reason="this onnx wheel ships no test models")


def _label(path: str) -> str:
    return str(Path(path).relative_to(DATA).parent if path.endswith("model.onnx") else path)


def _upgraded(path: str) -> onnx.ModelProto | None:
    try:
        return version_converter.convert_version(onnx.load(path), 17)
    except Exception:  # the converter's own limits; not the importer's business
        return None


def test_every_wheel_model_imports_or_is_refused_clearly() -> None:
    imported, refused, skipped = [], [], []
    for path in MODELS:
        model = _upgraded(path)
        if model is None:
            skipped.append(path)
            continue
        try:
            spec = convert_graph(model, "m").spec
        except AdvisorError as e:
            msg = str(e)
            assert msg and "\n" not in msg and "Traceback" not in msg, (_label(path), msg)
            if isinstance(e, UnsupportedOpsError):
                assert all(op and node for op, node, _ in e.nodes), (_label(path), e.nodes)
            refused.append(path)
            continue
        build_graph(spec_from_mapping(spec))  # the spec is valid
        imported.append(path)
    assert len(imported) + len(refused) + len(skipped) == len(MODELS)
    assert len(imported) >= 70, [_label(p) for p in imported]  # 73 when this was written
    assert len(skipped) <= 5


REFUSED = [
    ("pytorch-converted/test_Conv3d", "Conv (node 3: 3-D convolution"),
    ("simple/test_gradient_of_add", "ai.onnx.preview.training.Gradient (node my_gradient"),
    ("simple/test_sequence_model4", "SequenceConstruct (node seq_1)"),
]


@pytest.mark.parametrize(("name", "message"), REFUSED)
def test_refusals_through_the_bounded_child_are_one_line(
    tmp_path: Path, name: str, message: str
) -> None:
    model = _upgraded(str(DATA / name / "model.onnx"))
    assert model is not None
    src = tmp_path / "m.onnx"
    onnx.save_model(model, str(src))
    with pytest.raises(UnsupportedOpsError) as e:
        import_file(src, tmp_path / "m.yaml")
    assert message in str(e.value) and "\n" not in str(e.value)


PARITY = [
    "pytorch-converted/test_Conv2d_groups",
    *(
        pytest.param(n, marks=pytest.mark.slow)
        for n in (
            "pytorch-converted/test_ConvTranspose2d",
            "pytorch-converted/test_PReLU_2d",
            "pytorch-converted/test_LogSoftmax",
            "pytorch-converted/test_SELU",
            "pytorch-converted/test_GLU",
            "pytorch-converted/test_PixelShuffle",
            "pytorch-converted/test_Embedding",
            "pytorch-operator/test_operator_symbolic_override",
            "pytorch-operator/test_operator_max",
        )
    ),
]


@pytest.mark.parametrize("name", PARITY)
def test_wheel_models_three_way_parity(tmp_path: Path, name: str) -> None:
    model = _upgraded(str(DATA / name / "model.onnx"))
    assert model is not None
    src = tmp_path / "m.onnx"
    onnx.save_model(model, str(src))
    res = import_file(src, tmp_path / "m.yaml")
    report = three_way_parity(
        res.spec,
        src,
        SubprocessRunner(timeout_s=300),
        batch=int(res.extra.get("static_batch") or 2),  # these files fix their batch
        input_dtypes=res.extra.get("input_dtypes"),
    )
    assert report.passed, report.model_dump_json(indent=2)
