"""CLI progress: lines on a plain stream, a live bar with counts on a terminal."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from recommender.evidence.progress import ProgressLine, WorkClock, stepped
from service.cli import progress as progress_mod
from service.cli.progress import progress


def test_plain_stream_gets_lines_with_elapsed_time() -> None:
    out = io.StringIO()
    with progress("recommend m", console=Console(file=out, width=40)) as say:
        say("measuring m: about 20 probes" + " and more" * 10)
    assert out.getvalue().startswith("0:00 recommend m: measuring m: about 20 probes")
    assert out.getvalue().count("\n") == 1  # a log line is never wrapped


def test_a_quiet_step_gets_a_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_mod, "HEARTBEAT_S", 0.4)
    out = io.StringIO()
    with progress("zoo", console=Console(file=out, width=200)) as say:
        say("lenet5: tuning")
        deadline = time.monotonic() + 20
        while out.getvalue().count("still working") < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    beats = [line for line in out.getvalue().splitlines() if "zoo: still working" in line]
    assert len(beats) >= 4, out.getvalue()
    # the time on the step keeps growing across heartbeats (a heartbeat is not a step)
    assert not beats[-1].endswith("(0:00 on this step)"), beats


def test_terminal_bar_takes_the_counts_of_a_progress_line() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    clock = WorkClock(planned=28, done=10, spent_s=50.0)
    seen: list[str] = []
    with progress("recommend m", console=console) as say:

        def both(msg: str) -> None:
            seen.append(msg)
            say(msg)

        line_say = stepped(both, clock, "paired rounds")
        line_say("confirm [1/12]")
        rep = say.__self__  # type: ignore[attr-defined]
        task = rep.bar.tasks[0]
        assert task.total == 28 and task.completed == 10
        assert "paired rounds" in task.description and task.fields["unit"] == "probes"
        assert task.fields["eta"] == "about 1:30 left"  # 5 s per probe x 18 left
    assert isinstance(seen[0], ProgressLine) and seen[0].startswith("[paired rounds] confirm")
    assert "recommend m: [paired rounds] confirm [1/12]" in out.getvalue()


def test_json_mode_prints_no_progress(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("x", enabled=False) as say:
        say("anything")
    assert capsys.readouterr() == ("", "")
