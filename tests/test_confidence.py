"""The vectorised confidence makes, draw by draw, the decisions of the per-draw loop it
replaced (kept here as the reference), for the same seed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from recommender.evidence.model import Evidence, Quantity
from recommender.questionnaire import Profile, to_profile
from recommender.resample import confidence, decisions
from recommender.score import QUANTITIES, RUN_TO_RUN_SIGMA, decide, scores, utilities, vetoes
from tests.test_recommender import evidence, fw_ev


def _perturbed(ev: Evidence, rng: np.random.Generator) -> Evidence:
    """One draw: a common factor per quantity (shared_sigma), then each framework's own."""
    common = {name: rng.normal() for name in QUANTITIES}
    frameworks = {}
    for fw, f in ev.frameworks.items():
        upd = {}
        for name in QUANTITIES:
            q: Quantity | None = getattr(f, name)
            if q is not None:
                own = rng.normal(0, max(q.sigma, RUN_TO_RUN_SIGMA))
                factor = math.exp(own + q.shared_sigma * common[name])
                upd[name] = q.model_copy(update={"value": q.value * factor})
        frameworks[fw] = f.model_copy(update=upd)
    return ev.model_copy(update={"frameworks": frameworks})


def reference_decisions(ev: Evidence, p: Profile, samples: int, seed: int = 0) -> list[str]:
    """The implementation before vectorising: redraw, re-score and re-decide, per draw."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(samples):
        e = _perturbed(ev, rng)
        vetoed = {v.framework for v in vetoes(e, p)}
        out.append(decide(utilities(scores(e, p), p.weights), vetoed))
    return out


def _q(value: float, sigma: float, shared: float = 0.0) -> Quantity:
    return Quantity(value=value, sigma=sigma, shared_sigma=shared, source="predicted")


def _failed_target() -> dict[str, Any]:
    t = fw_ev("torch", 1, 1).targets["server_python"]
    return {"server_python": t.model_copy(update={"verdict": "failed", "viable": False})}


CLOSE = evidence(fw_ev("torch", 10, 300), fw_ev("tensorflow", 10.3, 290))
PREDICTED = evidence(
    fw_ev("torch", 10, 300).model_copy(update={"infer": _q(0.010, 0.4, 0.3)}),
    fw_ev("tensorflow", 12, 280).model_copy(update={"memory": _q(280 * 2**20, 0.3, 0.2)}),
)
TRAINED = evidence(fw_ev("torch", 10, 300, train_ms=40), fw_ev("tensorflow", 9, 300, train_ms=45))
MISSING = evidence(
    fw_ev("torch", 10, 300).model_copy(update={"memory": None}),
    fw_ev("tensorflow", 10.2, 300).model_copy(update={"infer": None}),
)
TARGET_VETO = evidence(fw_ev("torch", 10, 300), fw_ev("tensorflow", 10.2, 301))
TARGET_VETO.frameworks["torch"] = TARGET_VETO.frameworks["torch"].model_copy(
    update={"targets": _failed_target()}
)
CASES: dict[str, tuple[Evidence, dict[str, Any]]] = {
    "close": (CLOSE, {}),
    "predicted, shared sigma": (PREDICTED, {}),
    "training time": (TRAINED, {"emphasis": "both", "training_scale": "single_machine"}),
    "memory budget veto": (CLOSE, {"memory_budget_mb": 295}),
    "latency veto, both sometimes": (CLOSE, {"latency_slo_ms": 10.15}),
    "missing quantities": (MISSING, {"memory_budget_mb": 301, "latency_slo_ms": 10.1}),
    "a target veto": (TARGET_VETO, {"memory_budget_mb": 301}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_vectorised_decisions_equal_the_per_draw_loop(case: str) -> None:
    ev, answers = CASES[case]
    p = to_profile(answers)
    for seed in (0, 7):
        want = reference_decisions(ev, p, 400, seed)
        assert decisions(ev, p, 400, seed) == want
        for choice in ("torch", "tensorflow", "neither"):
            assert confidence(ev, p, choice, 400, seed) == want.count(choice) / 400
    assert len(set(want)) > 1  # the case really is uncertain: the draws disagree


def test_missing_evidence_everywhere_still_decides() -> None:
    bare = {"infer": None, "memory": None}
    ev = evidence(fw_ev("torch", 1, 1).model_copy(update=bare), fw_ev("tensorflow", 1, 1))
    ev.frameworks["tensorflow"] = ev.frameworks["tensorflow"].model_copy(update=bare)
    p = to_profile({})
    assert decisions(ev, p, 50) == reference_decisions(ev, p, 50) == ["torch"] * 50
