"""Pages for the browser checks and the screenshots: a served app seeded with a
result, a running job with progress, a finished job, an unreadable row and a zoo report,
and the in-page checks (horizontal overflow, clipped text, console errors).

Seeding plays the worker through the job store (``WorkerStore``), so no probe runs: a
finished recommend job carries a predict-mode recommendation as its result.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = (1280, 390)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from Debian, one per test module (shared by the web tests)."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


#: In-page check: what sticks out. Returns a list of problems (empty: fine).
LAYOUT_JS = """() => {
  const out = [];
  const d = document.documentElement;
  const say = (what, el) => out.push(`${what}: "${el.textContent.trim().slice(0, 60)}"`);
  if (d.scrollWidth > window.innerWidth) {
    out.push(`page ${d.scrollWidth}px wide in a ${window.innerWidth}px window`);
  }
  for (const t of document.querySelectorAll('svg text')) {
    const svg = t.ownerSVGElement.getBoundingClientRect(), r = t.getBoundingClientRect();
    if (r.width === 0) continue;
    if (r.right > svg.right + 1 || r.left < svg.left - 1) say('svg text clipped', t);
  }
  for (const c of document.querySelectorAll('td, th')) {
    if (c.scrollWidth > c.clientWidth + 1) say('cell text wider than its cell', c);
  }
  for (const w of document.querySelectorAll('.wide')) {
    if (w.getBoundingClientRect().right > window.innerWidth + 1) say('a table box sticks out', w);
  }
  return out;
}"""


@dataclass(frozen=True)
class Site:
    base: str
    data: Path
    result_form: dict[str, Any]  # a form that gets a result page
    running_job: str
    finished_job: str
    zoo_report: Path | None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(data: Path, zoo: Path) -> Iterator[str]:
    """``fwadvisor serve`` on 127.0.0.1 (no worker); stopped by its PID on exit."""
    port = free_port()
    env = {**os.environ, "FWADVISOR_DATA_DIR": str(data), "FWADVISOR_ZOO_DIR": str(zoo)}
    cmd = [sys.executable, "-m", "service.cli.main", "serve", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", "1", "--no-worker"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urlopen(req, timeout=120) as r:
        return dict(json.loads(r.read()))


def _job(base: str, answers: dict[str, Any]) -> str:
    body = {"kind": "recommend", "model": "lenet5", "mode": "measure", "answers": answers}
    return str(_post(base + "/v1/jobs", body)["id"])


def seed(base: str, data: Path) -> tuple[str, str]:
    """(a running job with progress, a finished one with a recommendation), played
    through the store as a worker would."""
    from service.jobs.lease import WorkerStore
    from service.settings import ServiceSettings

    mobile = {"targets": ["android", "ios"], "latency_slo_ms": 100, "memory_budget_mb": 512}
    rec = _post(
        base + "/v1/recommendations", {"model": "lenet5", "mode": "predict", "answers": mobile}
    )
    store = WorkerStore(ServiceSettings(data_dir=data).job_db_url())
    done = _job(base, mobile)
    a = store.claim("seed")
    assert a is not None and a.job_id == done
    store.progress(a, "[exports] onnx, litert (9/9 probes, 1:40 elapsed, about 0:00 left)")
    store.finish(a, "succeeded", result=json.dumps(rec))
    running = _job(base, {"targets": ["server_cpu"]})
    a = store.claim("seed")
    assert a is not None and a.job_id == running
    store.progress(a, "[search] torch: trial 3 of 6 (3/14 probes, 0:42 elapsed, about 2:31 left)")
    return running, done


def damage_one(data: Path) -> str:
    """A job row whose request is not JSON: the history must show it as unreadable."""
    import sqlalchemy as sa

    from service.jobs.store import jobs
    from service.settings import ServiceSettings

    engine = sa.create_engine(ServiceSettings(data_dir=data).job_db_url())
    row: dict[str, Any] = {"id": "d" * 32, "kind": "recommend", "status": "succeeded"}
    row |= {"request": "{not json"}
    row |= {"result": "[]", "attempts": 1, "max_attempts": 2, "created_at": time.time()}
    row |= {"owner": "x", "request_hash": "0" * 64, "cancel_requested": False}
    with engine.begin() as c:
        c.execute(jobs.insert().values(**row))
    engine.dispose()
    return str(row["id"])


def zoo_report(out: Path) -> Path | None:
    """The zoo report rendered from the published run's stored results (docs/zoo)."""
    src = ROOT / "docs" / "zoo" / "results.json"
    if not src.is_file():
        return None
    from recommender.zoo.models import ZooRun
    from recommender.zoo.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    return write_report(ZooRun.model_validate_json(src.read_text()), out)


def pages(site: Site) -> dict[str, str]:
    """name -> URL of every page the checks visit (the result page is a form post)."""
    out = {
        "index": site.base + "/?preset=mobile",
        "job-running": f"{site.base}/jobs/{site.running_job}",
        "job-finished": f"{site.base}/jobs/{site.finished_job}",
        "report": f"{site.base}/v1/jobs/{site.finished_job}/report",
        "history": f"{site.base}/history?compare={site.finished_job}&compare={site.running_job}",
    }
    if site.zoo_report is not None:
        out["zoo"] = site.zoo_report.as_uri()
    return out


def open_result(page: Any, base: str) -> None:
    """The result page, as a user gets it: the mobile preset, then Recommend."""
    page.goto(base + "/?preset=mobile")
    page.get_by_role("button", name="Recommend").click()
    page.wait_for_selector("#choice", timeout=120_000)


def check(page: Any) -> list[str]:
    return list(page.evaluate(LAYOUT_JS))
