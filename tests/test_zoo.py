"""Zoo runs end to end with a deterministic fake probe runner (the real probes run in
the slow tests and in docs/zoo): resume after an interruption, every figure in the
report, a crashing model shown with its reason, failed models retried, the CLI, CUDA
requests, and the Ray runner's options and cancellation (with a fake ``ray``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest
from markupsafe import escape

from probes.config import Settings
from probes.protocol import ProbeRequest, ProbeResult
from probes.runners.ray import RESOURCE, RayRunner
from probes.runners.store_only import StoreOnlyRunner
from recommender.zoo.figures import FIGURES, data_artists
from recommender.zoo.models import ZooConfig, ZooRun
from recommender.zoo.report import write_report
from recommender.zoo.run import ZooRunner, run_zoo
from recommender.zoo.table import tidy_rows, write_tables
from service.cli.main import main
from tests.conftest import ZOO, zoo_spec
from tests.tuning_fakes import FakeRunner

CFG = ZooConfig(trials=2, profiles=["server-gpu", "research"], size="small")
ONE = ZooConfig(trials=1, profiles=["research"], size="small")  # the cheapest real run


class ZooFake(FakeRunner):
    """FakeRunner plus exports (verified) and chosen failures. ``flaky_tf``: every
    TensorFlow inference probe after the first at each batch fails (numbered, so the
    reasons differ only in their numbers). Without a GPU, like the real backends, a
    CUDA probe is unsupported."""

    def __init__(
        self,
        crash_model: str | None = None,
        interrupt_after: int | None = None,
        flaky_tf: bool = False,
        gpu: bool = False,
    ):
        super().__init__(bias={"torch": 1.0, "tensorflow": 1.3})
        self.crash_model, self.interrupt_after = crash_model, interrupt_after
        self.flaky_tf, self.gpu = flaky_tf, gpu
        self.tf_infer: dict[int, int] = {}

    def run(self, request: ProbeRequest) -> ProbeResult:
        if self.interrupt_after is not None and len(self.calls) >= self.interrupt_after:
            raise KeyboardInterrupt  # Ctrl-C in the middle of a model
        if request.device == "cuda" and not self.gpu:
            self.calls.append(request)
            return ProbeResult(
                status="unsupported",
                framework=request.framework,
                reason=f"device=cuda requested but {request.framework} sees no CUDA device",
            )
        w = request.workload
        if self.flaky_tf and request.framework == "tensorflow" and w.kind == "infer":
            n = self.tf_infer[w.batch] = self.tf_infer.get(w.batch, 0) + 1
            if n > 1:
                self.calls.append(request)
                return ProbeResult(
                    status="failed",
                    framework=request.framework,
                    reason=f"XlaRuntimeError: simulated flaky kernel on attempt {n}",
                )
        if self.crash_model and request.spec and request.spec.name == self.crash_model:
            self.calls.append(request)
            return ProbeResult(
                status="crashed",
                framework=request.framework,
                reason="worker killed by SIGSEGV; stderr: simulated crash",
            )
        if request.workload.kind == "export":
            self.calls.append(request)
            return ProbeResult(status="ok", framework=request.framework)
        return super().run(request)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", zoo_dir=ZOO)


def specs() -> list:  # type: ignore[type-arg]
    return [zoo_spec("mlp"), zoo_spec("lenet5")]


def test_tiny_zoo_resumes_after_an_interruption(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "zoo"
    full = ZooFake()  # an uninterrupted run, in its own data dir: how many probes in all
    alone = Settings(data_dir=tmp_path / "ref-var", zoo_dir=ZOO)
    ref = run_zoo(specs(), ZooRunner(CFG, alone, tmp_path / "ref", full), print)
    assert [o.status for o in ref.models] == ["done", "done"]

    names = [c.spec.name if c.spec else "" for c in full.calls]
    start2 = names.index("lenet5")
    first = ZooFake(interrupt_after=start2 + (len(names) - start2) // 2)  # mid model 2
    with pytest.raises(KeyboardInterrupt):
        run_zoo(specs(), ZooRunner(CFG, settings, out, first), print)
    assert (out / "models" / "mlp.json").exists() and not (out / "models" / "lenet5.json").exists()

    second = ZooFake()
    run = run_zoo(specs(), ZooRunner(CFG, settings, out, second), print)
    assert [o.status for o in run.models] == ["done", "done"]
    assert not any(c.spec and c.spec.name == "mlp" for c in second.calls)  # done: skipped
    # model 2 resumes from the results store and the studies: far fewer probes
    assert 0 < len(second.calls) < len(names) - start2
    lenet = run.models[1]
    assert {r.framework for r in lenet.frameworks} == {"torch", "tensorflow"}
    assert all(r.tuned_ms and r.throughput_sps and r.peak_memory_mb for r in lenet.frameworks)
    assert {v.profile for v in lenet.verdicts} == {"server-gpu", "research"}
    assert lenet.naive is not None and lenet.tuned is not None

    written = [*write_tables(run, out), write_report(run, out)]
    assert all(p.exists() and p.stat().st_size > 0 for p in written)
    html = (out / "report.html").read_text()
    for name in FIGURES:  # every figure is present, inline
        assert re.search(
            rf'id="fig-{name}">\s*<figcaption>[^<]+</figcaption>\s*'
            r'<img src="data:image/png;base64,[A-Za-z0-9+/]{500,}',
            html,
        ), name
    for name, (_title, draw) in FIGURES.items():  # and shows data, not only n/a cells
        fig = draw(run)
        assert data_artists(fig) > 0, name
        plt.close(fig)
    assert run.environment.cpu_model in html and run.environment.key() in html
    rows = tidy_rows(run)
    assert {
        "latency_tuned_b1",
        "throughput_tuned",
        "verdict",
        "export_native",
        "verdict_default_b1",
        "verdict_tuned_b1",
        "tuning_flipped",
        "trials_searched_b1",
        "machine_peak",
    } <= {r["metric"] for r in rows}
    flips = [r for r in rows if r["metric"] == "tuning_flipped"]
    assert len(flips) == 2 and {r["text"] for r in flips} <= {"yes", "no"}
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    assert pq.read_table(out / "results.parquet").num_rows == len(rows)


def test_a_crashing_model_is_reported_with_its_reason(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "zoo"
    fake = ZooFake(crash_model="lenet5")
    run = run_zoo(specs(), ZooRunner(CFG, settings, out, fake), print)
    mlp, lenet = run.models
    assert mlp.status == "done" and not mlp.failures
    assert lenet.failures and all("SIGSEGV" in f for f in lenet.failures)
    assert (
        "torch b1: crashed: worker killed by SIGSEGV; stderr: simulated crash (2 of 2 trials)"
        in lenet.failures
    )
    assert {c.status for c in lenet.exports} == {"failed", "unsupported"}  # no route: no run
    tried = [
        (c.framework, c.workload.target)
        for c in fake.calls
        if c.workload.kind == "export" and c.spec and c.spec.name == "lenet5"
    ]
    assert len(tried) == len(set(tried))  # both profiles wanted them; each failed once
    html = write_report(run, out).read_text()
    assert "lenet5</strong>: tuning torch b1: crashed: worker killed by SIGSEGV" in html
    assert "export failed" in html


def test_a_model_that_cannot_be_evaluated_is_failed_not_blank(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("the tuner's storage is gone")

    monkeypatch.setattr("recommender.zoo.run.tune", boom)
    run = run_zoo(specs()[:1], ZooRunner(CFG, settings, tmp_path / "z", ZooFake()), print)
    (o,) = run.models
    assert o.status == "failed" and "the tuner's storage is gone" in (o.reason or "")
    html = write_report(run, tmp_path / "z").read_text()
    assert "FAILED: RuntimeError: the tuner&#39;s storage is gone" in html
    assert any(r["metric"] == "failure" for r in tidy_rows(run))


def test_max_minutes_bounds_a_run(settings: Settings, tmp_path: Path) -> None:
    run = run_zoo(
        specs(), ZooRunner(CFG, settings, tmp_path / "z", ZooFake()), print, max_minutes=0
    )
    assert not run.models and set(run.not_run) == {"mlp", "lenet5"}


def test_failed_trials_are_listed_even_when_others_succeed(
    settings: Settings, tmp_path: Path
) -> None:
    cfg = ZooConfig(trials=4, profiles=["research"], size="small")
    run = run_zoo(
        specs()[:1], ZooRunner(cfg, settings, tmp_path / "z", ZooFake(flaky_tf=True)), print
    )
    (mlp,) = run.models
    tf = next(r for r in mlp.frameworks if r.framework == "tensorflow")
    assert mlp.status == "done" and tf.tuned_ms is not None  # the default trial succeeded
    # 3 of the 4 TF trials at each batch failed: one line each, the first reason shown
    want = (
        "tensorflow b{}: failed: XlaRuntimeError: simulated flaky kernel on attempt 2 "
        "(3 of 4 trials)"
    )
    tf_lines = [f for f in mlp.failures if f.startswith("tensorflow")]
    assert tf_lines == [want.format(1), want.format(8)]
    # torch's studies succeeded too, but its trials at the fake's failing settings
    # (compile + bf16, eager + 1 thread + bf16) are listed as well, each with its count
    torch = [f for f in mlp.failures if not f.startswith("tensorflow")]
    assert all(re.fullmatch(r"torch b[18]: \w+: .+ \([123] of 4 trials\)", f) for f in torch)
    html = write_report(run, tmp_path / "z").read_text()
    assert f"mlp</strong>: tuning {want.format(1)}" in html


def test_a_failed_model_is_evaluated_again_by_a_rerun(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "z"

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("the tuner's storage is gone")

    with monkeypatch.context() as m:  # a transient failure of the first run
        m.setattr("recommender.zoo.run.tune", boom)
        first = run_zoo(specs()[:1], ZooRunner(ONE, settings, out, ZooFake()), print)
    assert first.models[0].status == "failed" and (out / "models" / "mlp.json").exists()
    again = ZooFake()
    second = run_zoo(specs()[:1], ZooRunner(ONE, settings, out, again), print)
    assert second.models[0].status == "done"
    assert any(c.spec and c.spec.name == "mlp" for c in again.calls)  # re-evaluated
    third = ZooFake()
    run_zoo(specs()[:1], ZooRunner(ONE, settings, out, third), print)
    assert not third.calls  # done now: skipped


def test_verdicts_carry_the_recommendation_caveats(settings: Settings, tmp_path: Path) -> None:
    cfg = ZooConfig(trials=1, profiles=["server-gpu"], size="small")
    run = run_zoo(specs()[:1], ZooRunner(cfg, settings, tmp_path / "z", ZooFake()), print)
    (v,) = run.models[0].verdicts
    assert any("GPU" in c and "not measured" in c for c in v.caveats), v.caveats
    html = write_report(run, tmp_path / "z").read_text()
    last = v.caveats[-1]  # listed once, numbered, with where it applies; the cell links it
    assert html.count(last) == 1
    m = re.search(
        r'<li id="caveat-(\d+)">' + re.escape(str(escape(last))) + " <small>\\(applies to 1 of 1 ",
        html,
    )
    assert m is not None
    assert f'href="#caveat-{m.group(1)}">' in html


def test_a_trial_budget_of_only_starting_points_is_warned(
    settings: Settings, tmp_path: Path
) -> None:
    run = run_zoo(specs()[:1], ZooRunner(ONE, settings, tmp_path / "z", ZooFake()), print)
    assert all(r.explored_trials == 0 and r.start_trials == 1 for r in run.models[0].frameworks)
    (w,) = run.warnings
    assert w.startswith("--trials 1: tuning tried only the default settings and never searched")
    assert "not meaningful" in w
    assert w in write_report(run, tmp_path / "z").read_text()
    cfg = ZooConfig(trials=4, profiles=["research"], size="small")
    enough = run_zoo(specs()[:1], ZooRunner(cfg, settings, tmp_path / "z4", ZooFake()), print)
    assert all(r.explored_trials for r in enough.models[0].frameworks) and not enough.warnings


def test_cuda_without_a_gpu_is_a_per_model_failure(settings: Settings, tmp_path: Path) -> None:
    cfg = ONE.model_copy(update={"device": "cuda"})
    assert cfg.fingerprint() != ONE.fingerprint()  # a CPU result never answers a CUDA run
    fake = ZooFake()
    run = run_zoo(specs(), ZooRunner(cfg, settings, tmp_path / "z", fake), print)
    assert [o.status for o in run.models] == ["failed", "failed"]
    assert "torch on cuda: unsupported: device=cuda requested" in (run.models[0].reason or "")
    # one question per framework and model, not a study of failed trials (nor a peak)
    assert len(fake.calls) == 4 and all(c.device == "cuda" for c in fake.calls)


def test_cuda_tunes_on_the_gpu(settings: Settings, tmp_path: Path) -> None:
    cfg = ONE.model_copy(update={"device": "cuda"})
    fake = ZooFake(gpu=True)
    run = run_zoo(specs()[:1], ZooRunner(cfg, settings, tmp_path / "z", fake), print)
    assert run.models[0].status == "done"
    on_gpu = {
        (c.framework, c.workload.kind, getattr(c.workload, "batch", None))
        for c in fake.calls
        if c.device == "cuda"
    }
    assert on_gpu >= {
        (fw, kind, batch)
        for fw in ("torch", "tensorflow")
        for kind, batch in (("infer", 1), ("infer", 8), ("peak", None))
    }


class FakeRay:
    """Just enough of the ``ray`` module to build and drive a RayRunner."""

    class GetTimeoutError(Exception):
        pass

    def __init__(self, gpus: float = 0, get_raises: Exception | None = None) -> None:
        self.gpus, self.get_raises = gpus, get_raises
        self.options: dict[str, Any] = {}
        self.cancelled: list[tuple[object, bool]] = []

    def is_initialized(self) -> bool:
        return True

    def remote(self, fn: Any) -> Any:
        ray = self

        class Task:
            def options(self, **kw: Any) -> Any:
                ray.options = kw
                return self

            def remote(self, *args: Any) -> str:
                return "ref-1"

        return Task()

    def cluster_resources(self) -> dict[str, float]:
        return {RESOURCE: 1.0, **({"GPU": self.gpus} if self.gpus else {})}

    def get(self, ref: object, timeout: float) -> str:
        raise self.get_raises or AssertionError("not expected")

    def cancel(self, ref: object, *, force: bool = False) -> None:
        self.cancelled.append((ref, force))


def request() -> ProbeRequest:
    return ProbeRequest.model_validate(
        {"spec": zoo_spec("mlp"), "framework": "torch", "workload": {"kind": "infer"}}
    )


def test_a_ray_probe_that_times_out_is_cancelled() -> None:
    fake = FakeRay(get_raises=FakeRay.GetTimeoutError("GetTimeoutError: timed out"))
    r = RayRunner(timeout_s=5, ray_module=fake).run(request())
    assert r.status == "timeout" and "cancelled" in (r.reason or "")
    assert fake.cancelled == [("ref-1", True)]  # force: the node's probe_slot is freed
    lost = FakeRay(get_raises=RuntimeError("node died"))
    assert RayRunner(ray_module=lost).run(request()).status == "crashed"
    assert lost.cancelled == [("ref-1", True)]


def test_a_cuda_zoo_asks_ray_for_one_gpu_per_probe(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.cli import zoo as zoo_cmd

    fakes: list[FakeRay] = []

    def ray_runner(*a: Any, **k: Any) -> RayRunner:
        fakes.append(FakeRay())
        return RayRunner(*a, **{**k, "ray_module": fakes[-1]})

    monkeypatch.setattr("probes.runners.ray.RayRunner", ray_runner)
    for device, gpus in (("cuda", 1), ("cpu", 0)):
        args = zoo_cmd.add_parser(_Sub()).parse_args(["--executor", "ray", "--device", device])
        runner = zoo_cmd._runner(args, settings)
        assert fakes[-1].options == {
            "resources": {RESOURCE: 1},
            "num_gpus": gpus,
            "num_cpus": 0,
            "max_retries": 0,
        }
    # a cluster without a GPU answers at once instead of queueing the task forever
    r = runner.run(request())  # the cpu one: asks for no GPU, so it would run
    assert r.status != "unsupported"
    gpu_less = RayRunner(num_gpus=1, ray_module=FakeRay(gpus=0)).run(request())
    assert gpu_less.status == "unsupported" and "has 0 GPUs" in (gpu_less.reason or "")


class _Sub:
    """argparse's subparsers action, for add_parser alone."""

    def add_parser(self, name: str, **kw: Any) -> Any:
        import argparse

        return argparse.ArgumentParser(prog=name)


