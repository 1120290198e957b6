"""The measurement method, framework-free: timing, memory and the environment fingerprint.
Used by workers (timing, memory sampling) and by the parent (process-group RSS)."""
