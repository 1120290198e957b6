"""How much a paired torch/TF ratio moves between answers, against what its rounds say.

A verdict's latency sigma comes from its own paired rounds (plus a between-answers
floor, ``BETWEEN_ANSWERS_LOG_SD``). If two answers minutes apart read the same two
configurations at ratios further apart than those rounds allow, the confidence is too
high. This benchmark asks the same question ``--answers`` times, each with new warm
workers and ``--rounds`` paired rounds over a fixed set of configurations that mixes
thread counts (1 and every core), and prints, for each torch x TF pair:

- the mean log ratio of each answer, and their standard deviation (between answers);
- the typical standard error one answer states (within);
- between / within: about 1 when the rounds explain the spread, above it when something
  that changes over minutes (the machine's neighbours, frequency, caches) moves the
  ratio, and whether the two configurations use the same number of threads.

Rows are appended to a JSON-lines file as they come: an interrupted run resumes.

Run: PYTHONPATH=. .venv/bin/python benchmarks/between_answers.py [--model gru_seq[:small]]
     [--batch 32] [--answers 6] [--rounds 3] [--gap 30] [--out F] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from probes.config import Settings
from probes.protocol import InferWorkload
from probes.runners.warm import POOL
from probes.settings import TFSettings, TorchSettings, cpu_budget
from probes.spec import resolve_spec
from probes.tune.confirm import Candidate, confirm, paired_ratio
from recommender.evidence.gatherer import MEASURE, Gatherer


def candidates() -> list[Candidate]:
    """Each framework's default, and one single-thread configuration of each."""
    cores = cpu_budget()
    return [
        Candidate(framework="torch", settings=TorchSettings(intra_threads=cores), origin="all"),
        Candidate(framework="torch", settings=TorchSettings(intra_threads=1), origin="t1"),
        Candidate(framework="tensorflow", settings=TFSettings(intra_threads=cores), origin="all"),
        Candidate(
            framework="tensorflow",
            settings=TFSettings(mode="xla", intra_threads=1, inter_threads=1),
            origin="t1",
        ),
    ]


def one_answer(args: argparse.Namespace) -> dict[str, Any]:
    """One set of paired rounds with new warm workers, on a fresh data dir."""
    POOL.close_all()
    with tempfile.TemporaryDirectory() as d:
        settings = Settings(data_dir=Path(d))
        name, _, size = args.model.partition(":")
        spec = resolve_spec(name, settings.zoo_dir).resized(size or None)
        prober = Gatherer(settings, "measure").prober()
        load, start = os.getloadavg()[0], time.perf_counter()
        conf = confirm(
            spec,
            prober,
            candidates(),
            InferWorkload(batch=args.batch),
            args.rounds,
            measure=MEASURE,
            extra=0,
        )
    POOL.close_all()
    pairs = {}
    for a, b in itertools.product(conf.of("torch"), conf.of("tensorflow")):
        pr = paired_ratio(a, b)
        if pr is not None:
            threads = (a.candidate.settings.intra_threads, b.candidate.settings.intra_threads)
            pairs[f"{pr.torch} / {pr.tensorflow}"] = {
                "log_mean": math.log(pr.ratio),
                "log_se": pr.log_se,
                "same_threads": threads[0] == threads[1],
                "flagged_rounds": pr.flagged_rounds,
            }
    return {
        "at": time.time(),
        "load_before": load,
        "wall_s": time.perf_counter() - start,
        "pairs": pairs,
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = sorted({k for r in rows for k in r["pairs"]})
    for name in names:
        got = [r["pairs"][name] for r in rows if name in r["pairs"]]
        if len(got) < 2:
            continue
        means = [g["log_mean"] for g in got]
        between = statistics.stdev(means)
        within = statistics.median(g["log_se"] for g in got)
        out[name] = {
            "answers": len(got),
            "ratios": [round(math.exp(m), 3) for m in means],
            "between_log_sd": between,
            "within_log_se": within,
            "between_over_within": between / within if within else None,
            "same_threads": got[0]["same_threads"],
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="gru_seq", help="NAME[:SIZE]")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--answers", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--gap", type=float, default=30.0, help="seconds between answers")
    ap.add_argument("--out", type=Path, default=None, help="JSON lines (resume state)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = args.out or Path(f"var/between_{args.model}_b{args.batch}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    for i in range(len(rows), args.answers):
        if i:
            time.sleep(args.gap)
        rows.append(one_answer(args))
        with out.open("a") as f:
            f.write(json.dumps(rows[-1]) + "\n")
        if not args.json:
            print(f"answer {i + 1}: {rows[-1]['wall_s']:.0f} s", flush=True)
    s = summarize(rows)
    if args.json:
        print(json.dumps(s, indent=2))
        return
    print(f"{args.model} batch {args.batch}, {args.rounds} rounds per answer")
    print("| pair (torch / TF) | same threads | answers | ratios | between sd | within se | b/w |")
    print("|---|---|---:|---|---:|---:|---:|")
    for name, v in s.items():
        bw = v["between_over_within"]
        print(
            f"| {name} | {'yes' if v['same_threads'] else 'no'} | {v['answers']} | "
            f"{', '.join(f'{x:.2f}' for x in v['ratios'])} | {v['between_log_sd']:.3f} | "
            f"{v['within_log_se']:.3f} | {'-' if bw is None else f'{bw:.1f}'} |"
        )


if __name__ == "__main__":
    main()
