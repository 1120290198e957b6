"""CLI behaviour on good and bad input, in text and --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from service.cli.main import main
from tests.conftest import ZOO, ZOO_NAMES


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "list", "--json")
    data = json.loads(out)
    assert code == 0 and [m["name"] for m in data["models"]] == ZOO_NAMES
    resnet = next(m for m in data["models"] if m["name"] == "resnet18")
    assert resnet["params"] == 11_689_512 and resnet["flops"] > 3e9


def test_models_show_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "show", "lenet5")
    assert code == 0 and "TOTAL" in out and "61,706" in out and "avg_pool2d" in out
    code, out, _ = run(capsys, "models", "show", "lenet5", "--json")
    data = json.loads(out)
    assert data["params"] == 61_706 and data["flops"] == 833_040
    assert sum(n["params"] for n in data["nodes"]) == data["params"]


def test_models_show_size_preset(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "models", "show", "resnet18", "--size", "small", "--json")
    assert json.loads(out)["input_shapes"] == {"image": [3, 64, 64]}


def test_bad_file_one_line_error_naming_file_and_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = yaml.safe_load((ZOO / "lenet5.yaml").read_text())
    spec["nodes"][3]["params"]["kernel"] = 50
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    code, out, err = run(capsys, "models", "show", str(bad))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(bad) in err
    assert "node 'c3'" in err and "Traceback" not in err


def test_unparseable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [unclosed")
    code, _, err = run(capsys, "models", "show", str(bad))
    assert code == 2 and str(bad) in err and "not valid YAML" in err


def test_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "parity", "nope")
    assert code == 2 and "'nope'" in err


def test_parity_ok_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "parity", "mlp", "--json")
    data = json.loads(out)
    assert code == 0 and data["passed"] and data["reports"][0]["max_abs_diff"] < 1e-4


def test_parity_spec_file_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "m.json"
    f.write_text(json.dumps(yaml.safe_load((ZOO / "conv_autoencoder.yaml").read_text())))
    code, out, _ = run(capsys, "parity", str(f), "--size", "small", "--mode", "train")
    assert code == 0 and "PASS" in out and "train_step" in out


def test_console_script_has_no_traceback_on_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli.main",
            "models",
            "show",
            str(tmp_path / "missing.yaml"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "cannot read" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_probe_json_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FWADVISOR_DATA_DIR", str(tmp_path))
    args = ["probe", "mlp", "--batch", "4", "--min-time", "0.05", "--rounds", "2"]
    code, out, _ = run(capsys, *args, "--json")
    data = json.loads(out)
    assert code == 0 and len(data["rows"]) == 4 and data["machine_peak_gflops"] > 0
    assert [(r["round"], r["framework"]) for r in data["rows"]] == [
        (1, "torch"),
        (1, "tensorflow"),
        (2, "tensorflow"),  # the first framework alternates by round
        (2, "torch"),
    ]
    assert all(r["result"]["measurement"]["timing"]["iterations"] >= 10 for r in data["rows"])
    assert all("contention" in r["result"]["measurement"] for r in data["rows"])
    (c,) = data["comparisons"]
    assert c["rounds"] == 2 and c["lo"] <= c["hi"] and "interval" in c["note"]
    assert c["faster"] in ("torch", "tensorflow", None)  # None: a tie within the interval
    code, out, _ = run(capsys, *args)
    assert code == 0 and "samples/s" in out and "90% interval" in out
    assert (tmp_path / "results.sqlite").exists()


def test_probe_rejects_invalid_settings_before_running(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "probe", "mlp", "--settings", "torch.channels_last=true")
    assert code == 2 and out == "" and "channels_last" in err and "has none" in err
    code, _, err = run(capsys, "probe", "mlp", "--settings", "threads=64")
    assert code == 2 and "exceeds" in err
    code, _, err = run(capsys, "probe", "mlp", "--workload", "infer,fly")
    assert code == 2 and "unknown workload 'fly'" in err


def test_probe_convergence_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "probe", "mlp", "--workload", "convergence", "--epochs", "1", "--batch", "64"
    )
    assert code == 0 and "sklearn digits" in out and "tf accuracy" in out


def test_deploy_json_and_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FWADVISOR_DATA_DIR", str(tmp_path))
    code, out, _ = run(
        capsys, "deploy", "mlp", "--targets", "onnx,tfjs", "--min-time", "0.05", "--json"
    )
    data = json.loads(out)
    assert code == 0, data
    cells = {(c["framework"], c["target"]): c for c in data["exports"]["checks"]}
    assert cells["torch", "onnx"]["status"] == "verified"
    assert cells["tensorflow", "onnx"]["status"] == "verified"
    assert cells["torch", "tfjs"]["status"] == "unsupported"  # no route
    browser = [t for t in data["targets"] if t["target"] == "browser"]
    assert {t["verdict"] for t in browser} == {"verified"}  # ONNX Runtime Web
    # The same run again is answered from the store; the text names the verified route.
    code, out, err = run(capsys, "deploy", "mlp", "--targets", "onnx,tfjs", "--min-time", "0.05")
    assert code == 0 and "verified: onnx" in out and "from the store" in err
    # An unsupported cell says why in the text too, not only in --json.
    why = cells["torch", "tfjs"]["reason"]
    assert why and f"torch tfjs (unsupported): {why}" in out


def test_deploy_rejects_unknown_target(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "deploy", "mlp", "--targets", "onnx,coreml")
    assert code == 2 and out == "" and "unknown export target(s) ['coreml']" in err


def test_probe_text_renders_a_failed_row_with_its_reason() -> None:
    from probes.measure.environment import environment
    from probes.protocol import ProbeResult
    from service.cli.probe_render import render
    from service.schemas import ProbeReport, ProbeRow

    failed = ProbeResult(status="oom", framework="torch", reason="group RSS above 60 MB")
    report = ProbeReport(
        model="mlp",
        input_shapes={"features": [64]},
        environment=environment(),
        machine_peak_gflops=None,
        rows=[ProbeRow(framework="torch", workload="infer", batch=1, settings="s", result=failed)],
        comparisons=[],
    )
    text = render(report)
    assert "OOM" in text and "torch infer b=1: oom: group RSS above 60 MB" in text


def test_probe_custom_op_refuses_a_model_without_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "probe", "mlp", "--workload", "custom-op")
    assert code == 2 and out == "" and "no custom op node" in err


def test_ask_from_file_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "resolved.yaml"
    code, out, _ = run(
        capsys, "ask", "--answers", "data/examples/mobile.yaml", "--out", str(out_file), "--json"
    )
    data = json.loads(out)
    assert code == 0 and data["answers"]["targets"] == ["android", "ios"]
    assert {c["text"] for c in data["profile"]["constraints"]} >= {
        "must run on android",
        "memory <= 512 MiB",
    }
    assert out_file.exists() and "android" in out_file.read_text()


def test_ask_interactive_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    # targets: 5 = browser; then Enter (default) for every other question.
    monkeypatch.setattr("sys.stdin", io.StringIO("5\n" + "\n" * 20))
    code, out, err = run(capsys, "ask", "--json")
    assert code == 0 and json.loads(out)["answers"]["targets"] == ["browser"]
    assert "Where must the model run" in err


def test_ask_and_recommend_reject_bad_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: [mars]\n")
    code, out, err = run(capsys, "ask", "--answers", str(bad))
    assert code == 2 and out == "" and "answers.targets" in err and "mars" in err
    code, out, err = run(capsys, "recommend", "mlp", "--answers", str(bad))
    assert code == 2 and "answers.targets" in err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # CI has no stdin: an error, no hang
    code, _, err = run(capsys, "ask")
    assert code == 2 and "stdin closed" in err


def test_version_and_framework_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("fwadvisor ")
    from service.cli.options import framework_option

    assert framework_option("PyTorch") == "torch" and framework_option("keras") == "tensorflow"
    assert framework_option("pt") == "torch" and framework_option("both") == "both"
    code, _, err = run(capsys, "deploy", "mlp", "--framework", "jax")
    assert code == 2 and "unknown framework 'jax'" in err


def test_near_misses_get_a_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "models", "show", "lenet5", "--size", "smal")
    assert code == 2 and "did you mean 'small'" in err and err.count("\n") == 1
    code, _, err = run(capsys, "deploy", "lenet5", "--targets", "onx")
    assert code == 2 and "did you mean 'onnx'" in err
    code, _, err = run(capsys, "deploy", "lenet5", "--targets", "zzzzz")
    assert code == 2 and "did you mean" not in err and "known:" in err


def test_help_is_plain_text_with_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["recommend", "--help"], ["tune", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "``" not in out, argv
    with pytest.raises(SystemExit):
        main(["recommend", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # help wraps lines
    assert "(default: predict)" in out and "(default: 6)" in out
    assert "optional: without it the questions are asked here" in out
