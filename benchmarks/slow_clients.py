"""Slow clients against ``fwadvisor serve``: is /v1/health still answered?

Starts the real server (gunicorn, no job worker) on loopback with a fresh data
directory, opens ``--clients`` connections that each trickle a request one byte every
``--trickle-s`` seconds (half of them their headers, half a JSON body after complete
headers; a connection the server closes is opened again at once), and meanwhile asks
``/v1/health`` every 0.1 s. Reported: the health requests' p50/p99/max latency and how
many failed, plus how many slow connections the server closed. Target (issue 19):
p99 <= 1 s with 50 slow clients.

Run: .venv/bin/python benchmarks/slow_clients.py [--clients 50] [--duration 20]
     [--worker-class gevent|gthread|sync] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BODY = b'{"model": "mlp", "mode": "predict", "answers": {}}' * 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    port: int, data: Path, worker_class: str, workers: int = 2
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FWADVISOR_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "service.cli.main", "serve", "--port", str(port), "--no-worker"]
    cmd += ["--workers", str(workers), "--worker-class", worker_class]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not start")


def _request(i: int) -> bytes:
    if i % 2:  # headers complete, the body trickles
        return (
            b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)
        ) + BODY
    return b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000 + b"\r\n\r\n"


def slow_client(
    port: int, i: int, trickle_s: float, stop: threading.Event, closed: list[int]
) -> None:
    """One connection at a time, one byte every ``trickle_s``; reopened when closed."""
    data = _request(i)
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                for k in range(len(data)):
                    if stop.wait(trickle_s):
                        return
                    s.sendall(data[k : k + 1])
        except OSError:
            closed[0] += 1  # the server closed it (a read timeout): reconnect


def probe_health(port: int, stop: threading.Event, out: list[float | None]) -> None:
    url = f"http://127.0.0.1:{port}/v1/health"
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                ok = r.status == 200
        except OSError:
            ok = False
        out.append(time.perf_counter() - t0 if ok else None)
        stop.wait(0.1)


def measure(port: int, clients: int, duration_s: float, trickle_s: float = 1.0) -> dict[str, Any]:
    """Health latencies while ``clients`` slow connections are held."""
    stop = threading.Event()
    closed = [0]
    threads = [
        threading.Thread(target=slow_client, args=(port, i, trickle_s, stop, closed), daemon=True)
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    time.sleep(min(2.0, duration_s / 4))  # let them connect and start trickling
    lat: list[float | None] = []
    prober = threading.Thread(target=probe_health, args=(port, stop, lat), daemon=True)
    prober.start()
    time.sleep(duration_s)
    stop.set()
    prober.join(15)
    ok = sorted(x for x in lat if x is not None)
    q = statistics.quantiles(ok, n=100, method="inclusive") if len(ok) >= 2 else [float("nan")] * 99
    return {
        "slow_clients": clients,
        "duration_s": duration_s,
        "health_requests": len(lat),
        "health_failed": sum(x is None for x in lat),
        "p50_ms": round(q[49] * 1e3, 1),
        "p99_ms": round(q[98] * 1e3, 1),
        "max_ms": round(ok[-1] * 1e3, 1) if ok else None,
        "slow_connections_closed": closed[0],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--trickle-s", type=float, default=1.0)
    p.add_argument("--worker-class", default="gevent", choices=["gevent", "gthread", "sync"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fwadvisor-slow-") as tmp:
        proc = start_server(port, Path(tmp), args.worker_class, args.workers)
        try:
            out = measure(port, args.clients, args.duration, args.trickle_s)
        finally:
            proc.terminate()
            proc.wait(30)
    out.update(worker_class=args.worker_class, workers=args.workers, load=os.getloadavg())
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>24}: {v}")


if __name__ == "__main__":
    main()
