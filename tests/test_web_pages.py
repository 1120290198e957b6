"""The web page's pieces without a browser: links, chart geometry, presets, "Ask again",
trials and size checks, job progress and attempts, the history page (damaged rows
included) and the zoo report's summaries."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from recommender.evidence.progress import WorkClock, stepped
from service.api.context import EXTENSION
from service.app import create_app
from service.jobs.lease import WorkerStore
from service.jobs.progress import parse
from service.settings import ServiceSettings
from service.web.charts import WIDTH, WRAP, nice_top, ticks
from service.web.links import linkify
from service.web.prefill import preset_answers
from tests.browser_pages import damage_one
from tests.conftest import ZOO

MOBILE = {"model": "lenet5", "mode": "predict", "targets": ["android", "ios"]}


@pytest.fixture
def app(tmp_path: Path) -> tuple[FlaskClient, Path]:
    settings = ServiceSettings(data_dir=tmp_path, zoo_dir=ZOO)
    return create_app(settings).test_client(), tmp_path


def _html(r: Any) -> str:
    return str(r.get_data(as_text=True))


# -- links and charts -----------------------------------------------------------------


def test_only_http_addresses_become_links_and_everything_is_escaped() -> None:
    out = str(linkify("see https://x.org/a?b=1&c=<2>. or javascript:alert(1) <b>x</b>"))
    assert '<a href="https://x.org/a?b=1&amp;c=" rel="noopener noreferrer">' in out
    assert "javascript:alert(1)" in out and 'href="javascript' not in out
    assert "&lt;b&gt;x&lt;/b&gt;" in out and "<b>" not in out
    trailing = str(linkify("(docs: http://a.org/x_(y)), next"))
    assert 'href="http://a.org/x_(y)"' in trailing and trailing.endswith("</a>), next")
    assert str(linkify('http://"onmouseover=alert(1)')) == "http://&#34;onmouseover=alert(1)"


def test_chart_axis_ticks_are_round_and_cover_the_longest_bar() -> None:
    assert [nice_top(x) for x in (0.34, 1.0, 3.1, 7, 0.0)] == [0.5, 1.0, 5.0, 10.0, 1.0]
    t = ticks(0.5)
    assert [x.label for x in t] == ["0", "0.125", "0.25", "0.375", "0.5"]
    assert t[-1].x == WIDTH


def test_result_page_has_axes_wrapped_values_and_source_links(
    app: tuple[FlaskClient, Path],
) -> None:
    client, _ = app
    html = _html(client.post("/recommend", data=MOBILE))
    assert html.count('class="axis-label"') == html.count("<svg") >= 2
    values = re.findall(r'<text[^>]*class="value">([^<]*)</text>', html)
    assert values and all(len(v) <= WRAP for v in values)
    assert "…" not in "".join(values)  # never cut short
    links = re.findall(r'<a href="(https?://[^"]+)" rel="noopener noreferrer">', html)
    assert links, "the capability matrix's sources are links"
    assert 'class="wide"' in html and 'data-label="evidence"' in html


# -- presets, trials, size, Ask again --------------------------------------------------


def _checked(html: str, name: str) -> set[str]:
    pat = rf'name="{name}" value="([^"]+)"\s*checked'
    return set(re.findall(pat, html))


def test_presets_fill_the_questionnaire(app: tuple[FlaskClient, Path]) -> None:
    client, _ = app
    html = _html(client.get("/?preset=mobile"))
    assert _checked(html, "targets") == {"android", "ios"}
    assert re.search(r'id="memory_budget_mb" name="memory_budget_mb"\s+value="512"', html)
    assert _checked(html, "languages") == set()  # the preset's empty list, not the default
    research = _html(client.get("/?preset=research"))
    assert _checked(research, "targets") != {"android", "ios"}
    for name in ("mobile", "browser", "research", "server-gpu"):
        assert f'name="preset" value="{name}"' in html
    bad = client.get("/?preset=phone")
    assert bad.status_code == 404 and "query.preset" in _html(bad)


def test_trials_and_size_are_checked_server_side(app: tuple[FlaskClient, Path]) -> None:
    client, _ = app
    for trials in ("0", "101", "2.5", "many"):
        r = client.post("/recommend", data={**MOBILE, "mode": "measure", "trials": trials})
        assert r.status_code == 422 and "form.trials" in _html(r), trials
    r = client.post("/recommend", data={**MOBILE, "size": "huge"})
    assert r.status_code == 422 and "form.size" in _html(r)
    api = client.post("/v1/recommendations", json={"model": "lenet5", "trials": 0})
    assert api.status_code == 422 and api.mimetype == "application/problem+json"
    assert [e["path"] for e in api.get_json()["errors"]] == ["body.trials"]
    api = client.post("/v1/recommendations", json={"model": "lenet5", "size": "huge"})
    assert api.status_code == 422 and api.get_json()["errors"][0]["path"] == "body.size"
    ok = client.post(
        "/recommend", data={**MOBILE, "mode": "measure", "trials": "3", "size": "small"}
    )
    assert ok.status_code == 303
    job = client.get(ok.headers["Location"].replace("/jobs/", "/v1/jobs/")).get_json()
    assert job["request"]["trials"] == 3 and job["request"]["size"] == "small"
    assert 'option value="small"' in _html(client.get("/"))


def test_ask_again_keeps_the_answers(app: tuple[FlaskClient, Path]) -> None:
    client, _ = app
    form = {**MOBILE, "latency_slo_ms": "42", "size": "small", "languages": []}
    result = _html(client.post("/recommend", data=form))
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', result)
    assert ("latency_slo_ms", "42") in hidden and ("targets", "ios") in hidden
    again = client.post("/ask", data=MultiDict(hidden))
    html = _html(again)
    assert again.status_code == 200
    assert _checked(html, "targets") == {"android", "ios"}
    assert re.search(r'name="latency_slo_ms"\s+value="42"', html)
    assert re.search(r'<option value="small" selected>', html)
    assert _checked(html, "languages") == set()


# -- jobs: attempts and progress -------------------------------------------------------


def test_progress_lines_parse_as_the_recommender_writes_them() -> None:
    lines: list[str] = []
    clock = WorkClock(planned=14, done=3, spent_s=30.0, start=time.monotonic() - 42)
    stepped(lines.append, clock, "search")("torch: trial 3")
    p = parse(lines[0])
    assert (p.step, p.message, p.done, p.planned) == ("search", "torch: trial 3", 3, 14)
    assert p.eta_s == 110.0 and p.elapsed_s == 42.0
    assert parse("started on w1 (attempt 1)", 5.0).step is None
    zoo = parse("[3/11] resnet18: tuning at batch 1", 100.0)  # a zoo run: 2 models done
    assert (zoo.step, zoo.done, zoo.planned, zoo.unit, zoo.eta_s) == (
        "model 3 of 11",
        2,
        11,
        "models",
        450.0,
    )
    cal = parse(
        "  torch/eager              conv2d        12 cells (median 0.3 ms)  [40/114, 21 s]", 20.0
    )
    assert (cal.step, cal.done, cal.planned, cal.unit, cal.eta_s) == (
        "torch/eager",
        40,
        114,
        "cells",
        37.0,
    )


def test_job_page_counts_attempts_and_shows_progress(app: tuple[FlaskClient, Path]) -> None:
    client, data = app
    loc = client.post("/recommend", data={**MOBILE, "mode": "measure"}).headers["Location"]
    queued = _html(client.get(loc))
    assert "not started yet (up to 2 attempts)" in queued and "attempt 0" not in queued
    store = WorkerStore(ServiceSettings(data_dir=data).job_db_url())
    a = store.claim("w1")
    assert a is not None
    store.progress(a, "[search] torch: trial 3 (3/14 probes, 0:42 elapsed, about 2:31 left)")
    html = _html(client.get(loc))
    assert "attempt 1 of 2" in html
    assert '<dd id="step">search</dd>' in html and '<dd id="counts">3 of 14 probes</dd>' in html
    assert re.search(r'<dd id="eta">about 2:[23]\d</dd>', html)
    cur = client.get(loc.replace("/jobs/", "/v1/jobs/")).get_json()["current"]
    assert (cur["step"], cur["done"], cur["planned"]) == ("search", 3, 14)
    assert 0 <= cur["elapsed_s"] < 60 and 140 <= cur["eta_s"] <= 151


# -- history -----------------------------------------------------------------------------


def _finish(data: Path, client: FlaskClient, answers: dict[str, Any]) -> str:
    rec = client.post(
        "/v1/recommendations", json={"model": "lenet5", "mode": "predict", "answers": answers}
    ).get_json()
    job = client.post(
        "/v1/jobs", json={"kind": "recommend", "model": "lenet5", "answers": answers}
    ).get_json()
    store = WorkerStore(ServiceSettings(data_dir=data).job_db_url())
    a = store.claim("w")
    assert a is not None and a.job_id == job["id"]
    store.finish(a, "succeeded", result=json.dumps(rec))
    return str(job["id"])


def test_history_lists_filters_and_compares(app: tuple[FlaskClient, Path]) -> None:
    client, data = app
    one = _finish(data, client, preset_answers("mobile"))
    two = _finish(data, client, {"targets": ["server_cpu"]})
    damaged = damage_one(data)
    html = _html(client.get("/history"))
    assert one[:8] in html and two[:8] in html
    assert "unreadable" in html and damaged[:8] in html
    assert re.search(r"<td>mobile</td>", html) and re.search(r"<td>custom</td>", html)
    only = _html(client.get("/history?profile=mobile"))
    assert one[:8] in only and two[:8] not in only
    pair = _html(client.get(f"/history?compare={one}&compare={two}"))
    assert 'id="compare"' in pair and "(differs)" in pair
    row = re.search(r"Where must the model run in production\?.*?</tr>", pair, re.S)
    assert row and "android, ios" in row.group(0) and "server_cpu" in row.group(0)
    assert client.get(f"/history?compare={damaged}").status_code == 200


def test_history_survives_an_unreadable_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(ServiceSettings(data_dir=tmp_path, zoo_dir=ZOO))

    def damaged(*_a: object) -> list[dict[str, Any]]:
        raise sqlite3.DatabaseError("file is not a database")

    monkeypatch.setattr(app.extensions[EXTENSION].store, "recent", damaged)
    r = app.test_client().get("/history")
    assert r.status_code == 503 and 'id="broken"' in _html(r) and "DatabaseError" in _html(r)


def test_instant_answers_are_kept_for_the_history(
    app: tuple[FlaskClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, data = app
    result = _html(client.post("/recommend", data=MOBILE))
    m = re.search(r'href="/answers/([0-9a-f]{32})"', result)
    assert m is not None
    again = client.get(f"/answers/{m.group(1)}")
    assert again.status_code == 200 and 'id="choice"' in _html(again)
    assert 'name="targets" value="ios"' in _html(again)  # its Ask again keeps the answers
    history = _html(client.get("/history?kind=answer"))
    assert m.group(1)[:8] in history and "(predict)" in history
    assert client.get("/answers/" + "0" * 32).status_code == 404
    # a damaged kept answer: listed as unreadable, its page says so; neither is a 500
    import sqlalchemy as sa

    from service.jobs.store import answers

    engine = sa.create_engine(ServiceSettings(data_dir=data).job_db_url())
    with engine.begin() as c:
        c.execute(answers.update().values(result="{broken"))
    engine.dispose()
    assert "unreadable" in _html(client.get("/history"))
    broken = client.get(f"/answers/{m.group(1)}")
    assert broken.status_code == 200 and 'id="unreadable"' in _html(broken)

    def full(*_a: object) -> str:
        raise sa.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))

    monkeypatch.setattr("service.jobs.answers.record", full)
    kept_nothing = client.post("/recommend", data=MOBILE)
    assert kept_nothing.status_code == 200 and 'id="choice"' in _html(kept_nothing)
    assert 'id="saved"' not in _html(kept_nothing)


def test_only_the_newest_answers_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.jobs import answers
    from service.jobs.store import JobStore

    monkeypatch.setattr(answers, "KEEP", 3)
    store = JobStore(ServiceSettings(data_dir=tmp_path).job_db_url())
    ids = [answers.record(store, {"model": "mlp"}, "{}") for _ in range(5)]
    kept = [r["id"] for r in answers.recent(store, 10)]
    assert set(kept) == set(ids[-3:])
