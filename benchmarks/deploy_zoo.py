"""Export every zoo model to every target in both frameworks; print what verified.

Run: .venv/bin/python benchmarks/deploy_zoo.py [--size default|small] [--models a,b] [--fresh]
Prints one Markdown table per model (status, artifact size, latency in the target's
runtime at batch 1, max |diff| against the source model, conversion time), a summary,
and the one-row-per-model matrix that docs/benchmarks.md quotes.
Verified results are kept in var/results.sqlite, so a rerun only redoes failures.
"""

from __future__ import annotations

import argparse
import platform
import time

from probes.config import Settings
from probes.export.checks import NO_ROUTE, ExportCheck, check_exports
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import FRAMEWORKS, ProbeLimits
from probes.runners.local import SubprocessRunner
from probes.spec import resolve_spec, zoo_names
from probes.store import ResultStore


def cell(c: ExportCheck | None) -> str:
    if c is None:
        return ""
    if c.status == "unsupported":
        return "unsupported"
    if c.status == "failed":
        return f"**failed**: {c.reason}"
    size = (c.size_bytes or 0) / 2**20
    return (
        f"verified, {size:.1f} MB, {c.latency_ms:.3g} ms, diff {c.max_abs_diff:.0e}, "
        f"export {c.export_s:.0f} s"
    )


def compact(c: ExportCheck | None) -> str:
    """The docs/benchmarks.md cell: status, size, max |diff|, conversion time."""
    if c is None or c.status == "unsupported":
        return "-"
    if c.status == "failed":
        return "FAILED"
    return f"ok {(c.size_bytes or 0) / 2**20:.1f} MB, Δ{c.max_abs_diff:.0e}, {c.export_s:.0f} s"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="default")
    ap.add_argument("--models", default=None, help="comma list; default: the whole zoo")
    ap.add_argument("--timeout", type=float, default=900.0, help="per export, seconds")
    ap.add_argument("--fresh", action="store_true", help="re-measure stored results")
    args = ap.parse_args()
    settings = Settings()
    names = args.models.split(",") if args.models else zoo_names(settings.zoo_dir)
    prober = Prober(
        SubprocessRunner(timeout_s=args.timeout),
        ResultStore(settings.data_dir / "results.sqlite"),
        MeasureConfig(min_time_s=0.5, max_warmup_s=3.0),
        ProbeLimits(timeout_s=args.timeout, memory_mb=settings.export_memory_mb()),
        fresh=args.fresh,
    )
    print(f"size={args.size} batch=1 python={platform.python_version()}\n")
    summary, matrix = [], []
    targets = ("native", "onnx", "litert", "aot", "executorch")
    cols = [(fw, t) for fw in FRAMEWORKS for t in targets if (fw, t) not in NO_ROUTE]
    start = time.perf_counter()
    for name in names:
        spec = resolve_spec(name, settings.zoo_dir).resized(args.size)
        r = check_exports(spec, prober)
        print(f"### {name} ({r.wall_s:.0f} s, {r.from_store} from the store)\n")
        print("| target | torch | tensorflow |\n|---|---|---|")
        for t in r.targets:
            print(f"| {t} | {cell(r.cell('torch', t))} | {cell(r.cell('tensorflow', t))} |")
        print(flush=True)
        cells = [r.cell(fw, t) for fw, t in cols]
        matrix.append(f"| {name} | " + " | ".join(compact(c) for c in cells) + " |")
        for fw in FRAMEWORKS:
            ok = [c.target for c in r.checks if c.framework == fw and c.status == "verified"]
            bad = [c.target for c in r.checks if c.framework == fw and c.status == "failed"]
            summary.append(f"| {name} | {fw} | {', '.join(ok) or '-'} | {', '.join(bad) or '-'} |")
    print("| model | framework | verified | failed |\n|---|---|---|---|")
    print("\n".join(summary))
    print("\n| model | " + " | ".join(f"{fw} {t}" for fw, t in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    print("\n".join(matrix))
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
