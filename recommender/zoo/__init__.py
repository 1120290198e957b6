"""Batch evaluation of a model zoo and its reports (HTML, figures, CSV and Parquet)."""
