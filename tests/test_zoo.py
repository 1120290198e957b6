"""Zoo runs end to end with a deterministic fake probe runner (the real probes run in
the slow tests and in docs/zoo): resume after an interruption, every figure in the
report, and a crashing model shown with its reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from probes.config import Settings
from probes.protocol import ProbeRequest, ProbeResult
from recommender.zoo import ZooRunner, run_zoo
from recommender.zoo_figures import FIGURES
from recommender.zoo_models import ZooConfig
from recommender.zoo_report import write_report
from recommender.zoo_table import tidy_rows, write_tables
from tests.conftest import ZOO, zoo_spec
from tests.tuning_fakes import FakeRunner

CFG = ZooConfig(trials=2, profiles=["server-gpu", "research"], size="small")


class ZooFake(FakeRunner):
    """FakeRunner plus exports (verified) and chosen failures."""

    def __init__(self, crash_model: str | None = None, interrupt_after: int | None = None):
        super().__init__(bias={"torch": 1.0, "tensorflow": 1.3})
        self.crash_model, self.interrupt_after = crash_model, interrupt_after

    def run(self, request: ProbeRequest) -> ProbeResult:
        if self.interrupt_after is not None and len(self.calls) >= self.interrupt_after:
            raise KeyboardInterrupt  # Ctrl-C in the middle of a model
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
    assert run.environment.cpu_model in html and run.environment.key() in html
    rows = tidy_rows(run)
    assert {"latency_tuned_b1", "throughput_tuned", "verdict", "export_native"} <= {
        r["metric"] for r in rows
    }
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    assert pq.read_table(out / "results.parquet").num_rows == len(rows)


def test_a_crashing_model_is_reported_with_its_reason(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "zoo"
    fake = ZooFake(crash_model="lenet5")
    run = run_zoo(specs(), ZooRunner(CFG, settings, out, fake), print)
    mlp, lenet = run.models
    assert mlp.status == "done" and not mlp.failures
    assert lenet.failures and all("SIGSEGV" in f for f in lenet.failures)
    assert {c.status for c in lenet.exports} == {"failed", "unsupported"}  # no route: no run
    tried = [
        (c.framework, c.workload.target)
        for c in fake.calls  # type: ignore[union-attr]
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

    monkeypatch.setattr("recommender.zoo.tune", boom)
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
