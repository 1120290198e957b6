"""Questionnaire -> Profile, and the scoring: monotonicity, vetoes, 'either', flips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from probes.protocol import Framework
from recommender.evidence.model import Evidence, FrameworkEvidence, Quantity, TargetEvidence
from recommender.evidence.predicted import gather_predicted
from recommender.knowledge.capabilities import load_matrix
from recommender.knowledge.ecosystem import load_ecosystem
from recommender.predictor.instant import Predictor
from recommender.questionnaire import (
    CRITERIA,
    QUESTIONS_PATH,
    AnswerError,
    Constraint,
    Criterion,
    load_answers,
    load_questionnaire,
    to_profile,
)
from recommender.recommend import NAMES, apply_flip, decide_profile
from recommender.score import Flip, scores, utilities
from tests.conftest import ROOT, zoo_spec


def fw_ev(
    fw: str, infer_ms: float, mem_mb: float, *, train_ms: float | None = None, **kw: Any
) -> FrameworkEvidence:
    target = TargetEvidence(
        target="server_python",
        verdict="verified",
        level="native",
        status="GA",
        tool="t",
        viable=True,
        summary="ok",
    )
    return FrameworkEvidence(
        framework=fw,
        infer=Quantity(value=infer_ms / 1e3, sigma=0.01, source="measured"),
        train=Quantity(value=train_ms / 1e3, sigma=0.01, source="m") if train_ms else None,
        memory=Quantity(value=mem_mb * 2**20, sigma=0.01, source="measured"),
        targets=kw.pop("targets", {"server_python": target}),
        custom_ops=kw.pop("custom_ops", 0.8),
        custom_ops_why="prior",
        ecosystem=kw.pop(
            "ecosystem", {"dynamic": 1, "distributed": 1, "debugging": 1, "research": 1}
        ),
    )


FACTORS = ("dynamic", "distributed", "debugging", "research")


def evidence(torch: FrameworkEvidence, tf: FrameworkEvidence) -> Evidence:
    return Evidence(model="m", mode="predict", frameworks={"torch": torch, "tensorflow": tf})


# ---------------------------------------------------------------- questionnaire


def test_questionnaire_covers_the_required_topics() -> None:
    ids = {q.id for q in load_questionnaire().questions}
    assert {
        "targets",
        "latency_slo_ms",
        "batch_size",
        "memory_budget_mb",
        "emphasis",
        "training_scale",
        "custom_ops",
        "dynamic",
        "experience_torch",
        "experience_tf",
        "languages",
        "debugging",
        "focus",
    } <= ids
    for q in load_questionnaire().questions:
        assert q.text and q.help and (q.options or q.type == "number")


def test_default_profile_weights_sum_to_one_and_constraints_follow_answers() -> None:
    p = to_profile({})
    assert abs(sum(p.weights.values()) - 1) < 1e-9 and p.weights["custom_ops"] == 0
    assert [c.target for c in p.constraints] == ["server_python"]
    p = to_profile(
        {"targets": ["browser", "android"], "languages": ["go"], "memory_budget_mb": 512}
    )
    kinds = {(c.kind, c.target or c.limit) for c in p.constraints}
    assert kinds == {
        ("target", "browser"),
        ("target", "android"),
        ("target", "go"),
        ("memory_mb", 512.0),
    }


def test_answers_move_the_weights_they_should() -> None:
    base = to_profile({})
    research = to_profile({"focus": "research"})
    assert research.weights["ecosystem"] > base.weights["ecosystem"]
    assert research.weights["deployment"] < base.weights["deployment"]
    custom = to_profile({"custom_ops": "many"})
    assert (
        custom.weights["custom_ops"] > to_profile({"custom_ops": "few"}).weights["custom_ops"] > 0
    )
    assert to_profile({"emphasis": "training"}).infer_share == 0
    assert to_profile({"emphasis": "training", "training_scale": "none"}).infer_share == 1
    dyn = to_profile({"dynamic": "yes"})
    assert dyn.factor_weights["dynamic"] > 0 and any("dynamic" in r for r in dyn.reasons)


@pytest.mark.parametrize(
    "answers,path",
    [
        ({"targets": ["mars"]}, "answers.targets"),
        ({"batch_size": 0}, "answers.batch_size"),
        ({"focus": "fun"}, "answers.focus"),
        ({"experience_tf": True}, "answers.experience_tf"),
        ({"colour": "blue"}, "answers.colour"),
    ],
)
def test_bad_answers_name_the_question(answers: dict[str, Any], path: str) -> None:
    with pytest.raises(AnswerError) as e:
        to_profile(answers)
    assert e.value.path == path and path in e.value.message


# ---------------------------------------------------------------- scoring

A_FAST = evidence(fw_ev("torch", 10, 300), fw_ev("tensorflow", 20, 200))


def test_faster_framework_wins_speed_and_smaller_wins_memory() -> None:
    s = scores(A_FAST, to_profile({}))
    assert s["speed"] == {"torch": 1.0, "tensorflow": pytest.approx(0.5)}
    assert s["memory"]["tensorflow"] == 1.0 and s["memory"]["torch"] == pytest.approx(2 / 3)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=12, max_size=12),
    st.lists(st.floats(0.01, 5), min_size=6, max_size=6),
    st.sampled_from(CRITERIA),
    st.floats(0.01, 10),
)
def test_more_weight_on_a_criterion_a_wins_never_lowers_its_advantage(
    raw: list[float], w: list[float], c: Criterion, extra: float
) -> None:
    """Raw (answer-given) weight added to a criterion A wins raises A's weighted
    advantage, and so never turns A's win into a loss: normalising the weights to sum 1
    is a positive scaling, which keeps the sign of the margin."""
    s: dict[Criterion, dict[Framework, float]] = {
        k: {"torch": raw[2 * i], "tensorflow": raw[2 * i + 1]} for i, k in enumerate(CRITERIA)
    }
    if s[c]["torch"] <= s[c]["tensorflow"]:
        s[c]["torch"], s[c]["tensorflow"] = s[c]["tensorflow"], s[c]["torch"]
    if s[c]["torch"] - s[c]["tensorflow"] < 1e-6:
        return
    before = dict(zip(CRITERIA, w, strict=True))
    after = {k: v + (extra if k == c else 0) for k, v in before.items()}

    def margin(raw_w: dict[Criterion, float], normalise: bool) -> float:
        total = sum(raw_w.values()) if normalise else 1.0
        u = utilities(s, {k: v / total for k, v in raw_w.items()})
        return u["torch"] - u["tensorflow"]

    assert margin(after, False) > margin(before, False)
    if margin(before, True) > 0:
        assert margin(after, True) > 0


def test_memory_budget_vetoes_and_the_veto_is_stated() -> None:
    rec = decide_profile(A_FAST, to_profile({"memory_budget_mb": 250}), samples=200)
    assert rec.choice == "tensorflow" and [v.framework for v in rec.vetoes] == ["torch"]
    assert "memory <= 250 MiB" in rec.summary and "peak 300 MiB" in rec.summary


def test_a_failed_target_vetoes_and_both_vetoed_is_neither() -> None:
    failed = TargetEvidence(
        target="browser",
        verdict="failed",
        level="conversion",
        status="GA",
        tool="onnx",
        viable=False,
        summary="onnx export failed for this model",
    )
    ev = evidence(
        fw_ev("torch", 10, 300, targets={"browser": failed}), fw_ev("tensorflow", 20, 200)
    )
    p = to_profile({"targets": ["browser"]})
    ev.frameworks["tensorflow"].targets = {
        "browser": failed.model_copy(update={"verdict": "verified", "viable": True})
    }
    rec = decide_profile(ev, p, samples=200)
    assert rec.choice == "tensorflow" and rec.vetoes[0].reason.startswith("onnx export failed")
    ev.frameworks["tensorflow"].targets = {"browser": failed}
    assert decide_profile(ev, p, samples=50).choice == "neither"


def test_within_noise_says_either() -> None:
    twin = evidence(fw_ev("torch", 10.0, 200), fw_ev("tensorflow", 10.05, 200))
    rec = decide_profile(twin, to_profile({}), samples=500)
    assert rec.choice == "either" and rec.confidence < 0.8 and rec.leaning == "torch"
    clear = decide_profile(A_FAST, to_profile({}), samples=500)
    assert clear.choice == "torch" and clear.confidence > 0.99


def test_every_reported_weight_flip_really_flips() -> None:
    # torch is faster; tensorflow has the better team fit and memory.
    ev = evidence(fw_ev("torch", 10, 300), fw_ev("tensorflow", 14, 200))
    p = to_profile({"experience_tf": 3, "experience_torch": 0})
    rec = decide_profile(ev, p, samples=200)
    flips = [f for f in rec.sensitivity if f.kind == "weight"]
    assert rec.leaning is not None and flips
    for f in flips:
        flipped = decide_profile(
            ev, apply_flip(p, f.model_copy(update={"weight_to": _past(f)})), 50
        )
        assert flipped.leaning != rec.leaning, f.text
        assert f.weight_from is not None and f.weight_to is not None
        short = f.model_copy(
            update={"weight_to": f.weight_from + 0.98 * (f.weight_to - f.weight_from)}
        )
        assert decide_profile(ev, apply_flip(p, short), 50).leaning == rec.leaning, f.text


def _past(f: Flip) -> float:
    """Just beyond the tie point, clamped to [0, 1]."""
    assert f.weight_from is not None and f.weight_to is not None
    step = 0.01 if f.weight_to > f.weight_from else -0.01
    return min(1.0, max(0.0, f.weight_to + step))


def test_constraint_flip_is_real() -> None:
    rec = decide_profile(A_FAST, to_profile({}), samples=200)
    text = next(f.text for f in rec.sensitivity if f.kind == "constraint" and "memory" in f.text)
    assert "between 200 and 300 MiB" in text
    vetoed = decide_profile(A_FAST, to_profile({"memory_budget_mb": 250}), samples=50)
    assert vetoed.choice == "tensorflow"


def test_a_veto_flip_names_the_relaxed_constraint_that_really_flips() -> None:
    # torch leads on utility (A_FAST) but a 250 MB budget vetoes it (peak 300 MB)
    rec = decide_profile(A_FAST, to_profile({"memory_budget_mb": 250}), samples=200)
    assert rec.choice == "tensorflow" and rec.margin < 0  # the veto decided, not utility
    text = next(f.text for f in rec.sensitivity if "lift PyTorch's veto" in f.text)
    assert "a memory budget of at least 300 MiB" in text
    # the flip is the nominal threshold; at it, noise makes the answer "either"
    at = decide_profile(A_FAST, to_profile({"memory_budget_mb": 300}), 200)
    assert at.leaning == "torch" and at.choice == "either"
    assert decide_profile(A_FAST, to_profile({"memory_budget_mb": 299}), 50).leaning != "torch"
    assert "because PyTorch is vetoed: memory <= 250 MiB (peak 300 MiB)" in rec.summary
    assert "PyTorch would lead by" in rec.summary


def test_a_latency_veto_and_neither_say_what_would_lift_them() -> None:
    p = to_profile({"latency_slo_ms": 12, "memory_budget_mb": 250})
    rec = decide_profile(A_FAST, p, samples=200)  # torch 10 ms/300 MB, TF 20 ms/200 MB
    assert rec.choice == "neither" and rec.confidence > 0.99
    by = {
        fw: next(f.text for f in rec.sensitivity if NAMES[fw] + "'s veto" in f.text)
        for fw in ("torch", "tensorflow")
    }
    assert "memory budget of at least 300 MiB" in by["torch"]
    assert "latency objective of at least 20 ms" in by["tensorflow"]
    lifted = to_profile({"latency_slo_ms": 20, "memory_budget_mb": 250})
    assert decide_profile(A_FAST, lifted, 50).leaning == "tensorflow"
    short = to_profile({"latency_slo_ms": 19.9, "memory_budget_mb": 250})
    assert decide_profile(A_FAST, short, 50).choice == "neither"


def test_the_summary_names_what_the_leader_wins_on() -> None:
    # TF wins team (experience) and memory, torch speed: the reasons must be TF's own
    ev = evidence(fw_ev("torch", 10, 300), fw_ev("tensorflow", 11, 150))
    rec = decide_profile(ev, to_profile({"experience_tf": 3, "experience_torch": 0}), 200)
    assert rec.leaning == "tensorflow"
    mostly = rec.summary.split("mostly on ")[1]
    assert "speed" not in mostly and ("team" in mostly or "memory" in mostly)


def test_predict_mode_caveat_says_nothing_was_measured() -> None:
    rec = decide_profile(A_FAST, to_profile({}), samples=50)  # A_FAST is mode="predict"
    assert any("nothing was measured" in c for c in rec.caveats)
    mobile = to_profile({"targets": ["android"], "memory_budget_mb": 400})
    rec = decide_profile(A_FAST, mobile, samples=50)
    assert any("not on android" in c for c in rec.caveats)


def test_recommendation_is_json_serialisable() -> None:
    rec = decide_profile(A_FAST, to_profile({}), samples=50)
    assert type(rec).model_validate_json(rec.model_dump_json()) == rec
    assert {c.criterion for c in rec.criteria} == set(CRITERIA)
    assert all(isinstance(c, Constraint) for c in rec.profile.constraints)


def test_a_tied_criterion_is_never_reported_as_a_flip() -> None:
    ev = evidence(fw_ev("torch", 10, 200), fw_ev("tensorflow", 12, 200))
    rec = decide_profile(ev, to_profile({}), samples=50)
    assert not any(f.criterion in ("memory", "deployment", "team") for f in rec.sensitivity)


def test_data_files_are_parsed_once_per_version_and_shared_read_only(tmp_path: Path) -> None:
    assert load_matrix() is load_matrix() and load_ecosystem() is load_ecosystem()
    q = load_questionnaire()
    assert q is load_questionnaire()
    with pytest.raises(ValidationError, match="frozen"):
        q.questions[0].text = "changed"  # type: ignore[misc]
    copy = tmp_path / "questionnaire.yaml"
    copy.write_text(QUESTIONS_PATH.read_text())
    first = load_questionnaire(copy)
    copy.write_text(QUESTIONS_PATH.read_text().replace("What", "Which", 1))
    assert load_questionnaire(copy) is not first  # an edited file is parsed again


def test_a_recommendation_leaves_the_shared_data_as_it_was() -> None:
    shared = (load_matrix(), load_ecosystem(), load_questionnaire())
    before = [m.model_dump() for m in shared]
    answers = load_answers(ROOT / "data" / "examples" / "mobile.yaml")
    resolved = shared[2].resolve({})
    resolved["targets"].append("android")  # a caller's copy, not the default
    profile = to_profile(answers)
    decide_profile(gather_predicted(zoo_spec("lenet5", None), profile, Predictor.load()), profile)
    assert [m.model_dump() for m in shared] == before
