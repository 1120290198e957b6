"""Progress of a long command on stderr, with rich.

On a terminal: every message is printed as a line, and below them a live bar shows the
step, probes done of those planned (when the command knows them), the elapsed time
(ticking, so the command is never silent) and the estimate of the time left. Elsewhere
(a pipe, CI, a log file): the lines only, each with the elapsed time, plus a line every
``HEARTBEAT_S`` seconds while a step runs without a message. ``--json`` prints no
progress at all: stdout holds the document, and stderr stays quiet for scripts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from recommender.evidence.progress import ProgressLine

Say = Callable[[str], None]
HEARTBEAT_S = 9.0  # checked every second: a quiet step prints within 10 s


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}"


class _Reporter:
    def __init__(self, label: str, console: Console) -> None:
        self.label, self.console = label, console
        self.start = self.last = self.step_start = time.monotonic()
        self.lock = threading.Lock()
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def say(self, msg: str) -> None:
        with self.lock:
            self.last = self.step_start = time.monotonic()
            self._print(msg)

    def _print(self, msg: str) -> None:
        """One line (the caller holds the lock)."""
        if self.bar is None:
            elapsed = _clock(self.last - self.start)
            self.console.print(
                f"{elapsed} {self.label}: {msg}", markup=False, highlight=False, soft_wrap=True
            )
            return
        self.bar.console.print(
            f"{self.label}: {msg}", markup=False, highlight=False, soft_wrap=True
        )
        self._update(msg)

    def _update(self, msg: str) -> None:
        assert self.bar is not None and self.task is not None
        if isinstance(msg, ProgressLine):
            eta = "" if msg.eta_s is None else f"about {_clock(msg.eta_s)} left"
            self.bar.update(
                self.task,
                description=f"{self.label} [{msg.step}]",
                total=msg.planned,
                completed=msg.done,
                eta=eta,
                unit="probes",
            )
        else:
            self.bar.update(self.task, description=f"{self.label}: {msg[:60]}")

    def heartbeat(self, stop: threading.Event) -> None:
        """Plain output only: say that the command is still at work."""
        while not stop.wait(1.0):
            with self.lock:
                now = time.monotonic()
                if now - self.last >= HEARTBEAT_S:
                    self.last = now
                    self._print(f"still working ({_clock(now - self.step_start)} on this step)")


@contextmanager
def progress(label: str, enabled: bool = True, console: Console | None = None) -> Iterator[Say]:
    """``with progress("recommend lenet5") as say: ...``; a no-op ``say`` when disabled."""
    if not enabled:
        yield lambda _msg: None
        return
    console = console or Console(stderr=True)
    rep = _Reporter(label, console)
    if console.is_terminal:
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
        )
        with Progress(*columns, console=console, transient=True) as bar:
            rep.bar, rep.task = bar, bar.add_task(label, total=None, eta="", unit="")
            yield rep.say
        return
    stop = threading.Event()
    beat = threading.Thread(target=rep.heartbeat, args=(stop,), daemon=True)
    beat.start()
    try:
        yield rep.say
    finally:
        stop.set()
        beat.join()
