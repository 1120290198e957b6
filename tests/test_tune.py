"""Tuning with a deterministic fake runner (fast), plus one real tiny tuning."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import optuna
import pytest

from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import Framework, ProbeRequest, ProbeResult
from probes.runners.local import SubprocessRunner
from probes.runners.warm import WarmPool, WarmRunner
from probes.settings import FrameworkSettings, TFSettings, TorchSettings
from probes.spec import build_graph
from probes.store import ResultStore
from probes.tune.compare import TIE, is_flip, noise_threshold, pareto_front, tune, verdict
from probes.tune.models import TrialSummary, TuneConfig, Verdict
from probes.tune.space import search_space
from probes.tune.study import informed_starts
from tests.conftest import zoo_spec
from tests.tuning_fakes import FakeRunner


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/optuna.sqlite3"


def run(
    tmp_path: Path, runner: FakeRunner, name: str = "lenet5", store: bool = False, **cfg: object
) -> object:
    prober = Prober(runner, ResultStore(tmp_path / "r.sqlite") if store else None)
    config = TuneConfig(**{"n_trials": 12, "seed": 1, **cfg})
    return tune(zoo_spec(name), config, prober, url(tmp_path))


def test_failures_become_fail_trials_and_invalid_are_pruned(tmp_path: Path) -> None:
    rep = run(tmp_path, FakeRunner(), n_trials=40)
    torch = rep.frameworks[0]  # type: ignore[attr-defined]
    fails = [t for t in torch.history if t.state == "FAIL"]
    pruned = [t for t in torch.history if t.state == "PRUNED"]
    assert fails and all(
        t.reason and t.reason.split(":")[0] in ("failed", "timeout") for t in fails
    )
    assert any("needs mode=compile" in (t.reason or "") for t in pruned)
    assert torch.best is not None and torch.best.state == "COMPLETE"
    tf = rep.frameworks[1]  # type: ignore[attr-defined]
    assert any((t.reason or "").startswith("oom") for t in tf.history) or tf.best


def test_default_first_budget_and_speedup(tmp_path: Path) -> None:
    runner = FakeRunner()
    rep = run(tmp_path, runner, n_trials=8, confirm_rounds=0)
    for fw in rep.frameworks:  # type: ignore[attr-defined]
        assert fw.history[0].source == "default" and fw.default.number == 0
        probed = [t for t in fw.history if t.state != "PRUNED" or t.median_s is not None]
        assert fw.speedup >= 1.0 and len(probed) >= 8
    peak_calls = sum(r.workload.kind == "peak" for r in runner.calls)
    model_calls = len(runner.calls) - peak_calls
    assert model_calls == 16  # exactly the budget: duplicates are answered, not re-probed


def test_verdicts_come_from_paired_rounds_over_default_and_best(tmp_path: Path) -> None:
    runner = FakeRunner(bias={"tensorflow": 0.5})
    rep = run(tmp_path, runner, n_trials=8, confirm_rounds=3)
    conf = rep.confirmation  # type: ignore[attr-defined]
    assert conf is not None and conf.rounds == 3
    origins = {(c.candidate.framework, c.candidate.origin) for c in conf.candidates}
    assert {("torch", "default"), ("tensorflow", "default")} <= origins
    model_calls = [r for r in runner.calls if r.workload.kind != "peak"]
    assert len(model_calls) == 16 + 3 * len(conf.candidates)
    # rounds alternate the frameworks: no two consecutive confirmation probes share one
    tail = [r.framework for r in model_calls[16:]]
    assert all(a != b for a, b in itertools.pairwise(tail[:2]))
    for v in (rep.naive, rep.tuned):  # type: ignore[attr-defined]
        assert v.paired and v.lo is not None and v.hi is not None and "90% interval" in v.note


def test_timeout_budget(tmp_path: Path) -> None:
    rep = run(tmp_path, FakeRunner(sleep_s=0.3), n_trials=100, timeout_s=1.0, sampler="random")
    for fw in rep.frameworks:  # type: ignore[attr-defined]
        assert 1 <= sum(1 for t in fw.history if t.median_s is not None) < 100


class NoisyRunner(FakeRunner):
    """FakeRunner whose timings have an IQR of ``rel`` x the median."""

    def __init__(self, rel: float, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.rel = rel

    def run(self, request: ProbeRequest) -> ProbeResult:
        r = super().run(request)
        t = r.measurement.timing if r.measurement else None
        if t is not None:
            t.iqr_s = self.rel * t.median_s
        return r


def test_a_win_within_the_noise_is_a_tie_and_a_tie_never_flips(tmp_path: Path) -> None:
    # TF's default is 4% slower than torch's; XLA then makes TF ~1.5x faster tuned
    bias = {"torch": 1.0, "tensorflow": 1.04}
    (tmp_path / "quiet").mkdir()
    # the searches' own figures (no paired rounds): the IQR rule decides ties
    quiet = run(
        tmp_path / "quiet", FakeRunner(bias=bias), n_trials=30, name="mlp", confirm_rounds=0
    )
    # without noise, the 4% default win is a win, and XLA's tuned win for TF is a flip
    assert quiet.naive.winner == "torch" and quiet.tuned.winner == "tensorflow"  # type: ignore[attr-defined]
    assert quiet.flipped  # type: ignore[attr-defined]
    (tmp_path / "noisy").mkdir()
    noisy = run(
        tmp_path / "noisy", NoisyRunner(0.10, bias=bias), n_trials=30, name="mlp", confirm_rounds=0
    )
    naive, tuned = noisy.naive, noisy.tuned  # type: ignore[attr-defined]
    assert naive.winner == TIE and "within the measured noise (below 1.10x)" in naive.note
    assert naive.ratio == pytest.approx(1.04)
    assert tuned.winner == "tensorflow"  # 1.5x is well beyond 10% noise
    assert not noisy.flipped  # type: ignore[attr-defined]  # tie -> winner is not a flip


def summary(value: float, settings: str) -> TrialSummary:
    return TrialSummary(
        number=0,
        state="COMPLETE",
        params={},
        values=[value],
        source=None,
        reason=None,
        settings=settings,
        batch=1,
        median_s=value,
        throughput_sps=None,
        peak_rss_bytes=None,
        feasible=True,
    )


def test_verdict_ties_below_the_noise_threshold() -> None:
    cfg = TuneConfig()
    torch, tf = summary(1.00, "eager"), summary(1.01, "function")  # text_lstm's 1.01x
    assert verdict(torch, tf, cfg, "tuned vs tuned").winner == "torch"  # no noise known
    tie = verdict(torch, tf, cfg, "tuned vs tuned", (0.09, 0.09))  # ~9% IQR each
    assert tie.winner == TIE and tie.ratio == pytest.approx(1.01)
    assert noise_threshold(0.09, 0.09) == pytest.approx(1.09)
    assert verdict(torch, summary(1.10, "xla"), cfg, "t", (0.09, 0.09)).winner == "torch"
    faster = verdict(summary(1.2, "a"), summary(1.0, "b"), cfg, "t", (0.1, 0.35))
    assert faster.winner == TIE  # 1.2x < 1 + (0.1 + 0.35) / 2
    thr = TuneConfig(objective="throughput")  # higher is better; the same noise rule
    assert verdict(summary(100, "a"), summary(95, "b"), thr, "t", (0.1, 0.1)).winner == TIE
    assert verdict(summary(100, "a"), summary(80, "b"), thr, "t", (0.1, 0.1)).winner == "torch"


def test_only_winner_to_other_winner_is_a_flip() -> None:
    def v(winner: str | None) -> Verdict:
        return Verdict(winner=winner, ratio=None, note="")

    assert is_flip(v("torch"), v("tensorflow")) and is_flip(v("tensorflow"), v("torch"))
    assert not is_flip(v("torch"), v("torch"))
    for a, b in ((TIE, "torch"), ("torch", TIE), (TIE, TIE), (None, "torch"), ("torch", None)):
        assert not is_flip(v(a), v(b)), (a, b)


def test_pareto_front_is_non_dominated(tmp_path: Path) -> None:
    rep = run(tmp_path, FakeRunner(), objective="pareto", n_trials=20)
    for fw in rep.frameworks:  # type: ignore[attr-defined]
        front = fw.pareto
        assert front and all(t.values and len(t.values) == 2 for t in front)
        done = [t for t in fw.history if t.state == "COMPLETE"]
        for t in front:
            assert not any(
                u.values[0] <= t.values[0] and u.values[1] <= t.values[1] and u.values != t.values
                for u in done
            )
    assert pareto_front([]) == []


def test_memory_budget_constraint(tmp_path: Path) -> None:
    rep = run(tmp_path, FakeRunner(), n_trials=30, memory_budget_mb=100)
    for fw in rep.frameworks:  # type: ignore[attr-defined]
        assert fw.best is not None and fw.best.feasible
        assert fw.best.peak_rss_bytes <= 100 * 2**20  # compiled modes use 3x: excluded


def test_throughput_searches_batch(tmp_path: Path) -> None:
    rep = run(tmp_path, FakeRunner(), objective="throughput", n_trials=15, batches=[1, 8, 32])
    torch = rep.frameworks[0]  # type: ignore[attr-defined]
    done = [t for t in torch.history if t.state == "COMPLETE"]
    assert len({t.batch for t in done}) > 1 and "batch" in torch.search_space
    assert torch.best.values[0] == max(t.values[0] for t in done)
    assert torch.best.values[0] == pytest.approx(torch.best.throughput_sps)


def test_warm_start_uses_similar_model(tmp_path: Path) -> None:
    first = run(tmp_path, FakeRunner(), name="resnet18", store=True, n_trials=15)
    best = first.frameworks[0].best.params  # type: ignore[attr-defined]
    second = run(tmp_path, FakeRunner(), name="mobilenet_v2", store=True, n_trials=3)
    torch = second.frameworks[0]  # type: ignore[attr-defined]
    warm = [t for t in torch.history if t.source == "warm-start"]
    informed = sum(t.source == "informed" for t in torch.history)
    assert warm and warm[0].params == best
    assert warm[0].number == 1 + informed  # queued right after the default and priors


def test_resumes_after_sigkill(tmp_path: Path) -> None:
    script = tmp_path / "tune_child.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from probes.probe import Prober
        from probes.tune.models import TuneConfig
        from probes.tune.compare import tune
        from tests.conftest import zoo_spec
        from tests.tuning_fakes import FakeRunner
        cfg = TuneConfig(n_trials=10, seed=3, heartbeat_s=1, grace_s=2)
        tune(zoo_spec("mlp"), cfg, Prober(FakeRunner(sleep_s=0.3)),
             {url(tmp_path)!r}, ("torch",))
    """)
    )
    child = subprocess.Popen([sys.executable, str(script)])
    storage = optuna.storages.RDBStorage(url(tmp_path))
    deadline = time.monotonic() + 60
    done: list[optuna.trial.FrozenTrial] = []
    while time.monotonic() < deadline and len(done) < 4:
        time.sleep(0.2)
        try:
            study = optuna.load_study(study_name=None, storage=storage)
        except (KeyError, ValueError):
            continue
        done = [t for t in study.get_trials() if t.state.is_finished()]
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    before = {
        t.number: (t.state, t.values, t.params)
        for t in optuna.load_study(study_name=None, storage=storage).get_trials()
        if t.state.is_finished()
    }
    assert len(before) >= 4
    time.sleep(2.5)  # past the grace period: the interrupted trial is now stale
    runner = FakeRunner()
    cfg = TuneConfig(n_trials=10, seed=3, heartbeat_s=1, grace_s=2)
    rep = tune(zoo_spec("mlp"), cfg, Prober(runner), url(tmp_path), ("torch",))
    after = {t.number: t for t in rep.frameworks[0].history}
    for number, (state, values, params) in before.items():  # nothing finished is lost
        assert after[number].state == state.name and after[number].params == params
        assert after[number].values == values
    ran_before = sum(1 for t in before.values() if t[0].name != "PRUNED" or True)
    model_calls = [r for r in runner.calls if r.workload.kind != "peak"]
    finished_params = [p for _, _, p in before.values()]
    for call in model_calls:  # nothing finished is re-run
        s = call.effective_settings().model_dump(exclude={"framework"})
        assert not any(
            all(
                s.get(k) == v or (k == "inter_threads" and v == 0 and s.get(k) is None)
                for k, v in p.items()
            )
            for p in finished_params
        ), s
    stale = [t for t in rep.frameworks[0].history if t.state == "FAIL" and not t.reason]
    assert len(stale) <= 1 and ran_before
    assert (
        sum(
            1
            for t in rep.frameworks[0].history
            if t.median_s is not None or (t.reason and t.state != "PRUNED")
        )
        >= 10
    )


