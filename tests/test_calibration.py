"""Per-operator calibration and predictor (issue 18): the grid, the fit on a synthetic
machine, fusion, settings mapping, which calibration answers, and the CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from probes.calibrate.cells import CalibCell
from probes.calibrate.grid import CONFIGS, DEFAULT_CONFIGS, grid
from probes.calibrate.run import calibrate
from probes.calibrate.store import load_calibration
from probes.config import Settings
from probes.runners.local import SubprocessRunner
from probes.settings import TFSettings, TorchSettings
from probes.spec import build_graph
from recommender.predictor.calibrated import CalibratedPredictor, config_for
from recommender.predictor.choose import choose, predicted_fastest
from recommender.predictor.nodes import NodeCost, node_costs
from recommender.predictor.opfit import fit_calibration, nnls_relative
from recommender.predictor.opmodel import price
from service.cli.main import main
from service.jobs.requests import CalibrationConfig
from tests.calibration_fakes import law, other_machine, synthetic, truth, write_synthetic
from tests.conftest import make_spec, zoo_spec


def test_grid_is_valid_bounded_and_stable() -> None:
    quick, full = grid(quick=True), grid()
    assert tuple(quick) == DEFAULT_CONFIGS and set(full) == set(CONFIGS)
    for cells in (*quick.values(), *full.values()):
        ids = [c.id for c in cells]
        assert len(ids) == len(set(ids))  # ids are the resume keys
        for c in cells:
            build_graph(c.spec)
    assert all(len(v) <= 70 for v in quick.values())
    assert sum(len(v) for v in full.values()) <= 840
    assert [c.id for c in grid(quick=True)["torch/eager"]] == [c.id for c in quick["torch/eager"]]
    assert set(CalibrationConfig.__args__) == set(CONFIGS)  # type: ignore[attr-defined]


def test_nnls_relative_keeps_prices_non_negative() -> None:
    X = np.array([[1.0, 1.0, 0.0], [1.0, 2.0, 0.0], [1.0, 3.0, 0.0]])
    y = np.array([3.0, 2.0, 1.0])  # falling with FLOPs: a negative price would fit better
    c = nnls_relative(X, y)
    assert np.all(c >= 0) and c[1] == 0


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "text_lstm", "lenet5"])
def test_sum_over_nodes_recovers_an_additive_machine(name: str) -> None:
    models = fit_calibration(synthetic())
    spec = zoo_spec(name)
    graph = build_graph(spec)
    for batch in (1, 8):
        got = price(models["torch/eager"], node_costs(graph, batch)).latency_s
        assert got == pytest.approx(truth(graph, batch), rel=0.05)


def test_fusion_is_fitted_from_chains_and_applied() -> None:
    models = fit_calibration(synthetic(fusion=0.3))
    m = models["tensorflow/function"]
    assert m.fusion == pytest.approx(0.3, abs=0.02)
    spec = make_spec(
        [
            {"id": "c", "op": "conv2d", "inputs": ["x"], "params": {"filters": 32, "kernel": 3}},
            {"id": "b", "op": "batch_norm", "inputs": ["c"]},
            {"id": "r", "op": "relu", "inputs": ["b"]},
        ],
        inputs=[{"name": "x", "shape": [16, 28, 28]}],
    )
    graph = build_graph(spec)
    costs = node_costs(graph, 4)
    assert [c.fusable for c in costs] == [False, True, True]
    assert price(m, costs).latency_s == pytest.approx(truth(graph, 4, fusion=0.3), rel=0.05)
    unfused = m.model_copy(update={"fusion": 1.0})
    assert price(unfused, costs).latency_s > price(m, costs).latency_s


def test_settings_map_to_calibrated_configurations() -> None:
    models = fit_calibration(synthetic())  # quick: the defaults only
    assert config_for(TorchSettings(), models) == ("torch/eager", [])
    key, notes = config_for(TorchSettings(mode="compile", precision="bf16"), models)
    assert key == "torch/eager" and "bf16" in notes and any("compile" in n for n in notes)
    full = {k: models["tensorflow/function"] for k in CONFIGS}
    assert config_for(TFSettings(mode="xla"), full) == ("tensorflow/xla", [])


def test_interval_contains_the_median_and_widens_for_another_machine() -> None:
    models = fit_calibration(synthetic())
    spec = zoo_spec("resnet18")
    own = CalibratedPredictor(models=models, label="", env_matches=True, trained_on="")
    other = CalibratedPredictor(models=models, label="", env_matches=False, trained_on="", widen=2)
    a, b = own.predict(spec, "torch", 8), other.predict(spec, "torch", 8)
    assert a.latency_s.lo < a.latency_s.median < a.latency_s.hi
    width = math.log(a.latency_s.hi / a.latency_s.lo)
    assert math.log(b.latency_s.hi / b.latency_s.lo) == pytest.approx(2 * width)
    assert a.memory_bytes.median > 0 and a.baseline_bytes > 0


def test_choice_this_machine_another_machine_or_none(settings: Settings) -> None:
    assert choose(settings).predictor is None
    assert "calibrate --quick" in choose(settings).caveats[0]
    write_synthetic(settings.data_dir, env=other_machine())
    c = choose(settings)
    assert c.predictor is not None and not c.predictor.env_matches
    assert c.calibration.startswith("another machine") and "calibrate --quick" in c.caveats[0]
    write_synthetic(settings.data_dir)
    c = choose(settings)
    assert c.predictor is not None and c.predictor.env_matches and c.caveats == []


def test_predict_cli_json_and_text(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FWADVISOR_DATA_DIR", str(settings.data_dir))
    write_synthetic(settings.data_dir)
    assert main(["predict", "lenet5", "--batch", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"frameworks", "calibration", "caveats"}
    for fw in ("torch", "tensorflow"):
        row = data["frameworks"][fw]
        assert row["latency_lo_ms"] <= row["latency_ms"] <= row["latency_hi_ms"]
        assert row["memory_mib"] > 0 and row["settings"]
    assert data["calibration"].startswith("this machine") and data["caveats"] == []
    assert main(["predict", "resnet18", "--size", "small", "--settings", "best"]) == 0
    out = capsys.readouterr().out
    assert "latency ms" in out and "calibration: this machine" in out
    assert main(["predict", "lenet5", "--settings", "threads=zero", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and json.loads(err)["error"]["message"].startswith("--settings")


def test_the_search_starts_from_this_machines_predicted_fastest(settings: Settings) -> None:
    """Only this machine's calibration ranks the search's starts, one per framework: the
    configuration it predicts fastest, the one predict mode's `--settings best` shows."""
    spec = zoo_spec("lenet5")
    assert predicted_fastest(spec, 1, settings) == {}
    write_synthetic(settings.data_dir, env=other_machine())
    assert predicted_fastest(spec, 1, settings) == {}
    write_synthetic(settings.data_dir)
    picks = predicted_fastest(spec, 8, settings)
    pred = choose(settings).predictor
    assert pred is not None and set(picks) == {"torch", "tensorflow"}
    for fw, (pick,) in picks.items():
        assert pick == pred.best(spec, fw, 8)
        assert config_for(pick, pred.models)[0] in pred.configs(fw)


