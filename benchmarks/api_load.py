"""Load benchmark: predict-mode POST /v1/recommendations against ``fwadvisor serve``.

Starts the real server (gunicorn plus its idle job worker, as `fwadvisor serve` runs)
on loopback with a fresh data directory, warms it up (the compiled predictor is built
once), then drives it with wrk from Debian at several connection counts. The requests
rotate over zoo models x the example answer files, so no single cached answer is
measured. Reported per level: requests/s, p50/p90/p99 latency, errors (non-2xx and
socket); then the RSS of each process, now and at its peak (VmHWM). Targets on 2 cores:
>= 200 req/s at p99 <= 50 ms, zero errors, RSS <= 150 MB per web process. wrk shares
the machine's cores with the server, as a real client on the same host would.

Run: .venv/bin/python benchmarks/api_load.py [--duration 10] [--connections 1,4,8]
     [--data-from var/<dir with a calibration>] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["lenet5", "mlp", "resnet18", "mobilenet_v2", "bert_tiny", "text_lstm"]
ANSWERS = ["mobile", "server-gpu", "research", "browser"]
LUA = """
bodies = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/v1/recommendations",
    {["Content-Type"] = "application/json"}, bodies[(counter %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%f %%d %%d %%d %%d %%d %%f %%f %%f\\n",
    summary.requests, summary.duration / 1e6, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3))
end
"""


def bodies() -> list[str]:
    out = []
    for m in MODELS:
        for a in ANSWERS:
            answers = yaml.safe_load((ROOT / "data" / "examples" / f"{a}.yaml").read_text())
            out.append(json.dumps({"model": m, "mode": "predict", "answers": answers}))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory now (VmRSS) or its peak over the process's life (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss(pid: int) -> str:
    return f"{rss_mb(pid):.0f} (peak {rss_mb(pid, 'VmHWM'):.0f})"


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def start(
    port: int, data: Path, workers: int, threads: int, kind: str, job_worker: bool
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FWADVISOR_DATA_DIR": str(data), "FWADVISOR_RATE_LIMIT_PER_MINUTE": "0"}
    cmd = [
        sys.executable,
        "-m",
        "service.cli.main",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        kind,
        *([] if job_worker else ["--no-worker"]),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


def warm(port: int, all_bodies: list[str], rounds: int) -> None:
    for _ in range(rounds):
        for b in all_bodies:
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/recommendations",
                b.encode(),
                {"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=60) as r:
                assert r.status == 200, r.status


def wrk(port: int, script: Path, connections: int, duration: int) -> dict[str, float]:
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"^RESULT (.*)$", out, re.M)
    assert m, out
    n, secs, st, cn, rd, wr, to, p50, p90, p99 = (float(x) for x in m.group(1).split())
    return {
        "connections": connections,
        "requests": n,
        "rps": n / secs,
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "errors": st + cn + rd + wr + to,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", default="1,4,8")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--worker-class", choices=["gevent", "gthread", "sync"], default="gevent")
    ap.add_argument("--no-worker", action="store_true", help="serve without its job worker")
    ap.add_argument(
        "--data-from",
        type=Path,
        default=None,
        help="copy this data dir's calibration and results store first, so predict mode "
        "answers from this machine's per-operator calibration (without it: the fallback)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    say = (lambda *a, **k: None) if args.json else print
    out: dict[str, object] = {"levels": []}
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")
    all_bodies = bodies()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench.lua"
        script.write_text(LUA % ", ".join(json.dumps(b) for b in all_bodies))
        port = free_port()
        data = Path(tmp) / "var"
        out["predictor"] = seed_data(data, args.data_from)
        proc = start(
            port,
            data,
            args.workers,
            args.threads,
            args.worker_class,
            not args.no_worker,
        )
        try:
            warm(port, all_bodies, rounds=2 * args.workers)
            say(f"predictor: {out['predictor']}")
            say(
                f"serve: {args.workers} gunicorn {args.worker_class} workers x {args.threads} "
                f"threads; "
                f"{len(all_bodies)} distinct request bodies; wrk -t1, {args.duration} s each"
            )
            say(
                f"{'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'errors':>6}"
            )
            for c in (int(x) for x in args.connections.split(",")):
                r = wrk(port, script, c, args.duration)
                out["levels"].append({"connections": c, **r})  # type: ignore[attr-defined]
                say(
                    f"{c:>5} {r['rps']:>8.0f} {r['p50_ms']:>7.1f} {r['p90_ms']:>7.1f} "
                    f"{r['p99_ms']:>7.1f} {r['errors']:>6.0f}"
                )
            # serve's children: the gunicorn master (whose children are the web
            # workers) and the idle job worker, as `fwadvisor serve` runs by default
            kids = {p: children(p) for p in children(proc.pid)}
            master = next(p for p, c in kids.items() if c)
            job = [p for p, c in kids.items() if not c]
            web = ", ".join(rss(p) for p in kids[master])
            out["rss_mb"] = {
                "supervisor": rss(proc.pid),
                "master": rss(master),
                "web": [rss(p) for p in kids[master]],
                "job": [rss(p) for p in job],
            }
            say(
                f"RSS MB: serve supervisor {rss(proc.pid)}; gunicorn master {rss(master)}; "
                f"web workers {web}; job worker {', '.join(rss(p) for p in job)}"
            )
        finally:
            proc.terminate()
            proc.wait(30)
    if args.json:
        print(json.dumps(out, indent=2))


def seed_data(data: Path, source: Path | None) -> str:
    """Copy ``source``'s calibration files and results store into ``data``; say which
    predictor predict mode will use."""
    if source is None:
        return "no calibration: the old whole-model predictor (fallback)"
    cal = sorted((source / "calibration").glob("*.json"))
    if not cal:
        raise SystemExit(f"no calibration in {source}/calibration")
    (data / "calibration").mkdir(parents=True)
    for f in cal:
        shutil.copy(f, data / "calibration" / f.name)
    if (source / "results.sqlite").exists():
        shutil.copy(source / "results.sqlite", data / "results.sqlite")
    return f"per-operator calibration from {source} ({len(cal)} file(s)) and its results store"


if __name__ == "__main__":
    main()