def test_studies_open_in_optuna_dashboard(tmp_path: Path) -> None:
    from optuna_dashboard import wsgi

    run(tmp_path, FakeRunner(), n_trials=3)
    app = wsgi(url(tmp_path))
    status: list[str] = []
    environ: dict[str, object] = {"PATH_INFO": "/api/studies"}
    setup_testing_defaults(environ)
    body = b"".join(app(environ, lambda s, h, *exc: status.append(s)))
    studies = json.loads(body)["study_summaries"]
    assert status[0].startswith("200") and len(studies) == 2
    assert {s["study_name"].split("-")[2] for s in studies} == {"torch", "tensorflow"}


def test_real_tuning_tiny_model(tmp_path: Path) -> None:
    """Real probes in warm workers, as the product runs them (fresh processes took
    this test 129 s, most of it in 16 imports of the frameworks)."""
    pool = WarmPool()
    prober = Prober(
        WarmRunner(SubprocessRunner(timeout_s=300), pool),
        ResultStore(tmp_path / "r.sqlite"),
        MeasureConfig(min_time_s=0.05, min_iters=5, max_warmup_s=0.5),
    )
    # compile trials cost ~17 s each on this CPU; keep the real test to eager/graph modes
    cfg = TuneConfig(n_trials=2, seed=0, sampler="random")
    spec = zoo_spec("mlp")
    graph = build_graph(spec)
    torch_space = search_space("torch", graph, "infer", "latency", [1])
    torch_space |= {"mode": ["eager"], "compile_mode": ["default"]}
    tf_space = search_space("tensorflow", graph, "infer", "latency", [1])
    tf_space["mode"] = ["eager", "function"]
    spaces = {"torch": torch_space, "tensorflow": tf_space}
    try:
        rep = tune(spec, cfg, prober, url(tmp_path), spaces=spaces)
    finally:
        pool.close_all()
    for fw in rep.frameworks:
        assert fw.default is not None and fw.default.state == "COMPLETE"
        assert fw.best is not None and fw.best_result is not None
        assert fw.best_result.measurement and fw.best_result.measurement.timing
        assert fw.speedup is not None and fw.speedup >= 1.0
    # real timings: either side may be within the noise, a tie
    assert rep.naive.winner in ("torch", "tensorflow", "tie") and rep.tuned.winner


