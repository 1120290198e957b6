"""How probe requests reach a worker: the `ProbeRunner` protocol (`base`), warm workers
(`warm`, opt-in for timing probes), a fresh local subprocess (`local`, the default), a Ray task
(`ray`), or nothing at all (`store_only`). `warm.local_runner` picks between the first
two. Every runner returns a ``ProbeResult`` and never raises for a probe that failed."""