def _caveats(settings: Settings) -> list[str]:
    from recommender.recommend import recommend

    rec = recommend(zoo_spec("resnet18"), {}, "predict", settings=settings)
    return [*rec.caveats, *rec.evidence.caveats]


def test_predict_mode_caveat_switch(settings: Settings) -> None:
    """Without a calibration: the old predictor, labelled as the last fallback, with
    the command that removes the caveat; with this machine's: no machine caveat."""
    before = " ".join(_caveats(settings))
    assert "last fallback" in before and "fwadvisor calibrate --quick" in before
    write_synthetic(settings.data_dir, env=other_machine())
    middle = " ".join(_caveats(settings))
    assert "another machine's calibration" in middle and "last fallback" not in middle
    write_synthetic(settings.data_dir)
    after = " ".join(_caveats(settings))
    for gone in ("another machine", "machines the predictor learned", "last fallback", "calibrate"):
        assert gone not in after


WEB = """
import sys
from service.app import create_app
from service.settings import ServiceSettings
c = create_app(ServiceSettings()).test_client()
r = c.post("/v1/recommendations", json={"model": "resnet18", "mode": "predict"})
heavy = ("torch", "tensorflow", "keras", "sklearn", "scipy", "onnxruntime", "ai_edge_litert")
bad = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy})
print("CODE", r.status_code, "IMPORTED", bad, "CALIBRATED", "calibration: this machine" in r.text)
"""


