"""The learned performance predictor: estimator conventions, the train/evaluate
pipeline on a synthetic fixture (no measuring), range checks, the committed CSV."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.utils.estimator_checks import (  # type: ignore[import-untyped]
    parametrize_with_checks,
)

from probes.settings import TFSettings, TorchSettings, default_settings
from probes.spec import build_graph, spec_hash
from recommender.evidence.predicted import gather_predicted
from recommender.predictor.answers import Z80, shared_fraction
from recommender.predictor.dataset import (
    DEFAULT_DATASET,
    load_dataset,
    read_rows,
    settings_from_fields,
    settings_to_fields,
    to_dataset,
)
from recommender.predictor.estimator import PerfPredictor
from recommender.predictor.evaluation import default_factory, evaluate, matched_pairs
from recommender.predictor.features import FEATURES, STAT_COLUMNS, query_features, spec_stats
from recommender.predictor.instant import Predictor, faster
from recommender.questionnaire import to_profile
from tests.conftest import ROOT, zoo_spec

TRAINING_ENV = "e282a5b87b010a11"  # the machine that measured the committed CSV

FAST: dict[str, Any] = {"n_trees": 20, "cv": 3}


# The default method on the cost base (one term, priced by one modifier: generic data
# has no physics) with fewer trees and folds, the leaf size chosen out of fold and one
# conformal margin per value of column 0; and the ridge base alone. PerfPredictor()
# itself passes too, in 10 s.
@parametrize_with_checks(  # type: ignore[untyped-decorator]
    [
        PerfPredictor(terms=(0,), modifiers=(0,), leaf_sizes=(2, 5), calibrate_by=0, **FAST),
        PerfPredictor(method="linear"),
    ]
)
def test_sklearn_estimator_conventions(estimator: Any, check: Callable[[Any], None]) -> None:
    check(estimator)


def _fixture_rows(n_models: int = 6, seed: int = 0) -> list[dict[str, str]]:
    """Synthetic measurements: latency = overhead + per-node cost + FLOPs / rate."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(n_models):
        stats = {c: 0.0 for c in STAT_COLUMNS}
        share = rng.dirichlet(np.ones(3))
        stats.update(flops_conv=share[0], flops_dense=share[1], flops_attention=share[2])
        stats.update(nodes_conv=share[0], nodes_dense=share[1], nodes_attention=share[2])
        log_flops = rng.uniform(5, 9)
        stats.update(
            log10_params=log_flops - 1,
            log10_flops=log_flops,
            log10_input=rng.uniform(2, 5),
            log10_nodes=rng.uniform(0.5, 2),
            log10_weight_bytes=log_flops,
            log10_act_bytes=log_flops - 2,
        )
        for fw, rate, over in (("torch", 4e10, 1e-4), ("tensorflow", 3e10, 3e-4)):
            for batch in (1, 4, 16):
                s = default_settings(fw)
                for variant in (s, s.model_copy(update={"intra_threads": 1})):
                    speed = rate / (2 if variant.intra_threads == 1 else 1)
                    lat = over + 10 ** stats["log10_nodes"] * 1e-5 + 10**log_flops * batch / speed
                    lat *= math.exp(rng.normal(0, 0.05))
                    mem = 2e7 + 10 ** stats["log10_act_bytes"] * batch * 3
                    rows.append(
                        {
                            "model": f"m{m}",
                            "size": "default",
                            "framework": fw,
                            "batch": str(batch),
                            "threads": "2",
                            **settings_to_fields(variant),
                            **{k: repr(float(v)) for k, v in stats.items()},
                            "median_s": repr(lat),
                            "peak_rss_bytes": str(int(mem)),
                            "baseline_rss_bytes": "250000000",
                            "env_key": "fixture",
                            "cpu_model": "Fixture CPU",
                        }
                    )
    return rows


