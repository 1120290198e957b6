"""Regenerates data/datasets/predictor_train.csv, the performance predictor's training set.

1. ``--measure`` probes the zoo (inference, both frameworks, sizes small and default,
   several batches, default settings and a few variants) through the results store, so
   a rerun only measures what is missing. Jobs run in priority order (default settings
   first) until ``--budget-min`` is spent. Run it on an otherwise idle machine.
2. Every stored inference result of a zoo spec (any size, any settings, any machine)
   that this script's measurement method produced is exported to the CSV, the newest
   per question (``--any-method``: whatever method). Spec hashes map back to zoo models.

Run: .venv/bin/python scripts/predictor_dataset.py [--measure] [--budget-min 15] [--dry-run]
     [--store var/results.sqlite] [--out data/datasets/predictor_train.csv]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter

from probes.measure.environment import environment
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import Framework, InferWorkload, ProbeLimits
from probes.runners.local import SubprocessRunner
from probes.settings import FrameworkSettings, TFSettings, TorchSettings, default_settings
from probes.spec import ModelSpec, analyze, build_graph, resolve_spec, spec_hash, zoo_names
from probes.store import ResultStore, StoredResult, result_key
from recommender.predictor.dataset import DEFAULT_DATASET, settings_to_fields, write_rows
from recommender.predictor.features import spec_stats

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "data" / "zoo"
STORE = ROOT / "var" / "results.sqlite"
METHOD = MeasureConfig(min_time_s=0.3, max_warmup_s=3.0)
BATCHES = (1, 8, 32)
# Skip calls above this many FLOPs (batch x per-sample): ~0.2-0.5 s per call here, so
# vgg16 and resnet50 at full size are measured at small batches only.
WORK_CAP = 3e10
VARIANT_WORK_CAP = 1e10


@dataclass(frozen=True)
class Job:
    model: str
    size: str
    spec: ModelSpec
    framework: Framework
    batch: int
    settings: TorchSettings | TFSettings
    tag: str


def zoo_specs() -> dict[str, tuple[str, str, ModelSpec]]:
    """spec hash -> (model, size, spec), for every zoo model at every size."""
    out: dict[str, tuple[str, str, ModelSpec]] = {}
    for name in zoo_names(ZOO):
        base = resolve_spec(name, ZOO)
        for size in ["default", *sorted(base.sizes)]:
            spec = base.resized(size)
            out.setdefault(spec_hash(spec), (name, size, spec))  # same shape: "default"
    return out


VARIANTS: tuple[tuple[str, tuple[Framework, ...], dict[str, object], tuple[int, ...]], ...] = (
    ("threads=1", ("torch", "tensorflow"), {"intra_threads": 1}, (1, 8)),
    ("bf16", ("torch", "tensorflow"), {"precision": "bf16"}, (1, 8)),
    ("tf.mode=eager", ("tensorflow",), {"mode": "eager"}, (1, 8)),
    ("tf.mode=xla", ("tensorflow",), {"mode": "xla"}, (1, 8)),
    ("torch.mode=compile", ("torch",), {"mode": "compile"}, (8,)),
)


def _default_jobs(specs: list[tuple[str, str, ModelSpec]], work: dict[str, int]) -> list[Job]:
    jobs: list[Job] = []
    for model, size, spec in specs:
        for b in BATCHES:
            if work[spec_hash(spec)] * b > WORK_CAP:
                continue
            for fw in ("torch", "tensorflow"):
                jobs.append(Job(model, size, spec, fw, b, default_settings(fw), "default"))
    return jobs


def _variant_jobs(
    specs: list[tuple[str, str, ModelSpec]], work: dict[str, int], full: bool
) -> list[Job]:
    """Every variant at each model's smallest size (or, with ``full``, its larger ones)."""
    have = {(m, s) for m, s, _ in specs}
    jobs: list[Job] = []
    for tag, fws, change, batches in VARIANTS:
        for model, size, spec in specs:
            big = size != "small" and (model, "small") in have
            if big != full:
                continue
            if tag.startswith("torch.mode") and (big or len(spec.nodes) > 40):
                continue  # Inductor compiles for 10-60 s per model
            for b in batches:
                if work[spec_hash(spec)] * b <= VARIANT_WORK_CAP:
                    jobs += [Job(model, size, spec, fw, b, _changed(fw, change), tag) for fw in fws]
    return jobs


def _changed(fw: Framework, change: dict[str, object]) -> TorchSettings | TFSettings:
    return default_settings(fw).model_copy(update=change)


def plan() -> list[Job]:
    """Default settings first (every batch under WORK_CAP), then every variant at each
    model's smallest size, then the variants at full size: a run cut short by its
    budget still covers every variant."""
    specs = sorted(zoo_specs().values(), key=lambda t: (t[0], t[1] != "small"))
    work = {h: analyze(build_graph(s)).flops for h, (_, _, s) in zoo_specs().items()}
    return (
        _default_jobs(specs, work)
        + _variant_jobs(specs, work, full=False)
        + _variant_jobs(specs, work, full=True)
    )


