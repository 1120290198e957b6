"""Verdicts that hold: paired rounds, configurations chosen per profile, confidence that
covers what varies, the contention guard and a robust machine peak (issue 15)."""

from __future__ import annotations

import math
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import pytest

from probes.config import Settings
from probes.measure.contention import CLK_TCK, Snapshot, reading
from probes.measure.timing import Timing
from probes.probe import Prober
from probes.protocol import (
    InferWorkload,
    Measurement,
    MemoryStats,
    Phases,
    ProbeRequest,
    ProbeResult,
)
from probes.settings import TFSettings, TorchSettings
from probes.spec import analyze, build_graph, resolve_spec
from probes.store import ResultStore
from probes.tune.confirm import (
    Candidate,
    CandidateRounds,
    Confirmation,
    confirm,
    paired_ratio,
)
from recommender.evidence.configs import (
    BETWEEN_ANSWERS_LOG_SD,
    UNKNOWN_LOG_SD,
    choose,
    options_from_rounds,
    speed_is_blind,
)
from recommender.evidence.gatherer import MEASURE, SCREEN, Gatherer
from recommender.evidence.model import ConfigOption, Evidence, Quantity
from recommender.evidence.pipelines import EXPORT_TIMEOUT_S, busy_notes, gather_measured
from recommender.questionnaire import to_profile
from recommender.recommend import Recommendation, decide_profile
from service.cli.recommend import render
from tests.conftest import ROOT
from tests.test_recommender import evidence, fw_ev


def _timing(median_s: float) -> Timing:
    return Timing(
        first_call_s=median_s,
        warmup_iters=5,
        warmup_stable=True,
        iterations=10,
        median_s=median_s,
        mean_s=median_s,
        p90_s=median_s,
        p99_s=median_s,
        min_s=median_s,
        iqr_s=median_s * 0.01,
        total_s=median_s * 10,
        noisy=False,
    )


def _result(fw: str, median_s: float, peak: int = 10 * 2**20, **m: object) -> ProbeResult:
    meas = Measurement(
        kind="infer",
        batch=1,
        settings_label="x",
        timing=_timing(median_s),
        phases=Phases(spawn_to_main_s=None, import_s=0, build_s=0, first_result_s=0, total_s=None),
        memory=MemoryStats(
            baseline_rss_bytes=0, peak_rss_bytes=peak, maxrss_bytes=peak, weight_bytes=0
        ),
        **m,
    )
    return ProbeResult(status="ok", framework=fw, measurement=meas)


@dataclass
class DriftingRunner:
    """TF is truly 10% faster than torch, but the machine slows 2x halfway through."""

    calls: int = 0
    slow_after: int = 6
    base: dict[str, float] = field(default_factory=lambda: {"torch": 1.0e-3, "tensorflow": 0.9e-3})

    def run(self, req: ProbeRequest) -> ProbeResult:
        self.calls += 1
        factor = 2.0 if self.calls > self.slow_after else 1.0
        return _result(req.framework, self.base[req.framework] * factor)


LENET = resolve_spec("lenet5", ROOT / "data" / "zoo")


def test_paired_verdict_survives_a_machine_that_slows_halfway() -> None:
    # Sequential: torch measured first (fast machine), TF later (slow machine) -> wrong.
    seq = DriftingRunner(slow_after=3)
    torch_seq = [seq.run(_req("torch")) for _ in range(3)]
    tf_seq = [seq.run(_req("tensorflow")) for _ in range(3)]
    med = {
        "torch": statistics.median(r.measurement.timing.median_s for r in torch_seq),  # type: ignore[union-attr]
        "tensorflow": statistics.median(r.measurement.timing.median_s for r in tf_seq),  # type: ignore[union-attr]
    }
    assert med["torch"] < med["tensorflow"]  # the sequential comparison flipped
    # Paired rounds on the same drifting machine: every round's ratio is right.
    prober = Prober(DriftingRunner(slow_after=6))
    cands = [
        Candidate(framework="torch", settings=TorchSettings(), origin="default"),
        Candidate(framework="tensorflow", settings=TFSettings(), origin="default"),
    ]
    conf = confirm(LENET, prober, cands, InferWorkload(batch=1), rounds=6)
    pair = conf.pair(cands[0], cands[1])
    assert pair is not None
    assert pair.faster == "tensorflow"
    assert pair.ratio == pytest.approx(1 / 0.9, rel=1e-6)


