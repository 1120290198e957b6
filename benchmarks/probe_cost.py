"""Cost of a probe: how much of each probe's wall time is spawn + import + build,
for every zoo model (inference, batch 1, default settings, both frameworks).

Run: .venv/bin/python benchmarks/probe_cost.py [--size small|default] [--min-time 1]
"""

from __future__ import annotations

import argparse

from probes.config import Settings
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import FRAMEWORKS, InferWorkload
from probes.runners.local import SubprocessRunner
from probes.spec import resolve_spec, zoo_names


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="default")
    ap.add_argument("--min-time", type=float, default=1.0)
    args = ap.parse_args()
    settings = Settings()
    prober = Prober(SubprocessRunner(), measure=MeasureConfig(min_time_s=args.min_time))
    print(f"size={args.size}, infer batch 1, min timed loop {args.min_time} s\n")
    print(
        "| model | framework | wall s | spawn s | import s | build s | first call s | "
        "warm-up + timed s | spawn+import+build share |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in zoo_names(settings.zoo_dir):
        spec = resolve_spec(name, settings.zoo_dir).resized(args.size)
        for fw in FRAMEWORKS:
            r = prober.probe(spec, fw, InferWorkload(batch=1))
            m = r.measurement
            if r.status != "ok" or m is None or r.wall_s is None:
                print(f"| {name} | {fw} | {r.status}: {r.reason} |")
                continue
            p = m.phases
            fixed = (p.spawn_to_main_s or 0) + p.import_s + p.build_s
            rest = r.wall_s - fixed - p.first_result_s
            print(
                f"| {name} | {fw} | {r.wall_s:.2f} | {p.spawn_to_main_s or 0:.2f} | "
                f"{p.import_s:.2f} | {p.build_s:.2f} | {p.first_result_s:.3f} | {rest:.2f} | "
                f"{100 * fixed / r.wall_s:.0f}% |",
                flush=True,
            )


if __name__ == "__main__":
    main()
