"""Every page in headless Chromium at 1280 and 390 px: no horizontal overflow, no
clipped text (SVG labels inside their chart, cell text inside its cell), no console
error; then the pages' behaviour: presets, "Ask again", live job progress, and the zoo
report's sortable, filterable table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from service.jobs.lease import WorkerStore
from service.settings import ServiceSettings
from tests.browser_pages import (  # browser: the shared fixture
    WIDTHS,
    Site,
    check,
    damage_one,
    open_result,
    pages,
    seed,
    serve,
    zoo_report,
)
from tests.conftest import ZOO

PAGES = ["result", "index", "job-running", "job-finished", "report", "history", "zoo"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("layout")
    with serve(data, ZOO) as base:
        running, done = seed(base, data)
        damage_one(data)  # the history must show it as unreadable, not fail
        yield Site(base, data, {}, running, done, zoo_report(data / "zoo"))


def _page(browser: Any, width: int) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", PAGES)
def test_nothing_overflows_or_is_clipped(site: Site, browser: Any, name: str, width: int) -> None:
    page, errors = _page(browser, width)
    if name == "result":
        open_result(page, site.base)
    else:
        url = pages(site).get(name)
        if url is None:
            pytest.skip("no stored zoo run to render")
        page.goto(url)
        page.wait_for_load_state("load")
    assert check(page) == []
    assert errors == []
    page.close()


def test_the_checks_can_fail(site: Site, browser: Any) -> None:
    page, errors = _page(browser, 390)
    open_result(page, site.base)
    page.evaluate(
        """() => {
        const svg = document.querySelector('svg.chart');
        const t = document.createElementNS('http://www.w3.org/2000/svg', 'text');
        t.setAttribute('x', '600'); t.setAttribute('y', '20'); t.textContent = 'x'.repeat(40);
        svg.appendChild(t);
        const td = document.querySelector('#deployment td');
        td.style.maxWidth = '50px'; td.style.overflow = 'hidden'; td.style.whiteSpace = 'nowrap';
        td.textContent = 'y'.repeat(300);
        const wide = document.createElement('div');
        wide.style.width = '2000px'; wide.style.height = '10px';
        document.body.appendChild(wide);
        console.error('boom');
    }"""
    )
    found = " | ".join(check(page))
    assert "page 2" in found and "svg text clipped" in found and "cell text wider" in found
    assert errors == ["boom"]
    page.close()


def test_a_preset_then_ask_again_keeps_the_answers(site: Site, browser: Any) -> None:
    page, errors = _page(browser, 1280)
    page.goto(site.base + "/")
    page.get_by_role("button", name="Phone app").click()
    page.wait_for_selector("#preset-note")
    assert page.get_by_label("Android").is_checked() and page.get_by_label("iOS").is_checked()
    page.get_by_label("Latency objective per request, in milliseconds?").fill("55")
    page.get_by_role("button", name="Recommend").click()
    page.wait_for_selector("#choice", timeout=120_000)
    page.get_by_role("button", name="Ask again").click()
    page.wait_for_selector("form#ask")
    assert page.get_by_label("Android").is_checked() and page.get_by_label("iOS").is_checked()
    assert not page.get_by_label("Server, CPU").is_checked()
    assert (
        page.get_by_label("Latency objective per request, in milliseconds?").input_value() == "55"
    )
    assert errors == []
    page.close()


def test_the_job_page_follows_progress(site: Site, browser: Any) -> None:
    page, errors = _page(browser, 390)
    page.goto(f"{site.base}/jobs/{site.running_job}")
    assert page.inner_text("#attempt") == "attempt 1 of 2"
    assert page.inner_text("#step") == "search" and page.inner_text("#counts") == "3 of 14 probes"
    store = WorkerStore(ServiceSettings(data_dir=site.data).job_db_url())
    attempt = _attempt(store, site.running_job)
    store.progress(attempt, "[paired rounds] round 2 (9/14 probes, 1:40 elapsed, about 0:50 left)")
    page.wait_for_function("document.getElementById('counts').textContent === '9 of 14 probes'")
    assert page.inner_text("#step") == "paired rounds"
    assert page.inner_text("#eta").startswith("about 0:")
    assert page.eval_on_selector("#bar", "b => [b.value, b.max]") == [9, 14]
    assert check(page) == [] and errors == []
    page.close()


def _attempt(store: WorkerStore, job_id: str) -> Any:
    from service.jobs.store import Attempt

    return Attempt(job_id, "seed", 1)


def test_the_zoo_table_sorts_and_filters(site: Site, browser: Any) -> None:
    if site.zoo_report is None:
        pytest.skip("no stored zoo run to render")
    page, errors = _page(browser, 1280)
    page.goto(site.zoo_report.as_uri())
    shown = "t => Array.from(t.tBodies[0].rows).filter(r => !r.hidden)"
    cells = shown + ".map(r => r.cells[3].dataset.sort)"
    page.get_by_role("button", name="Tuned b1 ms").click()
    keys = [float(k) for k in page.eval_on_selector("#results-table", cells) if k]
    assert keys == sorted(keys) and len(keys) > 2
    page.get_by_role("button", name="Tuned b1 ms").click()
    down = [float(k) for k in page.eval_on_selector("#results-table", cells) if k]
    assert down == sorted(keys, reverse=True)
    names = shown + ".map(r => r.cells[0].textContent)"
    every = page.eval_on_selector("#results-table", names)
    wanted = sorted(set(every))[-1]  # whichever models the stored run has
    assert len(set(every)) > 1, "the filter check needs two models"
    page.fill("#filter", wanted)
    models = page.eval_on_selector("#results-table", names)
    assert models and all(wanted in m for m in models) and len(models) < len(every)
    page.select_option("#fw-filter", "torch")
    assert page.inner_text("#shown").startswith(f"{len(models) // 2} of")
    assert errors == []
    page.close()


def test_history_shows_the_damaged_row_as_unreadable(site: Site, browser: Any) -> None:
    page, errors = _page(browser, 1280)
    page.goto(site.base + "/history")
    assert "unreadable" in page.inner_text("#history")
    page.check(f"#c-{site.finished_job}")
    page.check(f"#c-{site.running_job}")
    page.get_by_role("button", name="Compare the two ticked").click()
    page.wait_for_selector("#compare")
    assert "(differs)" in page.inner_text("#compare")
    assert errors == []
    page.close()