def test_informed_starts_follow_the_default() -> None:
    space: dict[str, list[Any]] = {"precision": ["fp32", "bf16"], "batch": [1, 8, 32]}
    default: dict[str, Any] = {"precision": "fp32", "batch": 1}
    assert informed_starts(default, space, native_bf16=False) == [
        {"precision": "fp32", "batch": 32}
    ]
    # throughput: the compute-bound knobs together first, then the batch alone
    assert informed_starts(default, space, native_bf16=True) == [
        {"precision": "bf16", "batch": 32},
        {"precision": "fp32", "batch": 32},
    ]
    conv = {**space, "channels_last": [False, True]}
    assert informed_starts({**default, "channels_last": False}, conv, native_bf16=True)[0] == {
        "precision": "bf16",
        "batch": 32,
        "channels_last": True,
    }
    assert informed_starts({"precision": "fp32"}, {"precision": ["fp32", "bf16"]}, True) == [
        {"precision": "bf16"}
    ]
    modes = ({"mode": "compile"},)
    space_m = {"mode": ["eager", "compile"], "precision": ["fp32", "bf16"]}
    default_m = {"mode": "eager", "precision": "fp32"}
    assert informed_starts(default_m, space_m, False, modes) == [
        {"mode": "compile", "precision": "fp32"}
    ]
    # a mode the space does not hold is not invented
    assert informed_starts(default_m, {"precision": ["fp32"]}, False, modes) == []
    # throughput: the compiler is stacked on the compute-bound start, then on the batch
    batched: dict[str, list[Any]] = {**space_m, "batch": [1, 32]}
    assert informed_starts({**default_m, "batch": 1}, batched, True, modes) == [
        {"mode": "eager", "precision": "bf16", "batch": 32},
        {"mode": "compile", "precision": "bf16", "batch": 32},
        {"mode": "eager", "precision": "fp32", "batch": 32},
        {"mode": "compile", "precision": "fp32", "batch": 32},
    ]


