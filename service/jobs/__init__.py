"""Durable background jobs: the store (SQLAlchemy), their requests, and the worker."""
