"""A job's latest progress line read back as numbers: the step, probes done of those
planned, elapsed time and the estimate of the time left, as
``recommender.evidence.progress.stepped`` writes them::

    [search] torch: trial 3 (3/14 probes, 0:42 elapsed, about 2:31 left)

A line in another shape (a worker's "started on …", a zoo or tune message) gives only
its text; the elapsed time then comes from the job's start.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

LINE = re.compile(
    r"^\[(?P<step>[^\]]{1,80})\] (?P<message>.*) \((?P<done>\d+)/(?P<planned>\d+) probes, "
    r"(?P<elapsed>\d+:\d\d) elapsed(?:, about (?P<eta>\d+:\d\d) left)?\)$",
    re.DOTALL,
)


class JobProgress(BaseModel):
    """Where a running job is (GET /v1/jobs/{id} ``current``)."""

    step: str | None = Field(default=None, description="The step, e.g. 'search'.")
    message: str = Field(description="The latest progress line.")
    done: int | None = Field(default=None, description="Probes finished.")
    planned: int | None = Field(default=None, description="Probes planned (so far).")
    elapsed_s: float | None = Field(default=None, description="Since the job started.")
    eta_s: float | None = Field(
        default=None, description="Estimated time left: mean probe time times probes left."
    )


def _seconds(clock: str | None) -> float | None:
    if clock is None:
        return None
    minutes, seconds = clock.split(":")
    return float(int(minutes) * 60 + int(seconds))


def parse(line: str, elapsed_s: float | None = None) -> JobProgress:
    """``line`` as numbers where it has them; ``elapsed_s`` (since the job's start)
    where it does not."""
    m = LINE.match(line)
    if m is None:
        return JobProgress(message=line, elapsed_s=elapsed_s)
    return JobProgress(
        step=m["step"],
        message=m["message"],
        done=int(m["done"]),
        planned=int(m["planned"]),
        elapsed_s=_seconds(m["elapsed"]) if elapsed_s is None else elapsed_s,
        eta_s=_seconds(m["eta"]),
    )
