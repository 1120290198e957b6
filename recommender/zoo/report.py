"""The zoo run as one self-contained HTML page: figures inlined as PNG data URIs,
the verdicts, the flips, every failure with its reason, and the environment."""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from recommender.zoo.figures import FIGURES, NAMES, png
from recommender.zoo.models import ZooRun

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
    return env.get_template("zoo_report.html").render(run=run, figures=figures(run), names=NAMES)


def write_report(run: ZooRun, out: Path) -> Path:
    path = out / "report.html"
    path.write_text(render(run))
    return path