def test_a_small_budget_always_measures_the_graph_compiler(tmp_path: Path) -> None:
    rep = run(tmp_path, FakeRunner(), n_trials=3, confirm_rounds=0)
    for fw, mode in (("torch", "compile"), ("tensorflow", "xla")):
        ft = next(f for f in rep.frameworks if f.framework == fw)  # type: ignore[attr-defined]
        informed = [t for t in ft.history if t.source == "informed"]
        assert any(t.params.get("mode") == mode for t in informed), fw


def test_informed_start_tries_largest_batch_second(tmp_path: Path) -> None:
    rep = run(tmp_path, FakeRunner(), objective="throughput", n_trials=3, batches=[1, 8, 32])
    first_two = rep.frameworks[0].history[:2]  # type: ignore[attr-defined]
    assert [t.source for t in first_two] == ["default", "informed"]
    assert [t.batch for t in first_two] == [1, 32]
    (tmp_path / "plain").mkdir()
    plain = run(
        tmp_path / "plain", FakeRunner(), objective="throughput", n_trials=3, informed_starts=False
    )
    assert all(t.source != "informed" for t in plain.frameworks[0].history)  # type: ignore[attr-defined]


def test_the_predicted_fastest_configuration_is_tried_right_after_the_defaults(
    tmp_path: Path,
) -> None:
    """Latency: default, then the calibration's pick, then the compiler. Throughput:
    the compute-bound start leads, the pick follows at the largest batch."""
    picks: dict[Framework, list[FrameworkSettings]] = {
        "torch": [TorchSettings(intra_threads=1)],
        "tensorflow": [TFSettings(mode="xla")],
    }
    prober = Prober(FakeRunner())
    cfg = TuneConfig(n_trials=4, seed=1)
    rep = tune(zoo_spec("lenet5"), cfg, prober, url(tmp_path), predicted=picks)
    torch, tf = rep.frameworks
    assert [t.source for t in torch.history[:3]] == ["default", "predicted", "informed"]
    assert torch.history[1].params["intra_threads"] == 1
    assert torch.history[2].params["mode"] == "compile"
    # the pick equals the informed XLA start: measured once, as "predicted"
    assert [t.source for t in tf.history[:2]] == ["default", "predicted"]
    assert tf.history[1].params["mode"] == "xla"
    assert not [t for t in tf.history if t.source == "informed" and t.params["mode"] == "xla"]
    (tmp_path / "t").mkdir()
    cfg = TuneConfig(objective="throughput", n_trials=4, seed=1, batches=[1, 8, 32])
    rep = tune(zoo_spec("lenet5"), cfg, prober, url(tmp_path / "t"), predicted=picks)
    first = rep.frameworks[0].history[:3]
    assert [t.source for t in first] == ["default", "informed", "predicted"]
    assert first[2].params["intra_threads"] == 1 and first[2].params["batch"] == 32
