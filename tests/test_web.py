"""The web questionnaire: server-rendered forms through the test client (no
JavaScript), then in a real headless Chromium against ``fwadvisor serve``."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.app import create_app
from service.jobs.lease import WorkerStore
from service.settings import ServiceSettings
from tests.conftest import ROOT, ZOO


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    settings = ServiceSettings(data_dir=tmp_path_factory.mktemp("web"), zoo_dir=ZOO)
    return create_app(settings).test_client()


def test_form_is_labelled(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    ids = set(re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html))
    labels = set(re.findall(r'<label for="([^"]+)"', html))
    assert ids and ids <= labels  # every control with an id has its <label for>
    # radios and checkboxes are wrapped in their label, inside a fieldset with a legend
    assert html.count("<fieldset") == html.count("<legend")
    assert 'lang="en"' in html and 'class="skip"' in html


def test_predict_without_javascript(client: FlaskClient) -> None:
    form = {
        "model": "lenet5",
        "targets": ["android", "ios"],
        "latency_slo_ms": "100",
        "mode": "predict",
    }
    r = client.post("/recommend", data=form)
    html = r.get_data(as_text=True)
    assert r.status_code == 200, html[:500]
    assert re.search(r'id="choice">(PyTorch|TensorFlow|Either|Neither)<', html)
    assert "android" in html and html.count("<svg") >= 2  # contributions + latency
    assert "Deployment matrix" in html


def test_form_errors_are_shown_with_their_field(client: FlaskClient) -> None:
    r = client.post("/recommend", data={"model": "lenet5", "latency_slo_ms": "-5"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and 'role="alert"' in html
    assert "form.answers.latency_slo_ms" in html
    bad_spec = client.post("/recommend", data={"spec": "name: [unclosed", "mode": "predict"})
    assert bad_spec.status_code == 400 and "not valid YAML" in bad_spec.get_data(as_text=True)


def test_measure_redirects_to_the_job_page(client: FlaskClient) -> None:
    r = client.post("/recommend", data={"model": "mlp", "mode": "measure"})
    assert r.status_code == 303 and r.headers["Location"].startswith("/jobs/")
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'id="status" aria-live="polite">queued<' in page
    assert '<noscript><meta http-equiv="refresh"' in page


def test_measure_from_the_form_needs_the_key_when_keys_are_set(tmp_path: Path) -> None:
    from service.api.context import hash_key

    settings = ServiceSettings(data_dir=tmp_path, zoo_dir=ZOO, api_keys=[hash_key("k1")])
    c = create_app(settings).test_client()
    page = c.get("/").get_data(as_text=True)
    assert 'id="api_key"' in page and 'for="api_key"' in page
    refused = c.post("/recommend", data={"model": "mlp", "mode": "measure", "api_key": "no"})
    assert refused.status_code == 401 and "X-API-Key" in refused.get_data(as_text=True)
    ok = c.post("/recommend", data={"model": "mlp", "mode": "measure", "api_key": "k1"})
    assert ok.status_code == 303
    predict = c.post("/recommend", data={"model": "mlp", "mode": "predict"})
    assert predict.status_code == 200  # reading needs no key


def test_measure_with_a_bad_answer_is_refused_on_the_form(client: FlaskClient) -> None:
    r = client.post("/recommend", data={"model": "mlp", "mode": "measure", "batch_size": "0"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and 'role="alert"' in html  # no job to watch fail later
    assert "form.answers.batch_size" in html


def test_job_page_applies_the_heartbeat_rule(tmp_path: Path) -> None:
    settings = ServiceSettings(data_dir=tmp_path, zoo_dir=ZOO, stale_after_s=0.2, max_attempts=1)
    c = create_app(settings).test_client()
    r = c.post("/recommend", data={"model": "mlp", "mode": "measure"})
    assert r.status_code == 303
    assert WorkerStore(settings.job_db_url()).claim("dead-worker") is not None
    time.sleep(0.4)  # its worker died: no heartbeat since
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert 'id="status" aria-live="polite">failed<' in page
    assert "lost: no heartbeat" in page and "<noscript><meta" not in page


# -- a real browser --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = {**os.environ, "FWADVISOR_DATA_DIR": str(data), "FWADVISOR_ZOO_DIR": str(ZOO)}
    cmd = [
        sys.executable,
        "-m",
        "service.cli.main",
        "serve",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-worker",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, "server exited"
                time.sleep(0.2)
        yield base, data
    finally:
        proc.terminate()
        proc.wait(20)


def test_browser_fills_in_the_questionnaire(server: tuple[str, Path], browser: Any) -> None:
    base, _ = server
    page = browser.new_page()
    page.goto(base + "/")
    page.get_by_label("Zoo model", exact=True).select_option("mlp")
    page.get_by_label("Android").check()
    page.get_by_label("Latency objective per request, in milliseconds?").fill("20")
    page.get_by_label("Predict (instant)").check()
    # keyboard only: focus the button and press Enter
    page.get_by_role("button", name="Recommend").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#choice", timeout=60_000)
    choice = page.inner_text("#choice")
    assert choice in ("PyTorch", "TensorFlow", "Either", "Neither")
    assert "confidence" in page.inner_text("#summary") or choice == "Neither"
    assert page.locator("svg[role=img]").count() >= 2
    page.close()


def test_browser_without_javascript(server: tuple[str, Path], browser: Any) -> None:
    base, _ = server
    ctx = browser.new_context(java_script_enabled=False)
    page = ctx.new_page()
    page.goto(base + "/")
    page.get_by_label("Zoo model", exact=True).select_option("lenet5")
    page.get_by_role("button", name="Recommend").click()
    page.wait_for_selector("#choice", timeout=60_000)
    assert page.inner_text("#choice") in ("PyTorch", "TensorFlow", "Either", "Neither")
    ctx.close()


def test_browser_shows_live_job_progress(server: tuple[str, Path], browser: Any) -> None:
    base, data = server
    page = browser.new_page()
    page.goto(base + "/")
    page.get_by_label("Zoo model", exact=True).select_option("mlp")
    page.get_by_label("Measure on this server (minutes)").check()
    page.get_by_role("button", name="Recommend").click()
    page.wait_for_url(re.compile(r".*/jobs/[0-9a-f]{32}$"))
    assert page.inner_text("#status") == "queued"
    job_id = page.url.rsplit("/", 1)[-1]
    # play the worker: claim the job and report progress; the page must follow live
    store = WorkerStore(ServiceSettings(data_dir=data).job_db_url())
    attempt = store.claim("browser-test")
    assert attempt is not None and attempt.job_id == job_id
    store.progress(attempt, "tuning torch: trial 1 of 6")
    page.wait_for_function(
        "document.getElementById('progress').textContent.includes('trial 1 of 6')",
        timeout=15_000,
    )
    assert page.inner_text("#status") == "running"
    store.finish(attempt, "failed", error="stopped by the browser test")
    page.wait_for_selector("#error", timeout=15_000)  # reloaded once finished
    assert "stopped by the browser test" in page.inner_text("#error")
    page.close()
