"""What this machine's full-model measurements add to the per-operator sum: a small
whole-model correction per configuration, conformal interval scales, the memory refit
and the torch/TensorFlow error correlation.

Scores are leave-one-model-out: each model's rows are predicted with the correction
fitted on the other models, so the interval describes a new model, not a re-measured one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from probes.calibrate.grid import CONFIGS, DEFAULT_CONFIGS
from probes.settings import TFSettings, TorchSettings
from probes.spec import (
    ModelSpec,
    SpecGraph,
    analyze,
    build_graph,
    resolve_spec,
    spec_hash,
    zoo_names,
)
from probes.store import ResultStore
from recommender.predictor.answers import Z80
from recommender.predictor.calibrated import CalibratedPredictor
from recommender.predictor.memory import PRIORS, fit_memory
from recommender.predictor.sizefit import MAX_LOG_FACTOR, SizeCorrection, fit_size_correction

MIN_MODELS = 5  # conformal scales need this many distinct held-out models
COVERAGE = 0.8
STALL = 3.0  # see stalled_rows
MAX_SCALE = 6.0


@dataclass(frozen=True)
class FullRow:
    model: str  # the leave-one-out group: a model family
    graph: SpecGraph
    framework: str
    key: str  # calibrated configuration
    batch: int
    latency_s: float
    peak_bytes: float | None = None
    baseline_bytes: float | None = None
    contended: bool = False  # the probe's contention reading flagged its timed loop
    repeats: tuple[float, ...] = ()  # every measurement, when the question has several


def config_key(settings: dict[str, object]) -> str | None:
    for key, s in CONFIGS.items():
        if s.model_dump(mode="json") == {**s.model_dump(mode="json"), **settings} and (
            s.framework == settings.get("framework")
        ):
            return key
    return None


def zoo_graphs(zoo_dir: Path) -> dict[str, tuple[str, SpecGraph]]:
    """Spec hash -> (model, graph) for every zoo model at every size."""
    out: dict[str, tuple[str, SpecGraph]] = {}
    for name in zoo_names(zoo_dir):
        spec = resolve_spec(name, zoo_dir)
        for size in ("default", *spec.sizes):
            s = spec.resized(size)
            out[spec_hash(s)] = (name, build_graph(s))
    return out


def store_rows(
    store: ResultStore, env_key: str, known: dict[str, tuple[str, SpecGraph]], stat: str = "median"
) -> list[FullRow]:
    """This machine's stored fp32 inference results of known specs in a calibrated
    configuration, one row per question; ``stat``: the timing's median or min. A
    question measured more than once (other seeds, repeated rounds) gets the median
    over its measurements: one probe that waited for the CPU does not make the row."""
    groups: dict[tuple[str, str, int], list[FullRow]] = {}
    for r in store.query(kind="infer", env_key=env_key):
        m = r.result.measurement
        key = config_key(r.settings)
        batch = r.workload.get("batch")
        if r.spec_hash not in known or key is None or m is None or m.timing is None:
            continue
        if not isinstance(batch, int):
            continue
        model, graph = known[r.spec_hash]
        groups.setdefault((r.spec_hash, key, batch), []).append(
            FullRow(
                model=model,
                graph=graph,
                framework=r.framework,
                key=key,
                batch=batch,
                latency_s=m.timing.min_s if stat == "min" else m.timing.median_s,
                peak_bytes=float(m.memory.peak_rss_bytes) if m.memory else None,
                baseline_bytes=float(m.memory.baseline_rss_bytes) if m.memory else None,
                contended=bool(m.contention and m.contention.flagged),
            )
        )
    return [_median_row(g) for g in groups.values()]


def _median_row(group: list[FullRow]) -> FullRow:
    if len(group) == 1:
        return group[0]

    def median(xs: list[float]) -> float | None:
        return float(np.median(xs)) if xs else None

    lat = [r.latency_s for r in group]
    return replace(
        group[0],
        latency_s=float(np.median(lat)),
        peak_bytes=median([r.peak_bytes for r in group if r.peak_bytes is not None]),
        baseline_bytes=median([r.baseline_bytes for r in group if r.baseline_bytes is not None]),
        contended=2 * sum(r.contended for r in group) > len(group),
        repeats=tuple(lat),
    )


def stalled_rows(rows: list[FullRow]) -> set[int]:
    """Indices of rows at all threads ``STALL`` x slower than the same question at one
    thread: on an idle machine more threads are not that much slower, so the probe
    waited for a descheduled thread (a shared machine) and says nothing of the model."""
    one = {(id(r.graph), r.batch, r.framework): r.latency_s for r in rows if r.key.endswith("-t1")}
    return {
        i
        for i, r in enumerate(rows)
        if r.key in ("torch/eager", "tensorflow/function")
        and (t := one.get((id(r.graph), r.batch, r.framework))) is not None
        and r.latency_s > STALL * t
    }


Raw = dict[int, tuple[float, float, float]]


def _raw(pred: CalibratedPredictor, rows: Iterable[FullRow]) -> Raw:
    """Per row index: ln(measured / summed prediction), the sum's log sigma, and the
    log of the sum."""
    out = {}
    for i, r in enumerate(rows):
        p = pred.priced(r.graph, r.key, r.batch)
        out[i] = (math.log(r.latency_s / p.latency_s), p.log_sigma, math.log(p.latency_s))
    return out


def _corrections(rows: list[FullRow], raw: Raw, skip: str | None) -> dict[str, SizeCorrection]:
    by: dict[str, tuple[list[float], list[float], list[str]]] = {}
    for i, r in enumerate(rows):
        if r.model != skip:
            xs, ys, ms = by.setdefault(r.key, ([], [], []))
            xs.append(raw[i][2])
            ys.append(raw[i][0])
            ms.append(r.model)
    return {k: fit_size_correction(xs, ys, ms) for k, (xs, ys, ms) in by.items()}


def _held_error(raw: tuple[float, float, float], corr: SizeCorrection | None) -> float:
    return raw[0] - (corr.log_factor(math.exp(raw[2])) if corr else 0.0)


def fit_corrections(pred: CalibratedPredictor, rows: list[FullRow]) -> CalibratedPredictor:
    """Set the correction, conformal scales, memory and error correlation in place."""
    stalled = stalled_rows(rows)
    rows = [r for i, r in enumerate(rows) if i not in stalled and r.key in pred.models]
    if not rows:
        return pred
    raw = _raw(pred, rows)
    spans: dict[str, list[float]] = {}
    for i, r in enumerate(rows):
        spans.setdefault(r.key, []).append(raw[i][2])
    _set_correction(pred, _corrections(rows, raw, None), spans)
    pred.full_models = len({r.model for r in rows})
    held: dict[int, float] = {}
    for model in {r.model for r in rows}:
        corr = _corrections(rows, raw, model)
        for i, r in enumerate(rows):
            if r.model == model:
                held[i] = _held_error(raw[i], corr.get(r.key))
    for fw in ("torch", "tensorflow"):
        idx = [i for i, r in enumerate(rows) if r.framework == fw]
        _set_scale(pred, fw, rows, idx, held, raw)
        for key in sorted({rows[i].key for i in idx}):
            fitted = fit_memory(PRIORS[fw], _memory_rows(rows, idx, key))
            if fitted.fitted_on:  # too few rows: the key falls back to its framework's
                pred.memory[key] = fitted
        default = next((d for d in DEFAULT_CONFIGS if d.startswith(fw + "/")), None)
        if default in pred.memory:  # what a key without its own fit uses
            pred.memory[fw] = pred.memory[default]
    pred.error_correlation["latency"] = _pair_correlation(rows, held)
    return pred


def _memory_rows(
    rows: list[FullRow], idx: list[int], key: str
) -> list[tuple[float, float, float, float]]:
    """One configuration's (weight bytes, activation bytes x batch, peak, baseline).
    Per configuration, not per framework: an XLA or torch.compile peak holds the
    compiler's state, and pooling them with the defaults tripled the default error
    (memory MAPE 74% pooled, 20% per configuration, docs/benchmarks.md)."""
    return [
        (
            float(analyze(rows[i].graph).weight_bytes),
            float(analyze(rows[i].graph).activation_bytes_per_sample * rows[i].batch),
            peak,
            base,
        )
        for i in idx
        if rows[i].key == key
        and (peak := rows[i].peak_bytes) is not None
        and (base := rows[i].baseline_bytes) is not None
    ]


def _set_correction(
    pred: CalibratedPredictor, fitted: dict[str, SizeCorrection], spans: dict[str, list[float]]
) -> None:
    """``spans``: per configuration, the log sums of the rows it was fitted on; the
    answer says so when the correction is capped anywhere among them."""
    pred.correction = fitted
    for key, c in fitted.items():
        ends = [c.offset + c.slope * (x - c.center) for x in spans.get(key, [c.center])]
        worst = max(ends, key=abs)
        if abs(worst) > MAX_LOG_FACTOR:
            pred.warnings[key] = (
                f"this machine's full-model measurements in {key} run up to "
                f"{math.exp(worst):.3g}x the per-operator sum (the correction is capped "
                f"at {math.exp(MAX_LOG_FACTOR):g}x): a busy machine, or a calibration to redo"
            )


def _set_scale(
    pred: CalibratedPredictor,
    fw: str,
    rows: list[FullRow],
    idx: list[int],
    held: dict[int, float],
    raw: Raw,
) -> None:
    """The conformal scale of ``fw``'s configurations, from its held-out scores."""
    if len({rows[i].model for i in idx}) < MIN_MODELS:
        return
    scores = sorted(abs(held[i]) / (Z80 * raw[i][1]) for i in idx)
    n = len(scores)
    q = scores[min(n - 1, math.ceil((n + 1) * COVERAGE) - 1)]
    for key in CONFIGS:
        if key.startswith(fw + "/"):
            pred.scale[key] = min(max(q, 0.5), MAX_SCALE)


def _pair_correlation(rows: list[FullRow], held: dict[int, float]) -> float:
    by: dict[tuple[int, int, str], float] = {}
    for i, r in enumerate(rows):
        if r.key in ("torch/eager", "tensorflow/function"):
            by[(id(r.graph), r.batch, r.framework)] = held[i]
    pairs = [
        (v, by[(g, b, "tensorflow")])
        for (g, b, fw), v in by.items()
        if fw == "torch" and (g, b, "tensorflow") in by
    ]
    if len(pairs) < 5:
        return 0.0
    a = np.array(pairs)
    c = float(np.corrcoef(a[:, 0], a[:, 1])[0, 1])
    return c if math.isfinite(c) else 0.0


def specs_graphs(specs: Iterable[tuple[str, ModelSpec]]) -> dict[str, tuple[str, SpecGraph]]:
    return {spec_hash(s): (family, build_graph(s)) for family, s in specs}


__all__ = ["FullRow", "TFSettings", "TorchSettings", "fit_corrections", "store_rows", "zoo_graphs"]
