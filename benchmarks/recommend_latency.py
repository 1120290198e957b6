"""Cost of a predict-mode recommendation, as a web process pays it.

Two fresh processes share one empty data directory. The first finds no compiled
predictor (cold: it is built in a child process); the second finds it (warm). Each
reports its import time, its first recommend() call, its resident memory (VmRSS) right
after that call, whether scikit-learn, scipy, torch or tensorflow got imported, and
the median of N further calls per model (after 5 warm-up calls), with the mobile
example answers.

Run: .venv/bin/python benchmarks/recommend_latency.py [--calls 200] [--models lenet5,resnet18]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sklearn", "scipy", "torch", "tensorflow")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(data_dir: Path, models: list[str], calls: int) -> dict[str, object]:
    """One fresh process: import, first call, RSS, then the timed calls."""
    t0 = time.perf_counter()
    from probes.config import Settings
    from probes.spec import resolve_spec
    from recommender.questionnaire import load_answers
    from recommender.recommend import recommend

    imported = time.perf_counter() - t0
    settings = Settings(data_dir=data_dir, zoo_dir=ROOT / "data" / "zoo")
    answers = load_answers(ROOT / "data" / "examples" / "mobile.yaml")
    specs = {m: resolve_spec(m, settings.zoo_dir) for m in models}
    t1 = time.perf_counter()
    recommend(specs[models[0]], answers, "predict", settings=settings)
    out: dict[str, object] = {
        "import_s": imported,
        "first_call_s": time.perf_counter() - t1,
        "rss_mb": _rss_mb(),
        "heavy": sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY)),
    }
    for name, spec in specs.items():
        for _ in range(5):
            recommend(spec, answers, "predict", settings=settings)
        times = []
        for _ in range(calls):
            t = time.perf_counter()
            recommend(spec, answers, "predict", settings=settings)
            times.append(time.perf_counter() - t)
        out[f"{name}_median_ms"] = 1e3 * statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--models", default="lenet5,resnet18")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    models = args.models.split(",")
    if args.child is not None:
        print(json.dumps(child(args.child, models, args.calls)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--child", tmp, "--calls", str(args.calls)]
        cmd += ["--models", args.models]
        runs = {
            run: json.loads(subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT).stdout)
            for run in ("cold", "warm")
        }
    print(
        "| process | import | first call | VmRSS after it | heavy imports | "
        + " | ".join(f"{m} median" for m in models)
        + " |"
    )
    print("|---|---:|---:|---:|---|" + "---:|" * len(models))
    for run, r in runs.items():
        medians = " | ".join(f"{r[f'{m}_median_ms']:.2f} ms" for m in models)
        print(
            f"| {run} | {r['import_s']:.2f} s | {r['first_call_s']:.2f} s | "
            f"{r['rss_mb']:.0f} MB | {', '.join(r['heavy']) or 'none'} | {medians} |"
        )


if __name__ == "__main__":
    main()
