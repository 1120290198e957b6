"""How probe requests reach a worker: the `ProbeRunner` protocol (`base`), a fresh local
subprocess (`local`, the default), a Ray task (`ray`), or nothing at all (`store_only`).
Every runner returns a ``ProbeResult`` and never raises for a probe that failed."""
