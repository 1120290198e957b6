"""The zoo report's layout and summaries, on the published run's stored results
(docs/zoo/results.json) altered in the test: verdict matrix first, caveats once,
efficiency never above 100%, confidence in words, the results table's sort keys."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from recommender.zoo.models import ZooRun
from recommender.zoo.report import render
from recommender.zoo.summary import caveats, confidence, efficiency, result_rows
from tests.conftest import ROOT

STORED = ROOT / "docs" / "zoo" / "results.json"


@pytest.fixture(scope="module")
def run() -> ZooRun:
    if not STORED.is_file():
        pytest.skip("no stored zoo run (docs/zoo/results.json)")
    return ZooRun.model_validate_json(STORED.read_text())


def _with_efficiency(run: ZooRun, values: list[float]) -> ZooRun:
    out = run.model_copy(deep=True)
    rows = [r for o in out.models for r in o.frameworks]
    for r, v in zip(rows, values * len(rows), strict=False):
        r.efficiency = v
    return out


def test_efficiency_is_never_above_100_percent(run: ZooRun) -> None:
    hot = _with_efficiency(run, [1.4, 0.7])
    eff = efficiency(hot)
    assert eff.scale == pytest.approx(1.4) and eff.peak_gflops == pytest.approx(
        1.4 * (hot.machine_peak_gflops or 0)
    )
    shown = [c for row in result_rows(hot) for c in row.cells if c[0].endswith("%")]
    assert shown and max(float(k) for _, k in shown if k is not None) <= 1.0
    assert "100.0%" in {t for t, _ in shown} and "50.0%" in {t for t, _ in shown}
    html = render(hot)
    assert "below what some models achieved" in html
    assert not re.search(r">(10[1-9]|1[1-9][0-9]|[2-9][0-9]{2})\.\d%<", html)  # none above 100
    cool = _with_efficiency(run, [0.5])
    assert efficiency(cool).scale == 1.0 and "below what some" not in render(cool)


def test_caveats_are_listed_once_with_where_they_apply(run: ZooRun) -> None:
    notes = caveats(run)
    texts = [c.text for c in notes]
    assert len(texts) == len(set(texts))
    every = {c for o in run.models for v in o.verdicts for c in v.caveats}
    assert set(texts) == every
    html = render(run)
    for c in notes:
        assert f'<li id="caveat-{c.number}">' in html
        assert f"applies to {len(c.where)} of" in html
    biggest = notes[0]
    assert html.count(biggest.text) == 1  # not once per cell


def test_the_verdict_matrix_comes_first(run: ZooRun) -> None:
    html = render(run)
    order = [html.index(s) for s in ('id="verdict-matrix"', 'id="results-table"', 'id="fig-')]
    assert order == sorted(order)
    assert "<script>" in html and "http" not in html.split("<script>")[1]  # no CDN
    assert confidence(1.0) == ">99%" and confidence(0.734) == "73%"


def test_result_rows_sort_by_numbers_not_text(run: ZooRun) -> None:
    rows = result_rows(run)
    keys = [r.cells[6][1] for r in rows]  # throughput
    assert all(k is None or isinstance(k, float) for k in keys)
    shown = [r.cells[6][0] for r in rows]
    assert not any("e+" in s for s in shown)  # 24,750, not 2.475e+04


def test_write_report_writes_the_page(tmp_path: Path, run: ZooRun) -> None:
    from recommender.zoo.report import write_report

    assert write_report(run, tmp_path).read_text().startswith("<!doctype html>")


def _overlap(boxes: list[tuple[float, float]]) -> bool:
    spans = sorted(boxes)
    return any(b[0] < a[1] - 0.5 for a, b in itertools.pairwise(spans))


def test_pareto_panels_have_a_legend_and_ticks_that_do_not_overlap(run: ZooRun) -> None:
    import matplotlib.pyplot as plt

    from recommender.zoo.figures import efficiency as efficiency_figure
    from recommender.zoo.figures import pareto

    fig = pareto(run)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = {t.get_text() for lg in fig.legends for t in lg.get_texts()}
    assert {"PyTorch Pareto front", "TensorFlow trial"} <= labels
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == len([o for o in run.models if o.status == "done"])
    for ax in panels:
        xs = [*ax.get_xticklabels(), *ax.get_xticklabels(minor=True)]
        ys = [*ax.get_yticklabels(), *ax.get_yticklabels(minor=True)]
        xs = [t for t in xs if t.get_visible() and t.get_text()]
        ys = [t for t in ys if t.get_visible() and t.get_text()]
        assert 2 <= len(xs) <= 6 and 2 <= len(ys) <= 6, ax.get_title()
        assert not any("e+" in t.get_text() for t in xs + ys)
        xbox = [(b.x0, b.x1) for b in (t.get_window_extent(renderer) for t in xs)]
        ybox = [(b.y0, b.y1) for b in (t.get_window_extent(renderer) for t in ys)]
        assert not _overlap(xbox) and not _overlap(ybox), ax.get_title()
    plt.close(fig)
    hot = _with_efficiency(run, [1.4, 0.7])
    fig = efficiency_figure(hot)
    heights = [p.get_height() for p in fig.axes[0].patches if p.get_gid() == "data"]
    assert heights and max(heights) <= 100.0 + 1e-9
    plt.close(fig)
