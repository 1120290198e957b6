"""Repeatability: three fresh-process repeats of the same probe; CV of the medians.

Cases: resnet18 inference (batch 8, 112x112) and the MLP (batch 32), in both
frameworks with default settings. Target: CV <= 3% on 2 shared cores.

Run: .venv/bin/python benchmarks/repeatability.py [--repeats 3] [--min-time 2]
"""

from __future__ import annotations

import argparse
import statistics

from probes.config import Settings
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import FRAMEWORKS, InferWorkload
from probes.runners.local import SubprocessRunner
from probes.spec import ModelSpec, resolve_spec


def resized(spec: ModelSpec, shape: list[int]) -> ModelSpec:
    inp = spec.inputs[0].model_copy(update={"shape": shape})
    return spec.model_copy(update={"inputs": [inp]})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=2.0)
    args = ap.parse_args()
    zoo = Settings().zoo_dir
    cases = [
        ("resnet18 b8 112x112", resized(resolve_spec("resnet18", zoo), [3, 112, 112]), 8),
        ("mlp b32", resolve_spec("mlp", zoo), 32),
    ]
    prober = Prober(SubprocessRunner(), measure=MeasureConfig(min_time_s=args.min_time))
    print(f"{args.repeats} fresh processes per row, min {args.min_time} s timed loop each\n")
    print("| case | framework | medians (ms) | CV of medians | within-run IQR/median |")
    print("|---|---|---|---:|---:|")
    for label, spec, batch in cases:
        for fw in FRAMEWORKS:
            meds, iqrs = [], []
            for _ in range(args.repeats):
                r = prober.probe(spec, fw, InferWorkload(batch=batch))
                assert r.status == "ok" and r.measurement and r.measurement.timing, r.reason
                t = r.measurement.timing
                meds.append(t.median_s)
                iqrs.append(t.iqr_s / t.median_s)
            cv = statistics.stdev(meds) / statistics.mean(meds)
            print(
                f"| {label} | {fw} | {', '.join(f'{m * 1e3:.3f}' for m in meds)} | "
                f"{100 * cv:.2f}% | {100 * statistics.median(iqrs):.1f}% |",
                flush=True,
            )


if __name__ == "__main__":
    main()