def _req(fw: str) -> ProbeRequest:
    return ProbeRequest(spec=LENET, framework=fw, workload=InferWorkload(batch=1))


def test_paired_interval_straddles_one_when_rounds_disagree() -> None:
    c_t = Candidate(framework="torch", settings=TorchSettings(), origin="default")
    c_f = Candidate(framework="tensorflow", settings=TFSettings(), origin="default")
    a = CandidateRounds(candidate=c_t, medians_s=[1.0, 1.2, 0.9], flagged=[False] * 3)
    b = CandidateRounds(candidate=c_f, medians_s=[1.1, 1.0, 1.0], flagged=[False] * 3)
    pair = paired_ratio(a, b)
    assert pair is not None and pair.lo < 1 < pair.hi and pair.faster == "tie"


def _option(label: str, ms: float, mib: float) -> ConfigOption:
    return ConfigOption(
        label=label,
        origin=label,
        infer=Quantity(value=ms / 1e3, sigma=0.01, source=label),
        memory=Quantity(value=mib * 2**20, sigma=0.01, source=label),
    )


def test_memory_weighted_profile_picks_the_low_memory_configuration() -> None:
    options = {
        "torch": [_option("compile", 0.220, 180), _option("eager", 0.227, 34)],
        "tensorflow": [_option("xla", 0.250, 80)],
    }
    lean = to_profile({"memory_budget_mb": 512, "targets": ["android"], "emphasis": "inference"})
    assert lean.weights["memory"] > 0
    picked = choose(options, lean)  # type: ignore[arg-type]
    assert options["torch"][picked["torch"]].label == "eager"
    speed_only = lean.model_copy(
        update={"weights": {k: (1.0 if k == "speed" else 0.0) for k in lean.weights}}
    )
    assert options["torch"][choose(options, speed_only)["torch"]].label == "compile"  # type: ignore[arg-type]


def test_recommendation_names_the_assumed_configuration_and_what_the_others_change() -> None:
    torch, tf = fw_ev("torch", 1, 100), fw_ev("tensorflow", 1, 100)
    torch.options = [_option("compile", 0.9, 180), _option("eager", 1.0, 34)]
    tf.options = [_option("xla", 0.95, 80)]
    p = to_profile({"memory_budget_mb": 512, "emphasis": "inference"})
    rec = decide_profile(evidence(torch, tf), p)
    assert rec.evidence.frameworks["torch"].config == "eager"
    assert rec.evidence.frameworks["tensorflow"].config == "xla"


def test_a_ratio_inside_the_noise_is_not_a_confident_answer() -> None:
    torch, tf = fw_ev("torch", 1, 100), fw_ev("tensorflow", 1, 100)
    p = to_profile({"emphasis": "inference"})
    torch.options = [_option("a", 1.00, 100)]
    tf.options = [_option("b", 1.00 * 1.002, 100)]
    assert decide_profile(evidence(torch, tf), p).confidence < 0.8


def test_search_variance_lowers_the_confidence() -> None:
    """The same paired figures, once from a search that covered its space and once
    from one that tried few points: the second is less sure."""
    p = to_profile({"emphasis": "inference"})
    confs = []
    for extra in (0.0, 0.10):
        torch, tf = fw_ev("torch", 1, 100), fw_ev("tensorflow", 1, 100)
        fast = _option("a", 0.93, 100)
        assert fast.infer is not None
        fast.infer.sigma = (0.01**2 + extra**2) ** 0.5
        torch.options, tf.options = [fast], [_option("b", 1.0, 100)]
        confs.append(decide_profile(evidence(torch, tf), p).confidence)
    assert confs[1] < confs[0] - 0.1


