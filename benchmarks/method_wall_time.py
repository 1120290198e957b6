"""Wall time of a measure-mode answer under two versions of the code, interleaved.

How much longer does an answer take after a change (e.g. the paired rounds of the trust
issue)? Absolute times taken minutes apart on a shared machine are not comparable, so
the two code trees answer the same question alternately (A B A B …, starting side
alternating per pair), each on a fresh data dir, and the result is the *paired* ratio
B / A per pair with its spread. Each tree is a checkout (``git worktree add --detach
/tmp/base <commit>``); the answer runs as ``python -m service.cli.main`` with that tree
first on PYTHONPATH, so nothing is installed or switched.

Results are appended to a JSON-lines file as they come: an interrupted run resumes.

Run: .venv/bin/python benchmarks/method_wall_time.py --base /tmp/base --new . \
     [--model lenet5] [--size small] [--profile mobile] [--pairs 2] [--trials 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def one_answer(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One measure-mode recommendation by the code in ``tree``, on a fresh data dir."""
    cmd = [sys.executable, "-m", "service.cli.main", "recommend", args.model]
    cmd += ["--answers", str(tree / "data" / "examples" / f"{args.profile}.yaml")]
    cmd += ["--mode", "measure", "--trials", str(args.trials), "--json"]
    if args.size:
        cmd += ["--size", args.size]
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "PYTHONPATH": str(tree), "FWADVISOR_DATA_DIR": d}
        load, start = os.getloadavg()[0], time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
    try:
        choice = json.loads(done.stdout).get("choice")
    except (json.JSONDecodeError, AttributeError):
        choice = None
    return {
        "tree": str(tree),
        "wall_s": wall,
        "ok": done.returncode == 0,
        "choice": choice,
        "load_before": load,
        "error": done.stderr.strip().splitlines()[-1:] if done.returncode else [],
    }


def summarize(rows: list[dict[str, Any]], base: str, new: str) -> dict[str, Any]:
    """Paired ratios new / base, pair by pair (rows come in pairs, either order)."""
    ratios = []
    for i in range(0, len(rows) - 1, 2):
        by_tree = {r["tree"]: r for r in rows[i : i + 2]}
        a, b = by_tree.get(base), by_tree.get(new)
        if a and b and a["ok"] and b["ok"]:
            ratios.append(b["wall_s"] / a["wall_s"])
    logs = [math.log(r) for r in ratios]
    return {
        "pairs": len(ratios),
        "ratios": ratios,
        "geomean_ratio": math.exp(statistics.fmean(logs)) if logs else None,
        "min_ratio": min(ratios, default=None),
        "max_ratio": max(ratios, default=None),
        "base_wall_s": [r["wall_s"] for r in rows if r["tree"] == base],
        "new_wall_s": [r["wall_s"] for r in rows if r["tree"] == new],
        "failed": [r for r in rows if not r["ok"]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", type=Path, required=True, help="the older code tree")
    ap.add_argument("--new", type=Path, default=Path("."), help="the newer code tree")
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--size", default=None)
    ap.add_argument("--profile", default="mobile")
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None, help="JSON lines (resume state)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    base, new = str(args.base.resolve()), str(args.new.resolve())
    out = args.out or Path(f"var/method_wall_{args.model}_{args.size or 'default'}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    for pair in range(len(rows) // 2, args.pairs):
        order = [base, new] if pair % 2 == 0 else [new, base]
        for tree in order[len(rows) % 2 :]:
            row = one_answer(Path(tree), args)
            rows.append(row)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            if not args.json:
                side = "base" if tree == base else "new"
                print(
                    f"pair {pair + 1} {side}: {row['wall_s']:.0f} s ({row['choice']})", flush=True
                )
    s = summarize(rows, base, new)
    if args.json:
        print(json.dumps(s, indent=2))
        return
    if s["geomean_ratio"] is None:
        print("no complete pair")
        return
    print(
        f"{args.model} ({args.size or 'default size'}, {args.profile}, {args.trials} trials): "
        f"new/base wall time {s['geomean_ratio']:.2f}x over {s['pairs']} pairs "
        f"(range {s['min_ratio']:.2f}-{s['max_ratio']:.2f})"
    )


if __name__ == "__main__":
    main()