def test_web_predict_with_calibration_imports_no_framework_or_sklearn(tmp_path: Path) -> None:
    write_synthetic(tmp_path)
    env = {**os.environ, "FWADVISOR_DATA_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", WEB], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert "CODE 200 IMPORTED [] CALIBRATED True" in out


def _tiny_plan(key: str) -> dict[str, list[CalibCell]]:
    cells = grid(quick=True)[key]
    keep = [c for c in cells if c.group == "dispatch" and c.batch == 1]
    keep += [c for c in cells if c.id.startswith("dense|512-512|512|b1")]
    return {key: keep}


@pytest.mark.parametrize(
    "key", ["torch/eager", pytest.param("tensorflow/function", marks=pytest.mark.slow)]
)
def test_real_calibration_is_stored_and_resumed(
    tmp_path: Path, runner: SubprocessRunner, key: str
) -> None:
    lines: list[str] = []
    plan = _tiny_plan(key)
    run = calibrate(tmp_path, runner, configs=[key], say=lines.append, plan=plan)
    assert run.measured == 3 and not run.failed and lines[0].startswith("calibrating")
    cal = load_calibration(run.path)
    assert cal is not None and cal.ok_cells() == 3
    assert all((e.result.min_s or 0) > 0 for e in cal.configs[key].entries.values())
    again = calibrate(tmp_path, runner, configs=[key], say=lines.append, plan=plan)
    assert again.measured == 0 and again.skipped == 3
    twice = calibrate(tmp_path, runner, configs=[key], say=lines.append, plan=plan, rounds=2)
    assert twice.measured == 3 and any("round 2/2: 3 cells" in x for x in lines)
    merged = load_calibration(run.path)
    assert merged is not None
    for i, e in merged.configs[key].entries.items():
        first = cal.configs[key].entries[i].result
        assert e.rounds == 2 and (e.result.min_s or 0) <= (first.min_s or 0)
    model = fit_calibration(cal)[key]
    assert model.call_s > 0 and model.dispatch_s > 0 and "dense" in model.kernels


def test_calibrate_job_kind_validates() -> None:
    from pydantic import ValidationError

    from service.jobs.requests import CalibrateJob, JobCreate

    job = JobCreate.model_validate({"kind": "calibrate", "configs": ["torch/eager"]}).root
    assert isinstance(job, CalibrateJob) and job.quick and job.rounds == 2
    for bad in ({"configs": ["torch/fast"]}, {"rounds": 0}, {"rounds": 6}, {"rounds": "two"}):
        with pytest.raises(ValidationError):
            JobCreate.model_validate({"kind": "calibrate", **bad})


