"""Thin adapters: the CLI, the HTTP API, the web page and the background jobs."""
