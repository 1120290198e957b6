"""Predict mode: evidence without running anything.

Latency and memory come from the instant predictor (docs/predictor.md) at the
production batch and default settings, with the prediction interval as the
uncertainty; deployment from the capability matrix alone; custom ops from the priors.

Each prediction's sigma (from its interval) is split into a part both frameworks share
and a part of its own, by the correlation of the torch and TensorFlow errors that the
predictor measured out of fold (``error_correlation``): a shared error moves both
frameworks together (vetoes), only the own parts move their ratio. A question the
training set measured on this machine is answered by the measurement, whose noise is
its own.
The predictor is this machine's per-operator calibration (``recommender/predictor/
choose.py``), else the nearest stored calibration with wider intervals, else, as the
last fallback, the old whole-model predictor in its compiled form (numpy only,
``recommender/predictor/cache.py``); each but the first says so in a caveat with the
command that removes it. A process answering in predict mode never imports
scikit-learn, scipy or a framework.
"""

from __future__ import annotations

import math

from probes.config import Settings
from probes.protocol import FRAMEWORKS, Framework
from probes.spec import ModelSpec, SpecMemo, analyzed, spec_hash
from recommender.evidence.gatherer import custom_scores, needed_targets, target_evidence
from recommender.evidence.model import Evidence, FrameworkEvidence, Quantity
from recommender.knowledge.capabilities import load_matrix
from recommender.knowledge.ecosystem import load_ecosystem
from recommender.predictor.answers import Z80, Estimate, Prediction, PredictorLike, shared_fraction
from recommender.predictor.cache import load_compiled
from recommender.predictor.calibrated import CalibratedPredictor
from recommender.predictor.choose import choose
from recommender.predictor.features import spec_stats
from recommender.questionnaire import Profile

#: A spec's predictor statistics, computed once per spec (shared, read-only).
STATS: SpecMemo[dict[str, float]] = SpecMemo(lambda spec: spec_stats(analyzed(spec)[0]))


def _quantity(e: Estimate, source: str, shared: float = 0.0) -> Quantity | None:
    """``shared``: the share of the variance common to both frameworks."""
    if e.median <= 0:
        return None
    sigma = math.log(max(e.hi, e.median) / max(min(e.lo, e.median), 1e-12)) / (2 * Z80)
    return Quantity(
        value=e.median,
        sigma=sigma * math.sqrt(1 - shared),
        shared_sigma=sigma * math.sqrt(shared),
        source=source,
    )


def _source(pred: Prediction) -> str:
    what = "measured (predictor training set)" if pred.measured else "predicted"
    return f"{what}, default settings, batch {pred.batch}"


def gather_predicted(
    spec: ModelSpec,
    p: Profile,
    predictor: PredictorLike | None = None,
    settings: Settings | None = None,
) -> Evidence:
    """Predict-mode evidence. ``predictor`` defaults to the compiled one that
    ``settings.data_dir`` caches (built on first use, in a child process)."""
    model, which, notes = _predictor(predictor, settings)
    key = spec_hash(spec)
    if isinstance(model, CalibratedPredictor):
        preds = model.predict_both(analyzed(spec)[0], p.batch)
    else:  # once for both frameworks, and once per spec per process
        preds = model.predict_both(STATS(spec, key), p.batch, spec_hash=key)
    # A shared error exists only between two predictions: a measured side has none.
    both = not any(pred.measured for pred in preds.values())
    shared = {
        target: shared_fraction(rho) if both else 0.0
        for target, rho in model.error_correlation.items()
    }
    matrix, eco = load_matrix(), load_ecosystem()
    targets = needed_targets(p)
    tev = target_evidence(matrix, None, targets)
    cust = custom_scores(eco, None)
    caveats = [
        "predict mode: latency and memory are predicted (default settings, inference "
        "only), deployment is the capability matrix without export checks",
        *notes,
    ]
    frameworks: dict[Framework, FrameworkEvidence] = {}
    for fw in FRAMEWORKS:
        pred = preds[fw]
        src = _source(pred)
        caveats += [f"{fw}: {why}" for why in pred.out_of_range]
        if pred.measured:
            caveats.append(
                f"{fw}: latency and memory are the predictor's training measurement of this "
                f"model at batch {pred.batch} on this machine, not a prediction"
            )
        frameworks[fw] = FrameworkEvidence(
            framework=fw,
            infer=_quantity(pred.latency_s, src, shared.get("latency", 0.0)),
            memory=_quantity(pred.memory_bytes, src, shared.get("memory", 0.0)),
            targets=tev[fw],
            custom_ops=cust[fw][0],
            custom_ops_why=cust[fw][1],
            ecosystem={k: eco.score(k, fw).score for k in eco.factors},
        )
    if p.infer_share < 1:
        caveats.append("training time is not predicted: speed uses inference only")
    return Evidence(
        model=spec.name,
        mode="predict",
        frameworks=frameworks,
        caveats=caveats,
        links=[which],
    )


def _predictor(
    given: PredictorLike | None, settings: Settings | None
) -> tuple[PredictorLike, str, list[str]]:
    """The predictor, what it was calibrated on (for the links) and its caveats."""
    if given is not None:
        return given, "predictor: given by the caller", []
    choice = choose(settings)
    if choice.predictor is not None:
        return choice.predictor, f"calibration: {choice.calibration}", choice.caveats
    old = "predictor training set: data/datasets/predictor_train.csv (last fallback)"
    return load_compiled(settings), old, choice.caveats
