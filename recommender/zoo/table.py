"""The zoo run as a tidy table (one measurement per row), written as CSV and Parquet."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from recommender.zoo.models import ModelOutcome, ZooRun

COLUMNS = ["model", "status", "framework", "profile", "metric", "value", "text", "unit", "detail"]


Row = dict[str, Any]


def _row(
    m: str, status: str, fw: str, prof: str, metric: str, value: Any, unit: str, detail: str = ""
) -> Row:
    text = value if isinstance(value, str) else ""
    number = None if isinstance(value, str) or value is None else float(value)
    row = [m, status, fw, prof, metric, number, text, unit, detail]
    return dict(zip(COLUMNS, row, strict=True))


def _model_rows(o: ModelOutcome) -> list[Row]:
    """The model's own facts: size, machine peak, the b=1 verdicts."""
    rows = [
        _row(o.model, o.status, "", "", "params", o.params, "count"),
        _row(o.model, o.status, "", "", "flops_per_sample", o.flops, "FLOP"),
        _row(o.model, o.status, "", "", "machine_peak", o.machine_peak_gflops, "GFLOP/s"),
    ]
    for name, tv in (("verdict_default_b1", o.naive), ("verdict_tuned_b1", o.tuned)):
        if tv is not None:  # the winner (or "tie"); the ratio and settings in detail
            ratio = f"{tv.ratio:.3f}x; " if tv.ratio else ""
            rows.append(
                _row(o.model, o.status, "", "", name, tv.winner or "none", "", ratio + tv.note)
            )
    flipped = "yes" if o.flipped else "no"
    rows.append(_row(o.model, o.status, "", "", "tuning_flipped", flipped, ""))
    return rows


def _framework_rows(o: ModelOutcome) -> list[Row]:
    """Per framework: latency, speedup, throughput, memory, efficiency, trial counts."""
    rows = []
    for r in o.frameworks:
        for metric, value, unit, detail in (
            ("latency_default_b1", r.default_ms, "ms", "default settings"),
            ("latency_tuned_b1", r.tuned_ms, "ms", r.tuned_settings or ""),
            ("latency_tuned_b1_iqr", r.tuned_iqr_ms, "ms", ""),
            ("speedup_tuned_over_default", r.speedup, "x", ""),
            ("throughput_tuned", r.throughput_sps, "samples/s", f"batch {r.throughput_batch}"),
            ("peak_memory_tuned_b1", r.peak_memory_mb, "MB", "above baseline"),
            ("efficiency", r.efficiency, "fraction of peak", f"batch {r.throughput_batch}"),
            ("trials_at_starts_b1", r.start_trials, "count", "default, informed, warm"),
            ("trials_searched_b1", r.explored_trials, "count", "chosen by the sampler"),
        ):
            rows.append(_row(o.model, o.status, r.framework, "", metric, value, unit, detail))
    return rows


def _verdict_rows(o: ModelOutcome) -> list[Row]:
    """Exports, the verdict per profile with its caveats, and probe failures."""
    m, st = o.model, o.status
    rows = [
        _row(m, st, c.framework, "", f"export_{c.target}", c.status, "", c.reason or "")
        for c in o.exports
    ]
    for v in o.verdicts:
        detail = f"confidence {v.confidence:.2f}, margin {v.margin:.3f}"
        rows.append(_row(m, st, v.leaning or "", v.profile, "verdict", v.choice, "", detail))
        rows += [_row(m, st, "", v.profile, "caveat", caveat, "") for caveat in v.caveats]
    rows += [_row(m, st, "", "", "probe_failure", None, "", f) for f in o.failures]
    return rows


def tidy_rows(run: ZooRun) -> list[Row]:
    """Long format: model, framework (or blank), profile (or blank), metric, and either a
    number (``value``) or a category (``text``: an export status, a verdict)."""
    rows: list[Row] = []
    for o in run.models:
        if o.status == "failed":
            rows.append(_row(o.model, o.status, "", "", "failure", None, "", o.reason or ""))
            continue
        rows += _model_rows(o) + _framework_rows(o) + _verdict_rows(o)
    for m, why in run.not_run.items():
        rows.append(_row(m, "not_run", "", "", "not_run", None, "", why))
    return rows


def write_tables(run: ZooRun, out: Path) -> list[Path]:
    """results.csv, results.parquet and results.json in ``out``."""
    rows = tidy_rows(run)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    schema = pa.schema([(c, pa.float64() if c == "value" else pa.string()) for c in COLUMNS])
    table = pa.table({c: [r[c] for r in rows] for c in COLUMNS}, schema=schema)
    pq.write_table(table, out / "results.parquet")
    (out / "results.json").write_text(run.model_dump_json(indent=1))
    return [out / "results.csv", out / "results.parquet", out / "results.json"]
