"""The zoo run as one self-contained HTML page: the verdict matrix first (model x
profile), its caveats once each, a sortable and filterable results table (a few lines
of inline JavaScript; no network), the figures inlined as PNG data URIs, every failure
with its reason, and the environment."""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from recommender.zoo.figures import FIGURES, NAMES, png
from recommender.zoo.models import ZooRun
from recommender.zoo.summary import (
    COLUMNS,
    caveats,
    confidence,
    efficiency,
    result_rows,
    verdict_count,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"


def figures(run: ZooRun) -> dict[str, tuple[str, str]]:
    """name -> (title, data URI)."""
    out = {}
    for name, (title, draw) in FIGURES.items():
        data = base64.b64encode(png(draw(run))).decode()
        out[name] = (title, f"data:image/png;base64,{data}")
    return out


def render(run: ZooRun) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    notes = caveats(run)
    no = {c.text: c.number for c in notes}
    return env.get_template("zoo_report.html").render(
        run=run,
        figures=figures(run),
        names=NAMES,
        caveat_list=notes,
        caveat_numbers=lambda cs: sorted({no[c] for c in cs if c in no}),
        n_verdicts=verdict_count(run),
        confidence=confidence,
        eff=efficiency(run),
        columns=COLUMNS,
        rows=result_rows(run),
    )


def write_report(run: ZooRun, out: Path) -> Path:
    path = out / "report.html"
    path.write_text(render(run))
    return path