def test_train_evaluate_pipeline_on_fixture() -> None:
    ds = to_dataset(_fixture_rows())
    assert ds.X.shape == (6 * 2 * 3 * 2, len(FEATURES))
    rep = evaluate(ds, lambda: default_factory(**FAST))
    assert rep.rows == 72 and rep.models == 6 and len(rep.per_model) == 6
    assert rep.latency_mape < 0.6 and rep.memory_mape < 0.6
    assert 0 <= rep.latency_coverage <= 1 and rep.nominal_coverage == pytest.approx(0.8)
    assert len(rep.verdicts) == 6 * 3  # default settings, per (model, batch)
    assert rep.verdict_agreement >= 0.5
    assert 0 <= rep.ratio_coverage <= 1 and 0.5 <= rep.verdict_confidence <= 1
    assert set(rep.latency_coverage_by_framework) == {"torch", "tensorflow"}
    # the same question to both frameworks: default and threads=1, per (model, batch)
    assert len(matched_pairs(ds)) == 6 * 3 * 2


def test_leaf_size_and_margins_are_chosen_out_of_fold() -> None:
    ds = to_dataset(_fixture_rows())
    is_tf = FEATURES.index("is_tf")
    est = default_factory(**FAST).fit(ds.X, ds.log_latency, groups=ds.groups)
    assert est.min_samples_leaf_ in est.leaf_sizes
    assert est.calibration_values_.tolist() == [0.0, 1.0]
    lo, hi = est.predict_interval(ds.X)
    med = est.predict(ds.X)
    # each framework's interval is widened by its own margin
    own = est.calibration_margins_[ds.X[:, is_tf].astype(int)]
    assert np.all(lo <= med - own + 1e-12) and np.all(hi >= med + own - 1e-12)
    assert np.isfinite(est.oof_median_).all()
    single = default_factory(**FAST, calibrate_by=None, leaf_sizes=()).fit(
        ds.X, ds.log_latency, groups=ds.groups
    )
    assert single.calibration_margins_.size == 0 and single.min_samples_leaf_ == 5


def test_out_of_range_is_stated() -> None:
    predictor = Predictor.from_rows(_fixture_rows(), env_key="fixture")
    stats = {c: float(v) for c, v in _fixture_rows()[0].items() if c in STAT_COLUMNS}
    inside = predictor.predict(stats, "torch", batch=4)
    assert inside.out_of_range == [] and inside.env_matches
    far = predictor.predict({**stats, "log10_flops": 12.0}, "tensorflow", batch=4096)
    flops = "this model's compute per sample (1e+12 FLOPs) is above the largest"
    assert any(n.startswith(flops) for n in far.out_of_range), far.out_of_range
    assert any(n.startswith("this model's batch (4.1e+03)") for n in far.out_of_range)
    assert all("--mode measure" in n and "log10" not in n for n in far.out_of_range)
    bf16 = predictor.predict(stats, "torch", 4, TorchSettings(precision="bf16"))
    assert any("never saw bf16 precision" in n for n in bf16.out_of_range)
    other = Predictor.from_rows(_fixture_rows(), env_key="another machine")
    assert not other.env_matches
    notes = other.predict(stats, "torch").out_of_range
    assert any("fwadvisor calibrate --quick" in n for n in notes), notes


def test_query_features_match_training_rows() -> None:
    graph = build_graph(zoo_spec("lenet5"))
    stats = spec_stats(graph)
    s = TFSettings(mode="xla", intra_threads=1)
    row = {"framework": "tensorflow", "batch": "8", "threads": "1", **settings_to_fields(s)}
    row.update({k: repr(v) for k, v in stats.items()})
    assert settings_from_fields("tensorflow", row) == s
    from_graph = query_features(graph, "tensorflow", 8, s, cores=2)
    assert from_graph == query_features(stats, "tensorflow", 8, s, cores=2)
    assert from_graph["tf_xla"] == 1 and from_graph["log2_threads"] == 0
    with pytest.raises(ValueError, match="settings are for torch"):
        query_features(graph, "tensorflow", 1, TorchSettings())


