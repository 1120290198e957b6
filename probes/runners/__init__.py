"""How probe requests reach a worker: a fresh local subprocess (the default) or a Ray task.
Every runner returns a ``ProbeResult`` and never raises for a probe that failed."""
