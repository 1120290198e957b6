"""Real probes of small models in both frameworks (fast); larger ones are marked slow."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import ColdStartWorkload, InferWorkload, ProbeRequest, TrainWorkload
from probes.runners.local import SubprocessRunner
from probes.settings import TFSettings, TorchSettings
from tests.conftest import zoo_spec

QUICK = MeasureConfig(min_time_s=0.05, min_iters=5, max_warmup_s=0.5)


@pytest.fixture(scope="module")
def prober() -> Prober:
    return Prober(SubprocessRunner(timeout_s=300), measure=QUICK)


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_infer_train_cold(prober: Prober, framework: str) -> None:
    spec = zoo_spec("lenet5")
    for w in (
        InferWorkload(batch=4),
        TrainWorkload(batch=4, optimizer="adam"),
        ColdStartWorkload(),
    ):
        r = prober.probe(spec, framework, w)  # type: ignore[arg-type]
        assert r.status == "ok", r.reason
        m = r.measurement
        assert m is not None and m.memory is not None and m.phases.import_s > 0
        assert m.runtime["intra_threads"]
        if w.kind == "cold":
            assert m.timing is None and m.phases.total_s and m.phases.spawn_to_main_s
            assert m.phases.total_s > m.phases.import_s
        else:
            t = m.timing
            assert t is not None and t.iterations >= 5 and t.p99_s >= t.median_s >= t.min_s
            assert m.throughput_sps == pytest.approx(4 / t.median_s)
            assert m.gflops_per_s and m.efficiency and 0 < m.efficiency < 2
            assert m.memory.weight_bytes == 61_706 * 4


def test_settings_reach_the_runtime(prober: Prober) -> None:
    spec = zoo_spec("mlp")
    t = prober.probe(spec, "torch", InferWorkload(), TorchSettings(intra_threads=1))
    f = prober.probe(spec, "tensorflow", InferWorkload(), TFSettings(intra_threads=1, onednn=False))
    assert t.measurement and t.measurement.runtime["intra_threads"] == "1"
    assert f.measurement and f.measurement.runtime["onednn"] == "0"
    assert f.measurement.settings_label == "function t1 fp32 no-onednn"


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_bf16_runs(prober: Prober, framework: str) -> None:
    s = TorchSettings(precision="bf16") if framework == "torch" else TFSettings(precision="bf16")
    r = prober.probe(zoo_spec("bert_tiny"), framework, InferWorkload(batch=2), s)  # type: ignore[arg-type]
    assert r.status == "ok", r.reason


def has_cuda() -> bool:
    return (
        shutil.which("nvidia-smi") is not None
        and subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0
    )


@pytest.mark.skipif(has_cuda(), reason="checks the no-GPU path")
@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_cuda_request_without_gpu_is_unsupported(framework: str) -> None:
    req = ProbeRequest(
        spec=zoo_spec("mlp"),
        framework=framework,
        workload=InferWorkload(),
        device="cuda",
        measure=QUICK,
    )
    r = SubprocessRunner(timeout_s=120).run(req)
    assert r.status == "unsupported"
    assert "CUDA" in (r.reason or "") or "GPU" in (r.reason or "")


@pytest.mark.cuda
@pytest.mark.skipif(not has_cuda(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_cuda_probe_reports_allocator_peak(prober: Prober, framework: str) -> None:
    r = prober.probe(zoo_spec("resnet18"), framework, InferWorkload(batch=8), device="cuda")  # type: ignore[arg-type]
    assert r.status == "ok" and r.measurement and r.measurement.memory
    assert r.measurement.memory.cuda_peak_bytes and r.measurement.memory.cuda_peak_bytes > 0


@pytest.mark.slow
def test_resnet18_both_frameworks(prober: Prober) -> None:
    spec = zoo_spec("resnet18", None).model_copy()
    for fw in ("torch", "tensorflow"):
        r = prober.probe(spec.resized("small"), fw, InferWorkload(batch=8))
        assert r.status == "ok"


@pytest.mark.slow
def test_torch_compile_first_call_includes_compile(prober: Prober) -> None:
    r = prober.probe(zoo_spec("mlp"), "torch", InferWorkload(), TorchSettings(mode="compile"))
    assert r.status == "ok" and r.measurement and r.measurement.timing
    assert r.measurement.timing.compile_s > 10 * r.measurement.timing.median_s
