"""Counts of fuzz cases and their status classes, written as JSON at exit when
FWADVISOR_FUZZ_STATS names a file (how the issue-19 note's counts were produced)."""

from __future__ import annotations

import atexit
import json
import os
from collections import Counter, defaultdict

STATS: defaultdict[str, Counter[str]] = defaultdict(Counter)


def count(operation: str, status: int) -> None:
    STATS[operation][f"{status // 100}xx"] += 1


def _dump() -> None:
    path = os.environ.get("FWADVISOR_FUZZ_STATS")
    if path and STATS:
        total = sum(sum(c.values()) for c in STATS.values())
        fivexx = sum(c["5xx"] for c in STATS.values())
        body = {"cases": total, "5xx": fivexx, "by_operation": STATS}
        with open(path, "w") as f:
            json.dump(body, f, indent=1, sort_keys=True)


atexit.register(_dump)