def test_the_zoo_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FWADVISOR_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("FWADVISOR_ZOO_DIR", str(ZOO))
    fake = ZooFake()
    monkeypatch.setattr("service.cli.zoo._runner", lambda args, settings: fake)
    out = str(tmp_path / "z")
    base = ["zoo", "--trials", "1", "--profiles", "research", "--size", "small", "--out", out]

    assert main([*base, "--models", "mlp", "--json"]) == 0
    run = ZooRun.model_validate_json(capsys.readouterr().out)
    assert [o.model for o in run.models] == ["mlp"] and run.models[0].status == "done"
    assert run.machine_peak_gflops == 100.0 and run.warnings  # --trials 1
    assert {"results.csv", "results.parquet", "results.json", "report.html"} <= {
        p.name for p in Path(out).iterdir()
    }

    def no_probe(*_a: object) -> None:
        raise AssertionError("--report-only ran a probe")

    stored_only = StoreOnlyRunner.run
    monkeypatch.setattr("service.cli.zoo._runner", no_probe)
    monkeypatch.setattr(StoreOnlyRunner, "run", no_probe)
    code = main([*base, "--models", "mlp", "--report-only"])
    text = capsys.readouterr().out
    assert code == 0 and "mlp" in text and "warning: --trials 1" in text and "wrote " in text
    html = (Path(out) / "report.html").read_text()
    assert "100 GFLOP/s" in html  # the stored peak, not a new measurement

    # a record from before the peak was kept, and no results store: the peak is unknown
    record = Path(out) / "models" / "mlp.json"
    body = json.loads(record.read_text())
    del body["machine_peak_gflops"]
    record.write_text(json.dumps(body))
    monkeypatch.setenv("FWADVISOR_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(StoreOnlyRunner, "run", stored_only)  # answers "not stored"
    assert main([*base, "--models", "mlp", "--report-only", "--json"]) == 0
    assert ZooRun.model_validate_json(capsys.readouterr().out).machine_peak_gflops is None
    assert "unknown" in (Path(out) / "report.html").read_text()

    # the exit status: 2 for a bad request, 1 when a model failed
    assert main([*base, "--models", "lenet5", "--report-only"]) == 2
    assert "no finished result for lenet5" in capsys.readouterr().err
    assert main([*base, "--models", "nosuch"]) == 2
    monkeypatch.setattr("service.cli.zoo._runner", lambda args, settings: ZooFake())
    monkeypatch.setattr("recommender.zoo.run.tune", no_probe)
    assert main([*base, "--models", "lenet5"]) == 1
    assert "FAILED" in capsys.readouterr().out
