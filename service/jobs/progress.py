"""A job's latest progress line read back as numbers: the step, work done of that
planned, elapsed time and the estimate of the time left. Three shapes are read:

- a measure-mode recommendation (``recommender.evidence.progress.stepped``)::

    [search] torch: trial 3 (3/14 probes, 0:42 elapsed, about 2:31 left)

- a zoo run (``recommender/zoo/run.py``): ``[3/11] resnet18: tuning at batch 1``
  (model 3 of 11 under way: 2 done);
- a calibration (``probes/calibrate/run.py``): ``… [40/114, 21 s]`` (cells).

For the last two, the time left is the elapsed time per unit done times the units
left. A line in any other shape (a worker's "started on …", a tune message) gives only
its text; the elapsed time then comes from the job's start.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

STEPPED = re.compile(
    r"^\[(?P<step>[^\]]{1,80})\] (?P<message>.*) \((?P<done>\d+)/(?P<planned>\d+) probes, "
    r"(?P<elapsed>\d+:\d\d) elapsed(?:, about (?P<eta>\d+:\d\d) left)?\)$",
    re.DOTALL,
)
ZOO = re.compile(r"^\[(?P<i>\d+)/(?P<n>\d+)\] (?P<message>.+)$", re.DOTALL)
CALIBRATE = re.compile(r"^\s*(?P<key>\S+)\s.*\[(?P<done>\d+)/(?P<total>\d+), \d+ s\]$")


class JobProgress(BaseModel):
    """Where a running job is (GET /v1/jobs/{id} ``current``)."""

    step: str | None = Field(default=None, description="The step, e.g. 'search'.")
    message: str = Field(description="The latest progress line.")
    done: int | None = Field(default=None, description="Units of work finished.")
    planned: int | None = Field(default=None, description="Units planned (so far).")
    unit: str | None = Field(default=None, description="probes, models or cells.")
    elapsed_s: float | None = Field(default=None, description="Since the job started.")
    eta_s: float | None = Field(
        default=None, description="Estimated time left (time per unit done times units left)."
    )


def _seconds(clock: str | None) -> float | None:
    if clock is None:
        return None
    minutes, seconds = clock.split(":")
    return float(int(minutes) * 60 + int(seconds))


def _pro_rata(elapsed_s: float | None, done: int, planned: int) -> float | None:
    if elapsed_s is None or done <= 0:
        return None
    return elapsed_s / done * max(0, planned - done)


def parse(line: str, elapsed_s: float | None = None) -> JobProgress:
    """``line`` as numbers where it has them; ``elapsed_s`` (since the job's start)
    where it does not."""
    if m := STEPPED.match(line):
        return JobProgress(
            step=m["step"],
            message=m["message"],
            done=int(m["done"]),
            planned=int(m["planned"]),
            unit="probes",
            elapsed_s=_seconds(m["elapsed"]) if elapsed_s is None else elapsed_s,
            eta_s=_seconds(m["eta"]),
        )
    if m := ZOO.match(line):
        done, planned = int(m["i"]) - 1, int(m["n"])
        step = f"model {m['i']} of {planned}"
        eta = _pro_rata(elapsed_s, done, planned)
        return JobProgress(
            step=step,
            message=m["message"],
            done=done,
            planned=planned,
            unit="models",
            elapsed_s=elapsed_s,
            eta_s=eta,
        )
    if m := CALIBRATE.match(line):
        done, planned = int(m["done"]), int(m["total"])
        eta = _pro_rata(elapsed_s, done, planned)
        return JobProgress(
            step=m["key"],
            message=line.strip(),
            done=done,
            planned=planned,
            unit="cells",
            elapsed_s=elapsed_s,
            eta_s=eta,
        )
    return JobProgress(message=line, elapsed_s=elapsed_s)