def test_priors_only_evidence_never_gives_more_than_either() -> None:
    torch, tf = fw_ev("torch", 1, 1), fw_ev("tensorflow", 1, 1)
    for f in (torch, tf):
        f.infer = f.memory = None
        f.targets = {}
    ev = Evidence(model="m", mode="cached", frameworks={"torch": torch, "tensorflow": tf})
    p = to_profile({"experience_torch": 3, "experience_tf": 0, "focus": "research"})
    rec = decide_profile(ev, p)
    assert rec.choice == "either" and rec.confidence <= 0.5
    assert any("priors" in c for c in rec.caveats)


def _pair_rounds(
    torch_s: list[float], tf_s: list[float], torch_flags: list[bool] | None = None
) -> Confirmation:
    """A confirmation of the two defaults over ``len(torch_s)`` rounds."""
    c_t = Candidate(framework="torch", settings=TorchSettings(), origin="default")
    c_f = Candidate(framework="tensorflow", settings=TFSettings(), origin="default")
    n = len(torch_s)
    rows = [
        CandidateRounds(candidate=c_t, medians_s=torch_s, flagged=torch_flags or [False] * n),
        CandidateRounds(candidate=c_f, medians_s=tf_s, flagged=[False] * n),
    ]
    return Confirmation(model="m", workload="infer", batch=1, rounds=n, candidates=rows)


def test_round_drift_becomes_shared_sigma_not_ratio_noise() -> None:
    """Both frameworks slow together in round 2: the ratio is exact, so each
    framework's own sigma stays at the floor while the shared sigma takes the drift."""
    opts = options_from_rounds(_pair_rounds([1.0, 2.0, 1.0], [0.8, 1.6, 0.8]), {})
    t, f = opts["torch"][0].infer, opts["tensorflow"][0].infer
    assert t is not None and f is not None
    assert t.value / f.value == pytest.approx(1.25)
    assert t.shared_sigma > 0.3 and t.sigma < BETWEEN_ANSWERS_LOG_SD + 0.01


def test_tight_rounds_do_not_hide_what_moves_between_answers() -> None:
    """Three rounds 1% apart give a standard error near 0.01, but two answers to the
    same question read torch/TF 0.98 and 1.18 (docs/benchmarks.md): a 5% gap measured
    tightly within one answer must not be a 99% speed win."""
    opts = options_from_rounds(_pair_rounds([0.95, 0.955, 0.945], [1.0, 1.0, 1.0]), {})
    t, f = opts["torch"][0].infer, opts["tensorflow"][0].infer
    assert t is not None and f is not None
    z = math.log(f.value / t.value) / math.hypot(t.sigma, f.sigma)
    assert NormalDist().cdf(z) < 0.9  # P(torch faster) on speed alone
    assert min(t.sigma, f.sigma) >= BETWEEN_ANSWERS_LOG_SD


def _busy_confirmation(torch_s: float, flags: list[bool]) -> Confirmation:
    return _pair_rounds([torch_s * 1.01, torch_s, torch_s], [1.0, 1.0, 1.0], flags)


