"""Thin adapters: the CLI now; the HTTP API, web page and jobs in later issues."""