def test_calibrate_cli_rejects_unknown_configs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--configs", "torch/fast", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown configuration" in json.loads(err)["error"]["message"]
    for bad in ("0", "6", "x"):
        assert main(["calibrate", "--rounds", bad, "--json"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--rounds" in json.loads(err)["error"]["message"]


def test_a_cell_measured_again_keeps_each_lower_statistic() -> None:
    from probes.calibrate.cells import CellResult
    from probes.calibrate.store import CalibEntry

    cell = grid(quick=True)["torch/eager"][0]

    def result(status: str = "ok", t: float = 1.0) -> CellResult:
        return CellResult(
            id=cell.id,
            group=cell.group,
            batch=cell.batch,
            status=status,
            median_s=3 * t if status == "ok" else None,
            q25_s=2 * t if status == "ok" else None,
            min_s=t if status == "ok" else None,
            iterations=10,
        )

    e = CalibEntry(cell=cell, result=result(t=1.0)).merged(result(t=0.5))
    assert e.rounds == 2 and e.result.iterations == 20
    assert (e.result.min_s, e.result.q25_s, e.result.median_s) == (0.5, 1.0, 1.5)
    again = e.merged(result(t=2.0))
    assert again.rounds == 3 and again.result.min_s == 0.5
    failed_round = e.merged(result("failed"))
    assert failed_round.result.min_s == 0.5  # a failed round loses nothing ...
    assert failed_round.rounds == 3  # ... and counts: the cell is not measured again
    fixed = CalibEntry(cell=cell, result=result("failed")).merged(result(t=1.0))
    assert fixed.result.status == "ok" and fixed.result.min_s == 1.0


@pytest.mark.slow
def test_calibrate_quick_cli_then_predict_mode_has_no_machine_caveat(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FWADVISOR_DATA_DIR", str(settings.data_dir))
    assert main(["calibrate", "--quick", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["cells_ok"] >= 100 and not rep["failed"]
    after = " ".join(_caveats(settings))
    assert "another machine" not in after and "last fallback" not in after


def test_web_calibrate_button_queues_a_job(tmp_path: Path) -> None:
    from service.app import create_app
    from service.settings import ServiceSettings
    from tests.conftest import ZOO

    client = create_app(ServiceSettings(data_dir=tmp_path, zoo_dir=ZOO)).test_client()
    page = client.get("/").get_data(as_text=True)
    assert 'action="/calibrate"' in page and "calibration: none" in page
    r = client.post("/calibrate")
    assert r.status_code == 303 and r.headers["Location"].startswith("/jobs/")
    job = client.get("/v1/jobs/" + r.headers["Location"].rsplit("/", 1)[1]).get_json()
    assert job["kind"] == "calibrate" and job["status"] == "queued"


def test_stalled_rows_are_left_out_of_the_correction() -> None:
    from recommender.predictor.corrections import FullRow, fit_corrections, stalled_rows

    g = build_graph(zoo_spec("lenet5"))
    rows = [
        FullRow("lenet5", g, "torch", "torch/eager", 1, 0.1),  # 100x its one-thread time
        FullRow("lenet5", g, "torch", "torch/eager-t1", 1, 0.001),
        FullRow("lenet5", g, "torch", "torch/eager", 8, 0.002),
        FullRow("lenet5", g, "torch", "torch/eager-t1", 8, 0.003),
    ]
    assert stalled_rows(rows) == {0}
    models = fit_calibration(synthetic())
    pred = CalibratedPredictor(models=models, label="", env_matches=True, trained_on="")
    fit_corrections(pred, rows[:1] + rows[2:3])  # no one-thread row: kept
    kept = pred.correction["torch/eager"].offset
    fit_corrections(pred, rows)
    assert pred.correction["torch/eager"].offset < kept


def test_a_lookup_reads_the_rows_it_gathers_not_its_table() -> None:
    """An embedding's cost grows with its tokens, not its vocabulary; its weights
    still count whole for memory."""

    def embedding_cost(vocab: int, tokens: int, batch: int) -> tuple[float, float]:
        spec = make_spec(
            [
                {
                    "id": "e",
                    "op": "embedding",
                    "inputs": ["x"],
                    "params": {"num_embeddings": vocab, "embedding_dim": 64},
                }
            ],
            inputs=[{"name": "x", "shape": [tokens], "dtype": "int64"}],
        )
        c = node_costs(build_graph(spec), batch)[0]
        return c.bytes, c.weight_bytes

    small, small_w = embedding_cost(1000, 16, 1)
    big, big_w = embedding_cost(30000, 16, 1)
    assert big == small and big_w == 30 * small_w  # 30x the table, same bytes read
    assert embedding_cost(1000, 32, 1)[0] > 1.9 * small * 0.9  # twice the tokens
    assert embedding_cost(1000, 16, 8)[0] == pytest.approx(8 * small)


def test_memory_is_fitted_per_configuration() -> None:
    """A compiler's peak holds its own state: an XLA row 4x the default's must not
    move the default's memory prediction (pooled, the default error was 74%)."""
    from recommender.predictor.corrections import FullRow, fit_corrections

    rows = []
    for name in ("lenet5", "mlp", "audio_cnn"):
        g = build_graph(zoo_spec(name))
        for b in (1, 8):
            default = 10e6 + 2 * 4 * g.nodes.__len__() * 1e5 * b
            rows.append(
                FullRow(name, g, "tensorflow", "tensorflow/function", b, 1e-3, default, 7e8)
            )
            rows.append(FullRow(name, g, "tensorflow", "tensorflow/xla", b, 1e-3, 4 * default, 7e8))
    pred = CalibratedPredictor(
        models=fit_calibration(synthetic(quick=False)), label="", env_matches=True, trained_on=""
    )
    fit_corrections(pred, rows)
    g = rows[0].graph
    tf_default = pred.predict(g, "tensorflow", 1, TFSettings()).memory_bytes.median
    tf_xla = pred.predict(g, "tensorflow", 1, TFSettings(mode="xla")).memory_bytes.median
    assert tf_xla > 2 * tf_default  # pooled, they were one model: equal
    assert abs(tf_default / rows[0].peak_bytes - 1) < 0.5  # type: ignore[operator]


def test_a_question_measured_several_times_is_its_median(tmp_path: Path) -> None:
    """Repeats of one question (other seeds) make one row at their median latency, so a
    probe that waited for the CPU once neither makes nor breaks the correction."""
    from probes.measure.environment import environment
    from probes.measure.timing import MeasureConfig
    from probes.probe import Prober
    from probes.protocol import InferWorkload, ProbeRequest, ProbeResult
    from probes.spec import spec_hash
    from probes.store import ResultStore
    from recommender.predictor.corrections import store_rows
    from tests.test_trust import _result

    latencies = iter([1e-3, 2e-3, 9e-3])  # the newest is the outlier

    class Runner:
        def run(self, req: ProbeRequest) -> ProbeResult:
            return _result(req.framework, next(latencies), peak=(req.seed + 1) * 2**20)

    store = ResultStore(tmp_path / "r.sqlite")
    spec = zoo_spec("lenet5")
    prober = Prober(Runner(), store, MeasureConfig(), efficiency=False)
    for seed in range(3):
        prober.probe(spec, "torch", InferWorkload(batch=1), CONFIGS["torch/eager"], seed=seed)
    known = {spec_hash(spec): ("lenet5", build_graph(spec))}
    (row,) = store_rows(store, environment().key(), known)
    assert row.latency_s == pytest.approx(2e-3)
    assert sorted(row.repeats) == pytest.approx([1e-3, 2e-3, 9e-3])
    assert row.peak_bytes == 2 * 2**20


def test_eager_epilogue_is_measured_at_least_one_and_graph_modes_at_most_one() -> None:
    """In eager torch nothing fuses, but the chains say what an elementwise op after a
    conv costs against its own cells; a graph mode's chains can only fuse it away."""
    slower = fit_calibration(synthetic(fusion=2.0))
    assert slower["torch/eager"].fusion == pytest.approx(2.0, abs=0.05)
    assert slower["tensorflow/function"].fusion == 1.0
    fused = fit_calibration(synthetic(fusion=0.3))
    assert fused["torch/eager"].fusion == 1.0
    assert fused["tensorflow/function"].fusion == pytest.approx(0.3, abs=0.02)


def _dense(units: int) -> dict[str, object]:
    return {"id": "d", "op": "dense", "inputs": ["x"], "params": {"units": units}}


def test_a_steady_slow_cell_stays_and_a_stalled_one_goes() -> None:
    """A cell 10x slower than its key's law is a wait for the CPU when its calls spread,
    and a kernel regime of its own (XLA's 2x2 conv) when they agree: then the node on
    it is priced well above the law (its neighbours, on the law, pull it down)."""
    from recommender.predictor.opfit import fit_kernel, kernel_time

    graphs = [
        build_graph(
            make_spec([{"id": "d", "op": "dense", "inputs": ["x"], "params": {"units": u}}])
        )
        for u in (16, 32, 64, 128, 256, 512)
    ]
    costs = [node_costs(g, 1)[0] for g in graphs]
    times = [law(c) for c in costs]
    times[-1] *= 10
    stalled = fit_kernel(costs, times, steady=[True] * 5 + [False])
    steady = fit_kernel(costs, times, steady=[True] * 6)
    assert (stalled.n, steady.n) == (5, 6)
    assert kernel_time(stalled, costs[-1]) < 2 * law(costs[-1])
    assert kernel_time(steady, costs[-1]) > 3 * law(costs[-1])


def test_batch_one_nodes_learn_from_batch_one_cells() -> None:
    """A kernel 3x slower at batch 1 than its law (another algorithm) prices batch-1
    nodes near 3x and batch-8 nodes of the same FLOPs near the law (without the batch
    coordinate: 2.5x and 1.2x)."""
    from recommender.predictor.opfit import fit_kernel, kernel_time

    def dense(units: int, batch: int) -> NodeCost:
        spec = make_spec([_dense(units)], inputs=[{"name": "x", "shape": [64]}])
        return node_costs(build_graph(spec), batch)[0]

    costs = [dense(u, 1) for u in (16, 64, 256, 1024)] + [dense(u, 8) for u in (2, 8, 32, 128)]
    times = [law(c) * (3.0 if c.batch == 1 else 1.0) for c in costs]
    k = fit_kernel(costs, times, steady=[True] * len(costs))
    one, eight = dense(128, 1), dense(16, 8)
    assert kernel_time(k, one) / law(one) > 2.6
    assert kernel_time(k, eight) / law(eight) < 1.1


def test_the_whole_model_correction_grows_with_the_model() -> None:
    """Measured / sum rising with the size of the model (a large network's kernels
    cost more than their cells) gives a slope: a small model is corrected less than a
    large one, and a lone outlier row does not set the slope."""
    from recommender.predictor.corrections import FullRow, fit_corrections

    models = fit_calibration(synthetic())
    pred = CalibratedPredictor(models=models, label="", env_matches=True, trained_on="")
    rows = []
    for name in ("lenet5", "mlp", "resnet18", "mobilenet_v2", "bert_tiny", "gru_seq"):
        g = build_graph(zoo_spec(name))
        for b in (1, 8):
            raw = pred.priced(g, "torch/eager", b).latency_s
            rows.append(FullRow(name, g, "torch", "torch/eager", b, raw * (raw / 1e-3) ** 0.2))
    outlier = rows[0]
    rows[0] = FullRow(
        outlier.model, outlier.graph, "torch", "torch/eager", 1, 50 * outlier.latency_s
    )
    fit_corrections(pred, rows)
    c = pred.correction["torch/eager"]
    assert 0.1 < c.slope <= 0.2
    assert c.factor(1e-4) < 1.0 < c.factor(1e-2)


def test_a_node_on_a_measured_cell_is_priced_by_that_cell() -> None:
    """A lookup table where the calibration measured: a node at a cell's FLOPs, bytes
    and batch takes that cell's time, however far the cell sits from its neighbours'
    law (before: a third of its residual was shrunk away)."""
    from recommender.predictor.opfit import fit_kernel, kernel_time, kernel_times

    costs = [
        node_costs(build_graph(make_spec([_dense(u)], inputs=[{"name": "x", "shape": [64]}])), 1)[0]
        for u in (16, 32, 64, 128, 256, 512)
    ]
    times = [law(c) for c in costs]
    times[3] *= 8  # steady: a regime of its own
    k = fit_kernel(costs, times, steady=[True] * len(costs))
    assert kernel_time(k, costs[3]) == pytest.approx(times[3], rel=1e-6)
    assert kernel_times(k, costs).tolist() == pytest.approx(times, rel=1e-6)


def test_a_web_worker_fits_the_calibration_before_its_first_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gunicorn's post_worker_init hook fits this machine's calibration (1.5 s inside
    the first request before); a fit that fails does not stop the worker."""
    import gc

    from recommender.predictor import choose as choose_module
    from service.cli import serve

    monkeypatch.setenv("FWADVISOR_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(serve, "load_compiled", lambda _settings: None)  # not this test's
    write_synthetic(tmp_path)
    choose_module._choice.cache_clear()
    try:
        serve._warm_and_freeze(None)
        assert choose_module._choice.cache_info().currsize == 1

        def broken(_settings: object) -> None:
            raise OSError("the store is unreadable")

        monkeypatch.setattr(serve, "choose", broken)
        serve._warm_and_freeze(None)  # no raise: the request path says what is wrong
    finally:
        gc.unfreeze()
        choose_module._choice.cache_clear()


def test_a_cell_that_stops_its_worker_fails_once_and_the_rest_go_on(tmp_path: Path) -> None:
    """A cell whose worker hangs or crashes becomes a failed cell with the reason, and
    is not measured again in a later round or a rerun (each try would cost a timeout);
    the cells after it are measured in the next round."""
    from probes.calibrate.cells import CELLS_FILE, CalibrateWorkload, CellResult
    from probes.protocol import ProbeRequest, ProbeResult

    cells = grid(quick=True)["torch/eager"][:3]
    hang = cells[1].id
    given: list[list[str]] = []

    class HangingRunner:
        def run(self, req: ProbeRequest) -> ProbeResult:
            work = req.workload
            assert isinstance(work, CalibrateWorkload) and req.io_dir
            given.append([c.id for c in work.cells])
            with open(Path(req.io_dir) / CELLS_FILE, "a") as out:
                for c in work.cells:
                    if c.id == hang:
                        return ProbeResult(status="timeout", framework="torch", reason="60 s")
                    r = CellResult(id=c.id, group=c.group, batch=c.batch, min_s=1e-4,
                                   q25_s=1e-4, median_s=1e-4)  # fmt: skip
                    out.write(r.model_dump_json() + "\n")
            return ProbeResult(status="ok", framework="torch")

    plan = {"torch/eager": cells}
    run = calibrate(tmp_path, HangingRunner(), plan=plan, rounds=2, say=lambda _: None)
    cal = load_calibration(run.path)
    assert cal is not None
    entries = cal.configs["torch/eager"].entries
    assert entries[hang].result.status == "failed"
    assert "stopped on this cell (timeout: 60 s)" in (entries[hang].result.reason or "")
    assert [ids.count(hang) for ids in given] == [1, 0]
    assert entries[cells[0].id].rounds == 2 and entries[cells[2].id].result.status == "ok"
    calibrate(tmp_path, HangingRunner(), plan=plan, rounds=2, say=lambda _: None)
    assert sum(ids.count(hang) for ids in given) == 1  # a rerun does not try it again


def test_the_answer_says_when_the_correction_is_capped_for_some_models() -> None:
    """The cap (2x) can bind at the largest or smallest models while the correction's
    centre is inside it: the answer says so, as for a correction capped everywhere."""
    from recommender.predictor.corrections import FullRow, fit_corrections

    models = fit_calibration(synthetic())
    pred = CalibratedPredictor(models=models, label="", env_matches=True, trained_on="")
    names = ("lenet5", "mlp", "resnet18", "vgg16", "bert_tiny", "gru_seq")
    graphs = {n: build_graph(zoo_spec(n)) for n in names}
    raws = {
        (n, b): pred.priced(g, "torch/eager", b).latency_s
        for n, g in graphs.items()
        for b in (1, 8)
    }
    centre = float(np.mean([math.log(r) for r in raws.values()]))

    def measured(r: float) -> float:
        return r * math.exp(0.5 + 0.25 * (math.log(r) - centre))

    rows = [
        FullRow(n, graphs[n], "torch", "torch/eager", b, measured(r)) for (n, b), r in raws.items()
    ]
    fit_corrections(pred, rows)
    c = pred.correction["torch/eager"]
    assert abs(c.offset) < math.log(2)
    assert "capped" in pred.warnings["torch/eager"]
    assert max(c.factor(r) for r in raws.values()) == pytest.approx(2.0)