def test_committed_training_set_answers_a_zoo_question() -> None:
    assert load_dataset(DEFAULT_DATASET).X.shape[0] == len(read_rows(DEFAULT_DATASET)) >= 100
    predictor = Predictor.load()
    both = predictor.predict_both(zoo_spec("resnet18"), batch=8)
    for p in both.values():
        for e in (p.latency_s, p.memory_bytes):
            assert 0 < e.lo <= e.median <= e.hi
    assert faster(both) in ("torch", "tensorflow")
    assert both["tensorflow"].baseline_bytes > 1e8
    assert Predictor.load() is predictor  # fitted once per file


def test_predictor_never_imports_a_framework() -> None:
    code = (
        "import sys; from recommender.predictor.instant import Predictor; "
        "from tests.conftest import zoo_spec; "
        "Predictor.load().predict(zoo_spec('mlp'), 'torch'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def on_training_machine() -> Predictor:
    """The committed training set, as the machine that measured it sees it."""
    return Predictor(load_dataset(DEFAULT_DATASET), env_key=TRAINING_ENV)


def test_a_measured_question_is_answered_by_its_measurement(
    on_training_machine: Predictor,
) -> None:
    p = on_training_machine
    assert p.env_matches
    spec = zoo_spec("resnet18", None)
    row = next(
        r
        for r in read_rows(DEFAULT_DATASET)
        if r["spec_hash"] == spec_hash(spec)
        and r["framework"] == "torch"
        and r["batch"] == "8"
        and r["settings_label"] == "eager t2 fp32"
    )
    got = p.predict(spec, "torch", 8, TorchSettings(intra_threads=2))
    assert got.measured and got.latency_s.median == float(row["median_s"])
    assert got.memory_bytes.median == float(row["peak_rss_bytes"])
    assert got.latency_s.lo < got.latency_s.median < got.latency_s.hi
    # the statistics alone do not say which spec this is: a prediction
    stats = spec_stats(build_graph(spec))
    assert not p.predict(stats, "torch", 8, TorchSettings(intra_threads=2)).measured
    assert p.predict(
        stats, "torch", 8, TorchSettings(intra_threads=2), spec_hash=spec_hash(spec)
    ).measured
    # another batch, other settings, or another machine's rows: predicted
    assert not p.predict(spec, "torch", 4, TorchSettings(intra_threads=2)).measured
    assert not p.predict(
        spec, "torch", 8, TorchSettings(intra_threads=2, precision="bf16")
    ).measured
    other = Predictor(load_dataset(DEFAULT_DATASET), env_key="another machine")
    assert not other.predict(spec, "torch", 8, TorchSettings(intra_threads=2)).measured


def test_predict_mode_splits_the_error_both_frameworks_share(
    on_training_machine: Predictor,
) -> None:
    p = Predictor.load()
    assert set(p.error_correlation) == {"latency", "memory"}
    assert all(-1 <= v <= 1 for v in p.error_correlation.values())
    profile = to_profile({"batch_size": 4})  # not a measured batch: both predicted
    ev = gather_predicted(zoo_spec("resnet18", None), profile, p)
    c = shared_fraction(p.error_correlation["latency"])
    for fw, f in ev.frameworks.items():
        q = f.infer
        assert q is not None and q.source.startswith("predicted")
        pred = p.predict(zoo_spec("resnet18", None), fw, 4)
        total = np.log(pred.latency_s.hi / pred.latency_s.lo) / (2 * Z80)
        assert q.sigma**2 + q.shared_sigma**2 == pytest.approx(total**2)
        assert q.shared_sigma == pytest.approx(total * np.sqrt(c))
    # a measured question (on the machine that measured it): its own noise, nothing shared
    measured = gather_predicted(
        zoo_spec("resnet18", None), to_profile({"batch_size": 8}), on_training_machine
    )
    for f in measured.frameworks.values():
        assert f.infer is not None and f.infer.source.startswith("measured")
        assert f.infer.shared_sigma == 0 and f.infer.sigma < 0.2
    assert any("training measurement" in c for c in measured.caveats)
