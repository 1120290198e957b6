"""Reproducible measurement scripts; each prints the figures docs/benchmarks.md quotes."""
