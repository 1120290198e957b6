"""Predict mode: evidence without running anything.

Latency and memory come from the learned predictor (docs/predictor.md) at the
production batch and default settings, with the prediction interval as the
uncertainty; deployment from the capability matrix alone; custom ops from the priors.
The predictor is the compiled one (numpy only, ``recommender/predict_cache.py``), so a
process answering in predict mode never imports scikit-learn or scipy.
"""

from __future__ import annotations

import math

from probes.config import Settings
from probes.protocol import FRAMEWORKS
from probes.settings import default_settings
from probes.spec import ModelSpec, build_graph
from recommender.capabilities import load_matrix
from recommender.evidence import custom_scores, needed_targets, target_evidence
from recommender.knowledge import load_ecosystem
from recommender.perf_features import spec_stats
from recommender.predict_cache import load_compiled
from recommender.prediction import Estimate, PredictorLike
from recommender.questionnaire import Profile
from recommender.score import Evidence, FrameworkEvidence, Quantity

Z80 = 1.2816  # the interval is 10%-90%: +-1.28 sigma in log space


def _quantity(e: Estimate, source: str) -> Quantity | None:
    if e.median <= 0:
        return None
    sigma = math.log(max(e.hi, e.median) / max(min(e.lo, e.median), 1e-12)) / (2 * Z80)
    return Quantity(value=e.median, sigma=sigma, source=source)


def gather_predicted(
    spec: ModelSpec,
    p: Profile,
    predictor: PredictorLike | None = None,
    settings: Settings | None = None,
) -> Evidence:
    """Predict-mode evidence. ``predictor`` defaults to the compiled one that
    ``settings.data_dir`` caches (built on first use, in a child process)."""
    model = predictor or load_compiled(settings)
    stats = spec_stats(build_graph(spec))  # once for both frameworks
    matrix, eco = load_matrix(), load_ecosystem()
    targets = needed_targets(p)
    tev = target_evidence(matrix, None, targets)
    cust = custom_scores(eco, None)
    caveats = [
        "predict mode: latency and memory are predicted (default settings, inference "
        "only), deployment is the capability matrix without export checks",
    ]
    frameworks = {}
    for fw in FRAMEWORKS:
        pred = model.predict(stats, fw, p.batch, default_settings(fw))
        src = f"predicted, default settings, batch {p.batch}"
        caveats += [f"{fw}: {why}" for why in pred.out_of_range]
        frameworks[fw] = FrameworkEvidence(
            framework=fw,
            infer=_quantity(pred.latency_s, src),
            memory=_quantity(pred.memory_bytes, src),
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
        links=["predictor training set: data/datasets/predictor_train.csv"],
    )
