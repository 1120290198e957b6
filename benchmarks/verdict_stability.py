"""Verdict stability: the same measure-mode recommendation, asked again and again.

Each run is a fresh data dir (no stored results, no studies), so every answer is measured
from scratch. Runs alternate quiet / loaded: a loaded run has a bounded background
process spinning on one core for as long as the run lasts. Answers are appended to a
JSON-lines file as they come, so an interrupted run resumes where it stopped.

Prints, over all (model, profile) groups:
- the flip rate: pairs of runs of one group with opposite framework answers
  ("either" is never a flip), and the pairs where either side stated >= 90%;
- the share of "either" answers;
- loaded answers opposite to the quiet runs' majority at >= 90% confidence;
- calibration: stated confidence against agreement of the leaning with the group's
  majority leaning, in bins;
- wall time per answer.

Run: .venv/bin/python benchmarks/verdict_stability.py [--models lenet5] [--runs 4]
     [--profiles mobile,browser,research,server-gpu] [--trials 4] [--json]
Default: lenet5, the four example profiles, 4 runs each (about 30 min on 2 quiet cores).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from probes.config import REPO_DATA, Settings
from probes.runners.warm import POOL
from probes.spec import resolve_spec
from recommender.questionnaire import load_answers
from recommender.recommend import recommend

SPIN = "import time\nend = time.time() + {s}\nwhile time.time() < end:\n    pass\n"
BINS = [(0.0, 0.6), (0.6, 0.8), (0.8, 0.9), (0.9, 0.99), (0.99, 1.01)]


def one_answer(model: str, profile: str, trials: int, loaded: bool) -> dict[str, Any]:
    """One answer as a new CLI process would give it: a fresh data dir and new warm
    workers (workers kept from the previous answer would tie the two together)."""
    name, _, size = model.partition(":")
    spec = resolve_spec(name, REPO_DATA / "zoo").resized(size or None)
    POOL.close_all()
    answers = load_answers(REPO_DATA / "examples" / f"{profile}.yaml")
    load = None
    if loaded:  # bounded: it ends by itself even if this process dies
        load = subprocess.Popen([sys.executable, "-c", SPIN.format(s=1800)])
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as d:
            rec = recommend(
                spec, answers, "measure", settings=Settings(data_dir=Path(d)), trials=trials
            )
    finally:
        if load is not None:
            load.kill()
            load.wait()
    return {
        "model": model,
        "profile": profile,
        "loaded": loaded,
        "choice": rec.choice,
        "leaning": rec.leaning,
        "confidence": rec.confidence,
        "margin": rec.margin,
        "assumed": rec.assumed,
        "latency_ratio": rec.latency_ratio.model_dump() if rec.latency_ratio else None,
        "speed_unknown": not rec.speed_compared,
        "candidates": {
            fw: [
                {
                    "label": o.label,
                    "origin": o.origin,
                    "latency_source": o.infer.source if o.infer else None,
                    "contended_rounds": o.contended_rounds,
                }
                for o in f.options
            ]
            for fw, f in rec.evidence.frameworks.items()
        },
        "wall_s": time.perf_counter() - start,
        # 1-min load average before and after: other work on the machine, reported as is
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def _majority(rows: list[dict[str, Any]]) -> str | None:
    votes = Counter(r["leaning"] for r in rows if r["leaning"])
    return votes.most_common(1)[0][0] if votes else None


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["profile"]), []).append(r)
    pairs = flips = sure_flips = loaded_wrong = 0
    for group in groups.values():
        for a, b in itertools.combinations(group, 2):
            pairs += 1
            fw = {"torch", "tensorflow"}
            if a["choice"] in fw and b["choice"] in fw and a["choice"] != b["choice"]:
                flips += 1
                sure_flips += max(a["confidence"], b["confidence"]) >= 0.9
        quiet = _majority([r for r in group if not r["loaded"]])
        loaded_wrong += sum(
            1
            for r in group
            if r["loaded"]
            and quiet
            and r["choice"] not in (quiet, "either", "neither")
            and r["confidence"] >= 0.9
        )
    calibration = []
    for lo, hi in BINS:
        inside = [
            (r, _majority(groups[r["model"], r["profile"]]))
            for r in rows
            if lo <= r["confidence"] < hi and r["leaning"]
        ]
        agree = sum(r["leaning"] == m for r, m in inside)
        calibration.append(
            {
                "bin": f"{lo:.2f}-{min(hi, 1.0):.2f}",
                "answers": len(inside),
                "mean_confidence": statistics.fmean(r["confidence"] for r, _ in inside)
                if inside
                else None,
                "agreement": agree / len(inside) if inside else None,
            }
        )
    walls: dict[str, list[float]] = {}
    for r in rows:
        walls.setdefault(r["model"], []).append(r["wall_s"])
    return {
        "answers": len(rows),
        "pairs": pairs,
        "flips": flips,
        "flip_rate": flips / pairs if pairs else None,
        "flips_at_90": sure_flips,
        "either_share": sum(r["choice"] == "either" for r in rows) / len(rows) if rows else None,
        "speed_unknown": {
            kind: sum(bool(r.get("speed_unknown")) for r in rows if r["loaded"] == loaded)
            for kind, loaded in (("quiet", False), ("loaded", True))
        },
        "loaded_opposite_at_90": loaded_wrong,
        "calibration": calibration,
        "wall_s_median": {m: statistics.median(w) for m, w in walls.items()},
        "groups": {
            f"{m}/{p}": [f"{r['choice']} {r['confidence']:.0%}" for r in g]
            for (m, p), g in groups.items()
        },
    }


def print_text(s: dict[str, Any]) -> None:
    print(f"{s['answers']} answers, {s['pairs']} pairs of identical questions")
    print(f"flips: {s['flips']} (rate {s['flip_rate'] or 0:.1%}); at >= 90%: {s['flips_at_90']}")
    print(f"'either': {s['either_share'] or 0:.0%} of answers")
    print(f"loaded runs opposite to the quiet majority at >= 90%: {s['loaded_opposite_at_90']}")
    blind = s["speed_unknown"]
    print(f"speed not compared (machine busy): {blind['quiet']} quiet, {blind['loaded']} loaded")
    print("| stated confidence | answers | mean stated | agree with majority |")
    print("|---|---:|---:|---:|")
    for b in s["calibration"]:
        mean = "-" if b["mean_confidence"] is None else f"{b['mean_confidence']:.0%}"
        agree = "-" if b["agreement"] is None else f"{b['agreement']:.0%}"
        print(f"| {b['bin']} | {b['answers']} | {mean} | {agree} |")
    for m, w in s["wall_s_median"].items():
        print(f"wall per answer, {m}: median {w:.0f} s")
    for g, answers in s["groups"].items():
        print(f"  {g}: {', '.join(answers)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="lenet5", help="comma list, NAME[:SIZE]")
    ap.add_argument("--profiles", default="mobile,browser,research,server-gpu")
    ap.add_argument("--runs", type=int, default=4, help="per (model, profile); half loaded")
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path("var/verdict_stability.jsonl"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(x) for x in args.out.read_text().splitlines()] if args.out.exists() else []
    have = Counter((r["model"], r["profile"]) for r in done)
    for run in range(args.runs):  # run-major: every group advances before any repeats
        for model in args.models.split(","):
            for profile in args.profiles.split(","):
                if have[model, profile] > run:
                    continue
                row = one_answer(model, profile, args.trials, loaded=run % 2 == 1)
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                done.append(row)
                if not args.json:
                    print(
                        f"{model}/{profile} run {run + 1}{' (loaded)' if row['loaded'] else ''}:"
                        f" {row['choice']} {row['confidence']:.0%} in {row['wall_s']:.0f} s"
                        + (" (speed not compared)" if row["speed_unknown"] else ""),
                        flush=True,
                    )
    s = summarize(done)
    print(json.dumps(s, indent=2) if args.json else "")
    if not args.json:
        print_text(s)


if __name__ == "__main__":
    main()
