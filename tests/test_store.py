"""Results store: repeated questions come from the store unless fresh is asked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from probes.measure.timing import MeasureConfig
from probes.payloads import ForwardData, TrainStepData
from probes.probe import Prober
from probes.protocol import InferWorkload, ProbeRequest, ProbeResult, Status
from probes.settings import TorchSettings
from probes.spec import ModelSpec, memo, spec_hash
from probes.store import ResultStore
from tests.conftest import zoo_spec


class CountingRunner:
    """Deterministic fake: ok results with a measurement-free payload."""

    def __init__(self, status: Status = "ok") -> None:
        self.calls: list[ProbeRequest] = []
        self.status = status

    def run(self, request: ProbeRequest) -> ProbeResult:
        self.calls.append(request)
        data = ForwardData(outputs_file=f"{len(self.calls)}.npz")
        return ProbeResult(status=self.status, framework=request.framework, data=data)


def prober(tmp_path: Path, runner: CountingRunner, fresh: bool = False) -> Prober:
    return Prober(runner, ResultStore(tmp_path / "r.sqlite"), MeasureConfig(), fresh=fresh)


def test_hit_and_miss(tmp_path: Path) -> None:
    runner = CountingRunner()
    p = prober(tmp_path, runner)
    spec = zoo_spec("mlp")
    first = p.probe(spec, "torch", InferWorkload(batch=1))
    again = p.probe(spec, "torch", InferWorkload(batch=1))
    assert len(runner.calls) == 1 and again == first and p.from_store == 1
    p.probe(spec, "torch", InferWorkload(batch=2))  # other workload: miss
    p.probe(spec, "torch", InferWorkload(batch=1), TorchSettings(intra_threads=1))  # miss
    p.probe(spec, "tensorflow", InferWorkload(batch=1))  # other framework: miss
    assert len(runner.calls) == 4


def test_fresh_bypasses_store_and_survives_reopen(tmp_path: Path) -> None:
    runner = CountingRunner()
    spec = zoo_spec("mlp")
    prober(tmp_path, runner).probe(spec, "torch", InferWorkload())
    prober(tmp_path, runner).probe(spec, "torch", InferWorkload())  # new process, same db
    assert len(runner.calls) == 1
    prober(tmp_path, runner, fresh=True).probe(spec, "torch", InferWorkload())
    assert len(runner.calls) == 2


def test_failures_are_not_stored(tmp_path: Path) -> None:
    runner = CountingRunner(status="timeout")
    p = prober(tmp_path, runner)
    spec = zoo_spec("mlp")
    for _ in range(2):
        assert p.probe(spec, "torch", InferWorkload()).status == "timeout"
    assert len(runner.calls) == 2


def test_spec_hash_ignores_name_and_sizes() -> None:
    a = zoo_spec("mlp", None)
    b = a.model_copy(update={"name": "other", "description": "x", "sizes": {}})
    assert spec_hash(a) == spec_hash(b)
    assert spec_hash(a) != spec_hash(zoo_spec("lenet5", None))


def test_query_by_kind(tmp_path: Path) -> None:
    p = prober(tmp_path, CountingRunner())
    p.probe(zoo_spec("mlp"), "torch", InferWorkload())
    rows = p.store.query(framework="torch", kind="infer")  # type: ignore[union-attr]
    assert len(rows) == 1 and rows[0].model == "mlp" and rows[0].workload["kind"] == "infer"


def test_spec_memo_builds_once_per_spec_and_evicts_the_oldest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memo, "SIZE", 2)
    calls: list[str] = []

    def compute(s: ModelSpec) -> int:
        calls.append(s.name)
        return len(calls)

    m = memo.SpecMemo(compute)
    small, default = zoo_spec("resnet18", "small"), zoo_spec("resnet18", None)
    assert m(small) == m(small.model_copy(update={"name": "renamed"})) == 1  # what computes
    assert m(default) == 2 and calls == ["resnet18", "resnet18"]
    m(zoo_spec("mlp"))  # a third spec evicts the least recent (small)
    assert m(default) == 2 and m(small) == 4
    graph, analysis = memo.analyzed(small)
    assert memo.analyzed(small)[0] is graph and analysis.params > 0


def test_untagged_payloads_of_older_results_still_parse() -> None:
    old = {"status": "ok", "framework": "torch", "data": {"loss": 0.5, "weights_file": "w.npz"}}
    assert ProbeResult.model_validate(old).payload(TrainStepData) == TrainStepData(
        loss=0.5, weights_file="w.npz"
    )
    measured = {"status": "ok", "framework": "torch", "data": {}}
    assert ProbeResult.model_validate(measured).data is None


def test_a_stored_row_that_no_longer_parses_counts_as_missing(tmp_path: Path) -> None:
    runner = CountingRunner()
    p = prober(tmp_path, runner)
    spec = zoo_spec("mlp")
    p.probe(spec, "torch", InferWorkload())
    store = p.store
    assert store is not None and len(store.query()) == 1
    with sqlite3.connect(store.path) as db:
        db.execute("""UPDATE results SET result = '{"status": "ok", "data": {"x": 1}}'""")
    assert store.query() == []
    p.probe(spec, "torch", InferWorkload())  # a miss: the worker runs again
    assert len(runner.calls) == 2