def measure(jobs: list[Job], budget_s: float, store: ResultStore) -> None:
    prober = Prober(
        SubprocessRunner(timeout_s=300),
        store,
        METHOD,
        ProbeLimits(timeout_s=300),
    )
    start = time.monotonic()
    for i, j in enumerate(jobs, start=1):
        spent = time.monotonic() - start
        if spent > budget_s:
            print(f"budget spent after {i - 1}/{len(jobs)} jobs", file=sys.stderr)
            break
        before = prober.from_store
        r = prober.probe(j.spec, j.framework, InferWorkload(batch=j.batch), j.settings)
        med = r.measurement.timing.median_s if r.measurement and r.measurement.timing else None
        where = "stored" if prober.from_store > before else f"{r.wall_s or 0:.1f}s"
        print(
            f"[{i}/{len(jobs)} {spent:5.0f}s] {j.model}/{j.size} {j.framework} b={j.batch} "
            f"{j.tag}: {r.status} {'' if med is None else f'{med * 1e3:.3f} ms'} ({where})"
            + (f" {r.reason}" if r.reason else ""),
            file=sys.stderr,
            flush=True,
        )
    print(f"measuring took {time.monotonic() - start:.0f} s", file=sys.stderr)


def same_method(sr: StoredResult, spec: ModelSpec) -> bool:
    """Was this result measured by ``METHOD`` (seed 0, CPU)? Its store key says so."""
    s: TorchSettings | TFSettings = TypeAdapter(FrameworkSettings).validate_python(sr.settings)
    workload = InferWorkload.model_validate(sr.workload)
    method = METHOD.model_copy(update={"stop_above_s": None})
    return sr.key == result_key(spec, sr.framework, workload, s, "cpu", "0", method, sr.env_key)


def export_rows(store: ResultStore, any_method: bool = False) -> list[dict[str, str]]:
    """The newest stored infer result per question, for zoo specs only, measured by
    ``METHOD`` unless ``any_method`` (tuning trials use other methods, and may have
    run on a busy machine)."""
    specs = zoo_specs()
    stats = {h: spec_stats(build_graph(s)) for h, (_, _, s) in specs.items()}
    env = environment()
    seen: set[tuple[str, ...]] = set()
    rows: list[dict[str, str]] = []
    for sr in store.query(kind="infer"):  # newest first
        r = sr.result
        m = r.measurement
        if sr.spec_hash not in specs or r.status != "ok" or m is None or m.timing is None:
            continue
        if m.timing.stopped_early or m.memory is None:
            continue
        if not any_method and not same_method(sr, specs[sr.spec_hash][2]):
            continue
        question = (sr.spec_hash, sr.framework, str(sr.workload), str(sr.settings), sr.env_key)
        if question in seen:
            continue
        seen.add(question)
        cpu = env.cpu_model if sr.env_key == env.key() else ""
        rows.append(_row(sr, specs[sr.spec_hash][:2], stats[sr.spec_hash], cpu))
    rows.sort(
        key=lambda d: (d["model"], d["size"], d["framework"], int(d["batch"]), d["settings_label"])
    )
    return rows


def _row(
    sr: StoredResult, model_size: tuple[str, str], stats: dict[str, float], cpu_model: str
) -> dict[str, str]:
    m = sr.result.measurement
    assert m is not None and m.timing is not None and m.memory is not None
    s: TorchSettings | TFSettings = TypeAdapter(FrameworkSettings).validate_python(sr.settings)
    threads = m.runtime.get("intra_threads") or str(s.intra_threads or "")
    return {
        "model": model_size[0],
        "size": model_size[1],
        "spec_hash": sr.spec_hash,
        "framework": sr.framework,
        "batch": str(sr.workload.get("batch", 1)),
        "settings_label": m.settings_label,
        "threads": threads,
        **settings_to_fields(s),
        **{k: repr(v) for k, v in stats.items()},
        "median_s": repr(m.timing.median_s),
        "iqr_s": repr(m.timing.iqr_s),
        "noisy": str(m.timing.noisy),
        "peak_rss_bytes": str(m.memory.peak_rss_bytes),
        "baseline_rss_bytes": str(m.memory.baseline_rss_bytes),
        "group_peak_rss_bytes": str(sr.result.peak_group_rss_bytes or ""),
        "env_key": sr.env_key,
        "cpu_model": cpu_model,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure", action="store_true", help="probe the zoo first")
    ap.add_argument("--budget-min", type=float, default=15.0, help="measuring wall budget")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    ap.add_argument("--store", type=Path, default=STORE, help="results store (SQLite)")
    ap.add_argument("--out", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--any-method", action="store_true", help="export every method's results")
    args = ap.parse_args()
    jobs = plan()
    if args.dry_run:
        for j in jobs:
            print(j.model, j.size, j.framework, j.batch, j.tag)
        print(f"{len(jobs)} jobs", file=sys.stderr)
        return
    store = ResultStore(args.store)
    if args.measure:
        measure(jobs, args.budget_min * 60, store)
    rows = export_rows(store, args.any_method)
    write_rows(args.out, rows)
    print(f"wrote {len(rows)} rows to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
