"""Per-operator calibration: single-op graphs timed on this machine (issue 18)."""