def test_a_busy_machine_ratio_ranks_no_framework() -> None:
    """Load does not cancel in the paired ratio (torch read 30x slower with one core
    loaded, where quiet runs read 0.75-1.10): a candidate left with < 2 clean rounds
    makes every option's latency one common centre with UNKNOWN_LOG_SD, so even that
    30x is no speed win, and the reading stays in the source."""
    quiet = options_from_rounds(_busy_confirmation(30.0, [False] * 3), {})
    assert quiet["torch"][0].infer.value / quiet["tensorflow"][0].infer.value > 25  # type: ignore[union-attr]
    one_busy = options_from_rounds(_busy_confirmation(30.0, [True, False, False]), {})
    assert not one_busy["torch"][0].speed_unknown  # two clean rounds remain
    busy = options_from_rounds(_busy_confirmation(30.0, [True, True, False]), {})
    t, f = busy["torch"][0], busy["tensorflow"][0]
    assert t.speed_unknown and f.speed_unknown and t.infer and f.infer
    assert t.infer.value == f.infer.value and t.infer.sigma == UNKNOWN_LOG_SD
    assert "read 3.01e+04 ms under load" in t.infer.source
    # scored: only the speed weight was at stake, so the answer is a coin flip
    torch_ev, tf_ev = fw_ev("torch", 1, 100), fw_ev("tensorflow", 1, 100)
    torch_ev.options, tf_ev.options = busy["torch"], busy["tensorflow"]
    rec = decide_profile(evidence(torch_ev, tf_ev), to_profile({"emphasis": "inference"}))
    assert rec.confidence < 0.75 and rec.choice == "either"
    assert not rec.speed_compared and rec.latency_ratio is None
    assert "latency: not compared, the machine was busy" in render(rec)
    _assert_page_says_not_compared(rec)


def _assert_page_says_not_compared(rec: Recommendation) -> None:
    from flask import render_template

    from service.app import create_app
    from service.settings import ServiceSettings
    from service.web.charts import charts, deployment_rows

    with tempfile.TemporaryDirectory() as d:
        app = create_app(ServiceSettings(data_dir=Path(d)))
        with app.test_request_context():
            html = render_template(
                "result.html", rec=rec, charts=charts(rec), deployment=deployment_rows(rec)
            )
    assert "latency: not compared" in html and "90% interval" not in html


def test_other_criteria_can_still_decide_on_a_busy_machine() -> None:
    """Speed unknown is a coin flip of the speed weight, not a cap on confidence: a
    framework over the memory budget loses however the speed draws fall."""
    busy = options_from_rounds(_busy_confirmation(30.0, [True] * 3), {})
    lean = busy["tensorflow"][0].model_copy(
        update={"memory": Quantity(value=10 * 2**20, sigma=0.02, source="m")}
    )
    fat = busy["torch"][0].model_copy(
        update={"memory": Quantity(value=900 * 2**20, sigma=0.02, source="m")}
    )
    torch_ev, tf_ev = fw_ev("torch", 1, 900), fw_ev("tensorflow", 1, 10)
    torch_ev.options, tf_ev.options = [fat], [lean]
    p = to_profile({"memory_budget_mb": 512, "targets": ["android"], "emphasis": "inference"})
    rec = decide_profile(evidence(torch_ev, tf_ev), p)
    assert rec.choice == "tensorflow" and rec.confidence >= 0.9


@dataclass
class BusyRunner:
    """The machine is busy for the first ``busy_probes`` probes (torch only: its two
    threads stall, TF's one thread does not), then quiet."""

    busy_probes: int
    calls: int = 0

    def run(self, req: ProbeRequest) -> ProbeResult:
        from probes.measure.contention import Contention

        if req.workload.kind != "infer":  # the machine peak, for efficiency
            return _result(req.framework, 1.0, gflops_per_s=100.0)
        self.calls += 1
        busy = req.framework == "torch" and self.calls <= self.busy_probes
        c = Contention(cpu_share=0.4 if busy else 1.0, flagged=busy)
        return _result(req.framework, 30e-3 if busy else 1e-3, contention=c)


def _defaults() -> list[Candidate]:
    return [
        Candidate(framework="torch", settings=TorchSettings(), origin="default"),
        Candidate(framework="tensorflow", settings=TFSettings(), origin="default"),
    ]


def test_a_passing_load_is_retried_until_two_clean_rounds() -> None:
    runner = BusyRunner(busy_probes=4)  # rounds 1-2 busy for torch
    conf = confirm(LENET, Prober(runner), _defaults(), InferWorkload(batch=1), rounds=3)
    assert conf.extra_rounds == 1 and conf.rounds == 4 and runner.calls == 8
    assert not speed_is_blind(conf)
    pair = conf.pair(*_defaults())
    assert pair is not None and pair.rounds == pytest.approx([1.0, 1.0])
    assert pair.flagged_rounds == 0  # the two clean rounds only, not the 30x ones


