"""The CLI's one error path (issue 19): every error is one line and exit code 2, JSON
under --json; a closed output pipe is quiet; `ask` takes what its help says."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from service.cli.main import main
from tests.conftest import ROOT

BAD_OPTIONS = [
    ("probe", "mlp", "--memory-mb", "0"),
    ("probe", "mlp", "--timeout", "-1"),
    ("probe", "mlp", "--min-time", "-1"),
    ("probe", "mlp", "--batch", "1,0"),
    ("deploy", "mlp", "--timeout", "nan"),
    ("tune", "mlp", "--probe-timeout", "0"),
    ("tune", "mlp", "--trials", "x"),
    ("models", "lisst"),
    ("probe", "mlp", "--no-such-option"),
]


def _one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()


@pytest.mark.parametrize("argv", BAD_OPTIONS, ids=" ".join)
def test_a_bad_option_is_one_line_and_exit_2(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(list(argv)) == 2
    out, err = capsys.readouterr()
    assert out == "" and _one_line(err).startswith("error: ")
    assert main([*argv, "--json"]) == 2
    out, err = capsys.readouterr()
    got = json.loads(_one_line(err))["error"]
    assert out == "" and got["code"] and got["message"]


def test_every_error_is_json_under_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "show", "nope", "--json"]) == 2
    _, err = capsys.readouterr()
    assert json.loads(_one_line(err))["error"]["code"] == "unknown_model"


def test_an_unexpected_error_is_one_line_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_a: object) -> None:
        raise sqlite3.DatabaseError("file is not a database")

    monkeypatch.setattr("service.cli.main.zoo_names", boom)
    assert main(["models", "list"]) == 2
    assert "not a database" in _one_line(capsys.readouterr().err)

    def bug(*_a: object) -> None:
        raise KeyError("internals")

    monkeypatch.setattr("service.cli.main.zoo_names", bug)
    assert main(["models", "list", "--json"]) == 2
    got = json.loads(_one_line(capsys.readouterr().err))["error"]
    assert got["code"] == "internal" and "FWADVISOR_DEBUG" in got["message"]


def test_output_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    cmd = f"{sys.executable} -m service.cli.main models show resnet50 | head -1"
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.startswith("resnet50") and proc.stderr == "", proc.stderr


def _ask(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], lines: str
) -> tuple[dict[str, object], str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(lines + "\n" * 20))
    assert main(["ask", "--json"]) == 0
    out, err = capsys.readouterr()
    return json.loads(out)["answers"], err


def _skip_to(qid: str) -> str:
    """Enter (the default) for every question before ``qid``."""
    import yaml

    ids = [
        q["id"]
        for q in yaml.safe_load((ROOT / "data" / "questionnaire.yaml").read_text())["questions"]
    ]
    return "\n" * ids.index(qid)


def test_ask_takes_experience_as_its_help_numbers_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The help says 0 none ... 3 expert: 0 is none and 3 is expert."""
    answers, err = _ask(monkeypatch, capsys, _skip_to("experience_torch") + "0\n3")
    assert answers["experience_torch"] == 0 and answers["experience_tf"] == 3
    assert "  0. None" in err and "  3. Expert" in err


def test_ask_re_asks_on_bad_input_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers, err = _ask(monkeypatch, capsys, _skip_to("experience_torch") + "4\n-1\nx\n2")
    assert answers["experience_torch"] == 2
    assert err.count("is not an option; type one of 0, 1, 2, 3; try again") == 3
    assert "index" not in err
