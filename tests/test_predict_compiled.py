"""The compiled predictor: the same answers as the scikit-learn one, and a cache that
builds it in a child process so the caller never imports scikit-learn or scipy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from probes.config import Settings
from probes.settings import TFSettings, TorchSettings
from probes.spec import build_graph, resolve_spec
from recommender.predictor.answers import Prediction
from recommender.predictor.cache import (
    PredictorBuildError,
    cache_key,
    compiled_path,
    load_compiled,
)
from recommender.predictor.compiled import CompiledModel, CompiledPredictor
from recommender.predictor.dataset import DEFAULT_DATASET, load_dataset
from recommender.predictor.export import export
from recommender.predictor.features import spec_stats
from recommender.predictor.instant import Predictor
from tests.conftest import ROOT, ZOO, zoo_spec
from tests.test_predictor import TRAINING_ENV, _fixture_rows

HEAVY = ("sklearn", "scipy", "torch", "tensorflow")


def compile_via_json(p: Predictor) -> CompiledPredictor:
    """Through the JSON file format, as the cache stores it."""
    model = export(p, env_key="test", dataset_sha256="-")
    return CompiledPredictor(CompiledModel.model_validate_json(model.model_dump_json()))


@pytest.fixture(scope="module")
def fitted() -> tuple[Predictor, CompiledPredictor]:
    p = Predictor.load()
    return p, compile_via_json(p)


def assert_same(a: Prediction, b: Prediction) -> None:
    for est in ("latency_s", "memory_bytes"):
        ea, eb = getattr(a, est), getattr(b, est)
        for end in ("lo", "median", "hi"):
            assert getattr(eb, end) == pytest.approx(getattr(ea, end), rel=1e-9, abs=0)
    assert a.model_dump(exclude={"latency_s", "memory_bytes"}) == b.model_dump(
        exclude={"latency_s", "memory_bytes"}
    )


def test_compiled_equals_sklearn_on_every_training_row(
    fitted: tuple[Predictor, CompiledPredictor],
) -> None:
    p, c = fitted
    for i in range(len(p.data.X)):
        row = p.data.X[i : i + 1]
        want, got = p.log_intervals(row), c.log_intervals(row)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)  # latency, memory
        assert c.range_cells(row) == p.range_cells(row) == []


QUERIES = [
    ("resnet18", None, "torch", 8, None),
    ("vgg16", None, "tensorflow", 64, None),  # far more FLOPs than any training row
    ("bert_tiny", None, "tensorflow", 512, TFSettings(mode="xla", intra_threads=8)),
    ("mobilenet_v2", "small", "torch", 1, TorchSettings(mode="compile", channels_last=True)),
    ("text_lstm", None, "torch", 4096, TorchSettings(precision="bf16", inter_threads=3)),
]


@pytest.mark.parametrize("name,size,fw,batch,s", QUERIES)
def test_compiled_equals_sklearn_inside_and_outside_the_training_range(
    fitted: tuple[Predictor, CompiledPredictor],
    name: str,
    size: str | None,
    fw: str,
    batch: int,
    s: TorchSettings | TFSettings | None,
) -> None:
    p, c = fitted
    spec = zoo_spec(name, size)
    want = p.predict(spec, fw, batch, s)  # type: ignore[arg-type]
    assert_same(want, c.predict(spec, fw, batch, s))  # type: ignore[arg-type]
    assert (batch > 32) <= bool(want.out_of_range)
    assert_same(want, c.predict(spec_stats(build_graph(spec)), fw, batch, s))  # type: ignore[arg-type]


def test_compiled_keeps_the_not_this_machine_note() -> None:
    p = Predictor.from_rows(_fixture_rows(), env_key="another machine")
    c = compile_via_json(p)
    assert not c.env_matches
    spec = resolve_spec("lenet5", ZOO)
    for fw, pred in c.predict_both(spec, batch=4).items():
        assert_same(p.predict(spec, fw, 4), pred)
        assert any("predictor learned from (Fixture CPU" in n for n in pred.out_of_range)


def test_compiled_keeps_the_measurements_and_the_error_correlation() -> None:
    p = Predictor(load_dataset(DEFAULT_DATASET), env_key=TRAINING_ENV)  # as measured there
    c = compile_via_json(p)
    assert c.error_correlation == p.error_correlation
    assert c.model.latency.margin_column is not None and len(c.model.latency.margins) == 2
    spec = zoo_spec("resnet18", None)
    two: dict[str, TorchSettings | TFSettings] = {
        "torch": TorchSettings(intra_threads=2),
        "tensorflow": TFSettings(intra_threads=2),
    }
    measured = 0
    for batch in (1, 4, 8):
        for fw, got in c.predict_both(spec, batch, two).items():
            want = p.predict(spec, fw, batch, two[fw])
            assert_same(want, got)
            measured += want.measured
    assert measured == 4  # batches 1 and 8 were measured, batch 4 was not


def test_the_cache_key_follows_the_data_and_the_machine(tmp_path: Path) -> None:
    csv = tmp_path / "train.csv"
    csv.write_text("a,b\n1,2\n")
    key = cache_key(csv, "machine a")
    assert key == cache_key(csv, "machine a") != cache_key(csv, "machine b")
    csv.write_text("a,b\n1,3\n")
    assert cache_key(csv, "machine a") != key


RECOMMEND = """
import json, sys
from probes.config import Settings
from probes.spec import resolve_spec
from recommender.questionnaire import load_answers
from recommender.recommend import recommend
settings = Settings(data_dir=sys.argv[1], zoo_dir="{zoo}")
answers = load_answers(__import__("pathlib").Path("{root}/data/examples/mobile.yaml"))
rec = recommend(resolve_spec("lenet5", settings.zoo_dir), answers, "predict", settings=settings)
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print(json.dumps({{"choice": rec.choice, "heavy": heavy}}))
"""


def test_two_cold_processes_build_once_and_never_import_sklearn(tmp_path: Path) -> None:
    code = RECOMMEND.format(zoo=ZOO, root=ROOT, heavy=HEAVY)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        for _ in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1] and outs[0]["heavy"] == []
    assert [f.suffix for f in sorted((tmp_path / "predictor").iterdir())] == [".json", ".lock"]


def test_load_compiled_is_cached_in_memory(settings: Settings) -> None:
    c = load_compiled(settings)
    assert load_compiled(settings) is c
    assert compiled_path(settings).is_file()


def test_an_unreadable_file_is_built_again(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = load_compiled(settings)
    other = Settings(data_dir=tmp_path / "other")
    path = compiled_path(other)
    path.parent.mkdir(parents=True)
    path.write_text('{"format": 1')  # cut short
    # Building again means a child process; copying the good file stands in for it.
    copy = compiled_path(settings).read_bytes()
    monkeypatch.setattr("recommender.predictor.cache.build", lambda out, _: out.write_bytes(copy))
    assert load_compiled(other).model == good.model


def test_a_failed_build_says_why(tmp_path: Path) -> None:
    bad = tmp_path / "train.csv"
    bad.write_text("model,median_s\n")  # no rows
    with pytest.raises(PredictorBuildError, match=r"exit status 1: .*training set is empty"):
        load_compiled(Settings(data_dir=tmp_path / "var"), bad)
