"""The predictor's training set: one CSV row per stored inference measurement.

Columns: what was asked (model, size, framework, batch, settings), the spec statistics
(``perf_features.STAT_COLUMNS``), what was measured, and which machine measured it.
``scripts/predictor_dataset.py`` writes it from the results store.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from probes.config import REPO_DATA
from probes.frameworks.facts import canonical, facts
from probes.settings import TFSettings, TorchSettings
from recommender.predictor.features import (
    FEATURES,
    STAT_COLUMNS,
    FrameworkSettingsT,
    query_features,
)

DEFAULT_DATASET = REPO_DATA / "datasets" / "predictor_train.csv"

SETTING_FIELDS: tuple[str, ...] = (
    "intra_threads",
    "inter_threads",
    "precision",
    "mode",
    "compile_mode",
    "channels_last",
    "inference_mode",
    "onednn",
)
MEASURED: tuple[str, ...] = (
    "median_s",
    "iqr_s",
    "noisy",
    "peak_rss_bytes",
    "baseline_rss_bytes",
    "group_peak_rss_bytes",
)
COLUMNS: tuple[str, ...] = (
    "model",
    "size",
    "spec_hash",
    "framework",
    "batch",
    "settings_label",
    "threads",
    *SETTING_FIELDS,
    *STAT_COLUMNS,
    *MEASURED,
    "env_key",
    "cpu_model",
)

Floats = npt.NDArray[np.float64]


def settings_to_fields(s: FrameworkSettingsT) -> dict[str, str]:
    """The CSV cells of one framework's settings (blank: not applicable or None)."""
    raw = s.model_dump()
    return {k: "" if raw.get(k) is None else str(raw[k]) for k in SETTING_FIELDS}


def settings_from_fields(framework: str, row: dict[str, str]) -> FrameworkSettingsT:
    """Inverse of ``settings_to_fields``."""
    cls: type[TorchSettings] | type[TFSettings] = facts(canonical(framework)).settings_cls
    vals: dict[str, object] = {}
    for k in SETTING_FIELDS:
        if k not in cls.model_fields or row.get(k, "") == "":
            continue
        v = row[k]
        vals[k] = v == "True" if v in ("True", "False") else int(v) if v.isdigit() else v
    return cls.model_validate(vals)


@dataclass(frozen=True)
class Dataset:
    """Model inputs and log10 targets, with the row metadata evaluation needs."""

    rows: list[dict[str, str]]
    X: Floats  # (n, len(FEATURES))
    log_latency: Floats  # log10 seconds
    log_memory: Floats  # log10 bytes above the worker's post-import RSS

    @property
    def groups(self) -> list[str]:
        return [r["model"] for r in self.rows]

    def subset(self, mask: npt.NDArray[np.bool_]) -> Dataset:
        idx = np.flatnonzero(mask)
        return Dataset(
            rows=[self.rows[i] for i in idx],
            X=self.X[idx],
            log_latency=self.log_latency[idx],
            log_memory=self.log_memory[idx],
        )


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in COLUMNS})


def row_features(row: dict[str, str]) -> dict[str, float]:
    """The predictor input of one training row, through the same path as a query."""
    stats = {c: float(row[c]) for c in STAT_COLUMNS}
    s = settings_from_fields(row["framework"], row)
    return query_features(stats, row["framework"], int(row["batch"]), s, cores=int(row["threads"]))


def to_dataset(rows: list[dict[str, str]]) -> Dataset:
    if not rows:
        raise ValueError("the predictor's training set is empty")
    X = np.array([[row_features(r)[c] for c in FEATURES] for r in rows], dtype=np.float64)
    lat = np.log10([float(r["median_s"]) for r in rows])
    mem = np.log10([max(float(r["peak_rss_bytes"]), 2**20) for r in rows])
    return Dataset(rows=rows, X=X, log_latency=lat, log_memory=mem)


def load_dataset(path: Path = DEFAULT_DATASET, env_key: str | None = None) -> Dataset:
    """Rows of the CSV (only those of ``env_key`` when given)."""
    rows = read_rows(path)
    if env_key is not None:
        rows = [r for r in rows if r["env_key"] == env_key]
    return to_dataset(rows)
