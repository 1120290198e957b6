"""Per-framework backends. Each module imports its framework; load them only in workers."""
