"""A warm worker's graph compiler, imported once, ahead of the probes that use it.

A fresh process that runs ``torch.compile`` imports the compiler in its first call
(2-3 s and about 115 MiB on this CPU), and so did every child forked from a warm
worker. The worker now imports it when the parent asks, on the first probe that uses
it, and every later child starts with it. Memory stays a fresh process's:
- a probe that uses the compiler takes the import's RSS off its baseline
  (`baseline_credit`), so its peak counts the import, as a fresh process's does;
- a probe that does not use it starts above the import, and counts nothing of it;
  the parent's memory watch takes the same bytes off its group's RSS
  (`probes.runners.warm`), so its limit trips where a fresh process's would.
"""

from __future__ import annotations

import importlib
import time

from probes.frameworks.facts import facts, uses_compiler
from probes.measure.memory import rss_bytes
from probes.protocol import Framework, ProbeRequest

#: RSS the compiler import added to this worker; None until it ran. Forked children
#: inherit it.
imported_bytes: int | None = None


def import_compiler(framework: Framework) -> dict[str, float | int]:
    """Import the framework's compiler modules here; what that cost (the reply line)."""
    global imported_bytes
    before, t0 = rss_bytes(), time.perf_counter()
    for module in facts(framework).compiler_modules:
        importlib.import_module(module)
    imported_bytes = max(0, rss_bytes() - before)
    return {"preloaded_bytes": imported_bytes, "import_s": time.perf_counter() - t0}


def imported() -> int:
    """RSS this process holds from a compiler imported ahead (0: none)."""
    return imported_bytes or 0


def baseline_credit(request: ProbeRequest) -> int:
    """Bytes this child had at its start that a fresh process would count in the
    probe's peak: the compiler import, when the probe uses the compiler."""
    return imported() if uses_compiler(request) else 0