def test_a_lasting_load_stops_after_the_extra_rounds_and_blinds_speed() -> None:
    runner = BusyRunner(busy_probes=10**6)
    conf = confirm(LENET, Prober(runner), _defaults(), InferWorkload(batch=1), rounds=3)
    assert conf.extra_rounds == 3 and runner.calls == 12  # bounded: rounds more, no more
    assert speed_is_blind(conf)
    notes = busy_notes(conf)
    assert len(notes) == 1 and notes[0].startswith("speed not compared")
    quiet = confirm(LENET, Prober(BusyRunner(0)), _defaults(), InferWorkload(batch=1), rounds=3)
    assert quiet.extra_rounds == 0 and not busy_notes(quiet)


def test_contention_guard_flags_a_starved_probe() -> None:
    before = Snapshot(run_ns=0, wait_ns=0, steal=0, total=1000)
    starved = Snapshot(run_ns=500_000_000, wait_ns=500_000_000, steal=0, total=2000)
    quiet = Snapshot(run_ns=990_000_000, wait_ns=10_000_000, steal=0, total=2000)
    stolen = Snapshot(run_ns=990_000_000, wait_ns=0, steal=200, total=2000)
    assert reading(before, starved, None, None).flagged
    assert reading(before, starved, None, None).cpu_share == pytest.approx(0.5)
    assert not reading(before, quiet, None, None).flagged
    assert reading(before, stolen, None, None).flagged
    # no readable /proc: never flagged, never fails
    empty = Snapshot(run_ns=None, wait_ns=None, steal=None, total=None)
    assert not reading(empty, empty, None, None).flagged


def test_waiting_behind_its_own_threads_is_not_contention() -> None:
    """A probe whose threads outnumber the cores waits on the run queue by itself; only
    when other processes used the CPU meanwhile is the wait blamed on the machine."""
    tick = CLK_TCK
    before = Snapshot(run_ns=0, wait_ns=0, steal=0, total=0, busy=0)
    own = int(0.5 * tick)  # 0.5 s of the probe's own run time, in jiffies
    alone = Snapshot(
        run_ns=500_000_000, wait_ns=500_000_000, steal=0, total=10 * tick, busy=own + 2
    )
    shared = Snapshot(
        run_ns=500_000_000, wait_ns=500_000_000, steal=0, total=10 * tick, busy=own + 5 * tick
    )
    quiet = reading(before, alone, None, None)
    assert not quiet.flagged and quiet.cpu_share == pytest.approx(0.5)
    assert quiet.others_share is not None and quiet.others_share < 0.05
    busy = reading(before, shared, None, None)
    assert busy.flagged and busy.others_share == pytest.approx(0.5)
    assert "other processes used 50%" in busy.reasons[0]


LENET_FLOPS = analyze(build_graph(LENET)).flops


@dataclass
class PeakRunner:
    """Peaks read low first (a busy machine), then right; the model runs at 20 GFLOP/s,
    above the low reading."""

    peaks: list[float] = field(default_factory=lambda: [10.0] * 2)
    calls: list[str] = field(default_factory=list)
    busy: list[bool] = field(default_factory=list)  # per peak reading: contended?

    def run(self, req: ProbeRequest) -> ProbeResult:
        from probes.measure.contention import Contention

        self.calls.append(req.workload.kind)
        if req.workload.kind == "peak":
            gf = self.peaks.pop(0) if self.peaks else 100.0
            busy = self.busy.pop(0) if self.busy else False
            c = Contention(cpu_share=0.5 if busy else 1.0, flagged=busy)
            return _result(req.framework, 2 * 2048**3 / gf / 1e9, gflops_per_s=gf, contention=c)
        return _result(req.framework, LENET_FLOPS / 20e9)


