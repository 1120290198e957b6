"""recommend() end to end: predict mode (instant) and measure -> cached (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.config import Settings
from probes.protocol import FRAMEWORKS
from recommender.questionnaire import load_answers
from recommender.recommend import NAMES, recommend
from tests.conftest import ROOT, ZOO, zoo_spec

EXAMPLES = ROOT / "data" / "examples"


@pytest.mark.parametrize("profile", ["mobile", "server-gpu", "research", "browser"])
def test_predict_mode_answers_every_example_profile(profile: str, settings: Settings) -> None:
    answers = load_answers(EXAMPLES / f"{profile}.yaml")
    rec = recommend(zoo_spec("resnet18", None), answers, "predict", settings=settings)
    assert rec.choice in ("torch", "tensorflow", "either", "neither")
    assert rec.summary and rec.criteria and rec.caveats
    for fw in ("torch", "tensorflow"):
        ev = rec.evidence.frameworks[fw]
        assert ev.infer is not None and ev.infer.value > 0 and ev.memory is not None
    assert type(rec).model_validate_json(rec.model_dump_json()) == rec


def test_the_example_profiles_lean_where_their_answers_point(settings: Settings) -> None:
    """The issue's four example profiles on resnet18 give different, explained answers.
    Speed and memory are predictions that depend on the machine, so only what the
    answers themselves decide is pinned: a PyTorch research team leans PyTorch, a
    Keras team shipping to the browser leans TensorFlow."""
    recs = {
        p: recommend(zoo_spec("resnet18", None), load_answers(EXAMPLES / f"{p}.yaml"), "predict",
                     settings=settings)
        for p in ("mobile", "server-gpu", "research", "browser")
    }  # fmt: skip
    assert recs["research"].leaning == "torch"
    assert recs["browser"].leaning == "tensorflow"
    assert len({(r.choice, r.leaning) for r in recs.values()}) >= 3
    for r in recs.values():  # every answer says why, and what would change it
        assert r.leaning is None or NAMES[r.leaning] in r.summary
        assert r.sensitivity or r.vetoes


@pytest.mark.slow
def test_measure_then_cached(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, zoo_dir=ZOO)
    spec = zoo_spec("mlp", "small")
    answers = {"targets": ["browser"], "emphasis": "both", "batch_size": 4}
    measured = recommend(spec, answers, "measure", settings=settings, trials=2)
    for fw in ("torch", "tensorflow"):
        ev = measured.evidence.frameworks[fw]
        assert ev.infer is not None and ev.train is not None and ev.memory is not None
        assert ev.infer.source.startswith("paired rounds")
        assert ev.config in {o.label for o in ev.options}
        assert ev.targets["browser"].verdict == "verified"  # the ONNX export ran
    cached = recommend(spec, answers, "cached", settings=settings)
    for fw in FRAMEWORKS:
        m, c = measured.evidence.frameworks[fw], cached.evidence.frameworks[fw]
        assert c.options and c.infer is not None and m.infer is not None
        assert 0.5 < c.infer.value / m.infer.value < 2  # stored single probes vs paired rounds
        assert c.targets["browser"].verdict == "verified"
    assert cached.leaning == measured.leaning
