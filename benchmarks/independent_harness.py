"""Agreement with independent harnesses: our probe's median vs
torch.utils.benchmark.Timer.blocked_autorange (PyTorch) and timeit (TensorFlow),
same model, weights, input, threads. Target: within 5%.

Each case alternates the two harnesses ``--repeats`` times (fresh processes) and compares
the medians of the per-run medians, so drift between processes cannot pose as bias.

Run: .venv/bin/python benchmarks/independent_harness.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from probes.config import Settings
from probes.measure.timing import MeasureConfig
from probes.probe import Prober
from probes.protocol import InferWorkload
from probes.runners.local import SubprocessRunner
from probes.spec import resolve_spec

CASES = [("resnet18", 8, [3, 112, 112]), ("mlp", 32, None), ("bert_tiny", 4, None)]
TOOL = {"torch": "torch.utils.benchmark blocked_autorange", "tensorflow": "timeit"}


def independent(fw: str, model: str, batch: int, shape: list[int] | None) -> float:
    script = Path(__file__).with_name("_independent_worker.py")
    dims = [str(d) for d in shape] if shape else ["-"]
    argv = [sys.executable, str(script), fw, model, str(batch), *dims]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["median_s"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    repeats = ap.parse_args().repeats
    prober = Prober(SubprocessRunner(), measure=MeasureConfig(min_time_s=3.0))
    zoo = Settings().zoo_dir
    print(f"medians of {repeats} alternating fresh-process runs per harness\n")
    print(
        "| model | framework | ours (ms) | independent (ms) | tool | difference | "
        "ours run-to-run spread |"
    )
    print("|---|---|---:|---:|---|---:|---:|")
    for model, batch, shape in CASES:
        spec = resolve_spec(model, zoo)
        if shape:
            spec = spec.model_copy(
                update={"inputs": [spec.inputs[0].model_copy(update={"shape": shape})]}
            )
        for fw in ("torch", "tensorflow"):
            ours, refs = [], []
            for _ in range(repeats):
                r = prober.probe(spec, fw, InferWorkload(batch=batch))
                assert r.measurement and r.measurement.timing, r.reason
                ours.append(r.measurement.timing.median_s)
                refs.append(independent(fw, model, batch, shape))
            o, ref = statistics.median(ours), statistics.median(refs)
            spread = (max(ours) - min(ours)) / o
            print(
                f"| {model} b{batch} | {fw} | {o * 1e3:.3f} | {ref * 1e3:.3f} | {TOOL[fw]} "
                f"| {100 * (o - ref) / ref:+.1f}% | {100 * spread:.1f}% |",
                flush=True,
            )


if __name__ == "__main__":
    main()