def test_efficiency_is_capped_and_a_low_peak_is_measured_again(tmp_path: Path) -> None:
    runner = PeakRunner()
    prober = Prober(runner, ResultStore(tmp_path / "r.sqlite"))
    r = prober.probe(LENET, "torch", InferWorkload(batch=1))
    assert r.measurement is not None and r.measurement.efficiency is not None
    assert r.measurement.gflops_per_s == pytest.approx(20.0)
    assert runner.calls.count("peak") == 4  # the low peak was measured again
    assert r.measurement.efficiency == pytest.approx(0.2)  # against the re-measured 100


def test_a_measure_mode_prober_runs_no_peak_probe(tmp_path: Path) -> None:
    runner = PeakRunner(peaks=[100.0] * 4)
    g = Gatherer(Settings(data_dir=tmp_path), "measure", runner=runner)
    r = g.prober().probe(LENET, "torch", InferWorkload(batch=1))
    assert r.measurement is not None and r.measurement.efficiency is None
    assert r.measurement.gflops_per_s == pytest.approx(20.0)
    assert runner.calls == ["infer"]
    # a prober that shows efficiency, reading the stored result, adds it
    again = Prober(runner, g.prober().store, MEASURE).probe(LENET, "torch", InferWorkload(batch=1))
    assert runner.calls.count("infer") == 1  # from the store
    assert again.measurement is not None and again.measurement.efficiency == pytest.approx(0.2)


@dataclass
class MethodRunner:
    """Records each probe's kind and timed-loop length; only inference runs."""

    seen: list[tuple[str, float]] = field(default_factory=list)
    export_limits: list[float] = field(default_factory=list)

    def run(self, req: ProbeRequest) -> ProbeResult:
        self.seen.append((req.workload.kind, req.measure.min_time_s))
        if req.workload.kind == "export":
            self.export_limits.append(req.limits.timeout_s)
        if req.workload.kind == "infer":
            return _result(req.framework, 1e-3)
        return ProbeResult(status="unsupported", framework=req.framework, reason="not here")


def test_the_search_screens_and_the_paired_rounds_take_the_full_method(tmp_path: Path) -> None:
    runner = MethodRunner()
    g = Gatherer(Settings(data_dir=tmp_path), "measure", trials=2, rounds=2, runner=runner)
    profile = to_profile({"targets": ["server_gpu"], "emphasis": "inference"})
    gather_measured(LENET, profile, g, lambda _: None)
    loops = [t for kind, t in runner.seen if kind == "infer"]
    first_full = loops.index(MEASURE.min_time_s)
    assert loops[:first_full] and set(loops[:first_full]) == {SCREEN.min_time_s}
    assert set(loops[first_full:]) == {MEASURE.min_time_s}  # every paired round
    assert SCREEN.min_time_s < MEASURE.min_time_s
    # every export of the answer is bounded below the probe's own 600 s
    assert runner.export_limits and set(runner.export_limits) == {EXPORT_TIMEOUT_S}


def test_a_contended_peak_reading_is_taken_again_and_the_best_kept() -> None:
    runner = PeakRunner(peaks=[40.0, 100.0, 90.0], busy=[True, False, False])
    assert Prober(runner).machine_peak_gflops() == 100.0
    assert runner.calls.count("peak") == 3  # torch twice (busy, then clean), TF once


