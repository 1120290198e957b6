"""Parity and cost of every zoo model: params, FLOPs, max |diff| between frameworks, wall time.

Run: .venv/bin/python benchmarks/parity_zoo.py [--size small|default] [--mode forward|train]
Prints a Markdown table (the one in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import platform
import time

from probes.checks.parity import check_parity
from probes.config import Settings
from probes.runners.local import SubprocessRunner
from probes.spec import analyze, build_graph, resolve_spec, zoo_names


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="default")
    ap.add_argument("--mode", choices=["forward", "train_step"], default="forward")
    ap.add_argument("--batch", type=int, default=2)
    args = ap.parse_args()
    settings = Settings()
    runner = SubprocessRunner(timeout_s=settings.probe_timeout_s)
    print(
        f"size={args.size} mode={args.mode} batch={args.batch} "
        f"python={platform.python_version()} machine={platform.machine()}\n"
    )
    print(
        "| model | input | params | FLOPs/sample | max abs diff | max rel diff | parity | wall s |"
    )
    print("|---|---|---:|---:|---:|---:|---|---:|")
    start = time.perf_counter()
    for name in zoo_names(settings.zoo_dir):
        spec = resolve_spec(name, settings.zoo_dir).resized(args.size)
        a = analyze(build_graph(spec))
        r = check_parity(spec, runner, batch=args.batch, mode=args.mode)
        shape = ", ".join(f"{k} {v}" for k, v in a.input_shapes.items())
        print(
            f"| {name} | {shape} | {a.params:,} | {a.flops:,} | {r.max_abs_diff:.2e} | "
            f"{r.max_rel_diff:.2e} | {'pass' if r.passed else 'FAIL'} | {r.wall_s:.1f} |",
            flush=True,
        )
    print(f"\ntotal wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