def test_a_stale_stored_peak_is_measured_again(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.sqlite")
    first = PeakRunner(peaks=[100.0] * 4)
    Prober(first, store).machine_peak_gflops()
    again = PeakRunner(peaks=[100.0] * 4)
    Prober(again, store).machine_peak_gflops()
    assert again.calls.count("peak") == 0  # recent: answered by the store
    import sqlite3

    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE results SET created = created - 7 * 3600")
    stale = PeakRunner(peaks=[100.0] * 4)
    Prober(stale, store).machine_peak_gflops()
    assert stale.calls.count("peak") == 2


@pytest.mark.parametrize(
    ("shares", "kept", "loops"),
    [([0.4, 0.6, 0.99], 0.99, 3), ([0.4, 0.6, 0.5, 0.99], 0.6, 3), ([0.95], 0.95, 1)],
)
def test_a_contended_timed_loop_is_run_again_in_process(
    monkeypatch: pytest.MonkeyPatch, shares: list[float], kept: float, loops: int
) -> None:
    from probes.measure.contention import Contention
    from probes.measure.timing import MeasureConfig
    from probes.worker import probe as worker

    readings = iter(shares)
    used: list[float] = []

    class FakeMeter:
        def __enter__(self) -> FakeMeter:
            return self

        def __exit__(self, *exc: object) -> None:
            used.append(share := next(readings))
            self.result = Contention(cpu_share=share, flagged=share < 0.85)

    monkeypatch.setattr(worker, "ContentionMeter", FakeMeter)
    _, c = worker._timed(lambda: None, MeasureConfig(min_time_s=0, min_iters=2), 0.0)
    assert c is not None and c.cpu_share == kept and len(used) == loops


def test_search_variance_is_zero_for_a_covered_space_and_positive_otherwise() -> None:
    from probes.tune.models import FrameworkTuning, TrialSummary
    from recommender.evidence.configs import search_sigma

    def trial(n: int, v: float) -> TrialSummary:
        return TrialSummary(
            number=n,
            state="COMPLETE",
            params={"k": n},
            values=[v],
            source=None,
            reason=None,
            settings=None,
            batch=1,
            median_s=v,
            throughput_sps=None,
            peak_rss_bytes=None,
            feasible=True,
        )

    def tuning(size: int) -> FrameworkTuning:
        hist = [trial(0, 1.0), trial(1, 1.1), trial(2, 1.5), trial(3, 2.0)]
        return FrameworkTuning(
            framework="torch",
            study_name="s",
            search_space={},
            space_size=size,
            counts={},
            default=hist[0],
            best=hist[0],
            best_result=None,
            speedup=None,
            pareto=[],
            history=hist,
        )

    assert search_sigma(tuning(4)) == 0.0
    assert 0.05 < search_sigma(tuning(48)) <= 0.15


def test_progress_counts_probes_and_estimates_the_time_left() -> None:
    from recommender.evidence.progress import ClockedRunner, WorkClock, stepped

    clock = WorkClock(planned=4)
    assert clock.eta_s() is None  # nothing done: no estimate yet
    runner = ClockedRunner(DriftingRunner(), clock)
    runner.run(_req("torch"))
    runner.run(_req("tensorflow"))
    assert clock.done == 2
    eta = clock.eta_s()
    assert eta is not None and eta == pytest.approx(clock.spent_s, rel=1e-9)  # 2 left x mean
    lines: list[str] = []
    stepped(lines.append, clock, "paired rounds")("round 1")
    assert lines[0].startswith("[paired rounds] round 1 (2/4 probes, 0:00 elapsed")
    assert "left" in lines[0]


def test_web_page_and_zoo_report_show_the_assumed_configurations_and_interval(
    tmp_path: Path,
) -> None:
    from flask import render_template

    from recommender.zoo.models import ProfileVerdict
    from service.app import create_app
    from service.settings import ServiceSettings
    from service.web.charts import charts, deployment_rows

    torch, tf = fw_ev("torch", 1, 100), fw_ev("tensorflow", 1, 100)
    torch.options = [_option("compile t1", 0.9, 180), _option("eager t2", 1.0, 34)]
    tf.options = [_option("xla t1", 0.95, 80)]
    rec = decide_profile(evidence(torch, tf), to_profile({"memory_budget_mb": 512}))
    assert rec.latency_ratio is not None and rec.latency_ratio.lo < rec.latency_ratio.ratio
    app = create_app(ServiceSettings(data_dir=tmp_path))
    with app.test_request_context():
        html = render_template(
            "result.html", rec=rec, charts=charts(rec), deployment=deployment_rows(rec)
        )
    assert "Assumed configurations" in html and "eager t2" in html and "xla t1" in html
    assert "90% interval" in html
    v = ProfileVerdict(
        profile="mobile",
        choice=rec.choice,
        leaning=rec.leaning,
        confidence=rec.confidence,
        margin=rec.margin,
        utilities=dict(rec.utilities),
        summary=rec.summary,
        assumed=dict(rec.assumed),
        latency_ratio=[rec.latency_ratio.ratio, rec.latency_ratio.lo, rec.latency_ratio.hi],
    )
    assert v.assumed["torch"] == "eager t2"


def test_an_unknown_model_name_gets_a_did_you_mean() -> None:
    from probes.errors import UnknownModelError

    with pytest.raises(UnknownModelError, match="did you mean 'resnet18'"):
        resolve_spec("resnet81", ROOT / "data" / "zoo")
    with pytest.raises(UnknownModelError) as e:
        resolve_spec("qqqqqq", ROOT / "data" / "zoo")
    assert "did you mean" not in str(e.value)


def test_probe_comparisons_are_paired_over_rounds_and_count_contended_ones() -> None:
    from probes.measure.contention import Contention
    from service.operations import _compare
    from service.schemas import ProbeRow

    def row(fw: str, rnd: int, ms: float, busy: bool = False) -> ProbeRow:
        r = _result(fw, ms / 1e3)
        assert r.measurement is not None
        r.measurement.contention = Contention(cpu_share=0.5 if busy else 1.0, flagged=busy)
        return ProbeRow(framework=fw, workload="infer", batch=1, settings="x", result=r, round=rnd)

    # the machine doubles its times in round 2 for both: the pairing still sees 0.8
    rows = [row("torch", 1, 0.8), row("tensorflow", 1, 1.0), row("tensorflow", 2, 2.0)]
    rows += [row("torch", 2, 1.6), row("torch", 3, 0.8, busy=True), row("tensorflow", 3, 1.0)]
    c = _compare("infer", 1, rows)
    assert c.faster == "torch" and c.ratio == pytest.approx(1.25)
    assert c.rounds == 2 and c.contended_rounds == 0  # two clean rounds: the busy one is out
    assert c.lo is not None and c.hi is not None and c.hi < 1


def test_one_run_spelled_two_ways_is_one_candidate() -> None:
    """The default (no thread count) and a trial at every core with an unused compile
    mode are the same run: the paired rounds time it once."""
    from probes.settings import TorchSettings, cpu_budget
    from probes.tune.confirm import Candidate

    default = Candidate(framework="torch", settings=TorchSettings(), origin="default")
    trial = Candidate(
        framework="torch",
        settings=TorchSettings(intra_threads=cpu_budget(), compile_mode="reduce-overhead"),
        origin="fastest in search",
    )
    compiled = Candidate(
        framework="torch",
        settings=TorchSettings(mode="compile", compile_mode="reduce-overhead"),
        origin="fastest in search",
    )
    assert default.key == trial.key
    assert default.key != compiled.key


def test_a_training_step_still_busy_after_a_retry_is_not_ranked() -> None:
    """Training is one probe per framework, not paired: a flagged step is taken once
    more, and if it is still flagged, neither framework's training time is ranked."""
    from probes.measure.contention import Contention
    from recommender.evidence.pipelines import _training

    calls: list[str] = []

    class BusyTorchTraining:
        def run(self, req: ProbeRequest) -> ProbeResult:
            if req.workload.kind != "train":
                return _result(req.framework, 1.0, gflops_per_s=100.0)
            calls.append(req.framework)
            busy = req.framework == "torch"
            c = Contention(cpu_share=0.4 if busy else 1.0, flagged=busy)
            return _result(req.framework, 30e-3 if busy else 1e-3, contention=c)

    p = to_profile({"emphasis": "training"})
    train, notes = _training(LENET, p, Prober(BusyTorchTraining()), lambda _m: None)
    assert calls == ["torch", "torch", "tensorflow"]  # torch once more, TF once
    t, f = train["torch"], train["tensorflow"]
    assert t is not None and f is not None
    assert t.value == f.value and t.sigma == UNKNOWN_LOG_SD
    assert any(n.startswith("training speed not compared") for n in notes)
