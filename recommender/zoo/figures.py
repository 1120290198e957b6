"""The zoo report's figures (matplotlib, Agg): each ``FIGURES`` entry draws a Figure,
``png`` turns it into bytes. Every artist that shows a measured value (a bar of finite
height, a scatter of trials, a grid cell with a status) carries ``gid="data"``, so
``data_artists`` tells a figure with data from an all-n/a placeholder.

Error bars: the probes record each timing's median and IQR, not its quartiles
(``probes/measure/timing.py:Timing``), so a bar's whisker is median +- IQR/2: as long as the
middle half of the timed iterations, placed symmetrically. The real quartiles are
usually skewed upwards (slow outliers), which these whiskers do not show.

Imported only by ``fwadvisor zoo``: the web process never loads matplotlib.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from probes.frameworks.facts import FACTS
from recommender.zoo import summary
from recommender.zoo.models import FrameworkRow, ZooRun

COLORS = {"torch": "#c2410c", "tensorflow": "#1d4ed8"}
NAMES: dict[str, str] = {f.name: f.label for f in FACTS.values()}
CHOICE_COLORS = {
    "torch": "#fdba74",
    "tensorflow": "#93c5fd",
    "either": "#e5e7eb",
    "neither": "#fca5a5",
    "failed": "#f87171",
    "-": "#ffffff",
}
EXPORT_COLORS = {
    "verified": "#86efac",
    "failed": "#fca5a5",
    "timeout": "#fde68a",
    "unsupported": "#e5e7eb",
}
Figure = Any


DATA = "data"  # gid of the artists that show a measured value


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def data_artists(fig: Figure) -> int:
    """How many artists of ``fig`` show a measured value (0: a placeholder)."""
    return sum(1 for a in fig.findobj() if a.get_gid() == DATA)


def _done(run: ZooRun) -> list[Any]:
    return [o for o in run.models if o.status == "done"]


def _bars(
    run: ZooRun,
    value: Callable[[FrameworkRow], float | None],
    err: Callable[[FrameworkRow], float | None] | None,
    ylabel: str,
    title: str,
    log: bool,
    ref: float | None = None,
) -> Figure:
    models = _done(run)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(models) + 2), 3.6))
    x = np.arange(len(models))
    for i, fw in enumerate(("torch", "tensorflow")):
        vals, errs = [], []
        for o in models:
            row = next((r for r in o.frameworks if r.framework == fw), None)
            v = value(row) if row else None
            e = err(row) if (row and err) else None
            vals.append(np.nan if v is None else v)
            errs.append(0.0 if e is None else e)
        bars = ax.bar(
            x + (i - 0.5) * 0.38,
            vals,
            0.38,
            yerr=errs if err else None,
            capsize=3,
            color=COLORS[fw],
            label=NAMES[fw],
        )
        for bar, v in zip(bars, vals, strict=True):
            if not np.isnan(v):
                bar.set_gid(DATA)
        for xi, v in zip(x, vals, strict=True):
            if np.isnan(v):
                ax.text(xi + (i - 0.5) * 0.38, 0, "n/a", ha="center", va="bottom", fontsize=7)
    if ref is not None:
        ax.axhline(ref, color="#111827", lw=0.8, ls="--")
    ax.set_xticks(x, [o.model for o in models], rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return fig


def latency(run: ZooRun) -> Figure:
    return _bars(
        run,
        lambda r: r.tuned_ms,
        lambda r: (r.tuned_iqr_ms or 0) / 2,
        "ms (log)",
        "Tuned latency at batch 1 (median; whiskers ±IQR/2, symmetric)",
        log=True,
    )


def throughput(run: ZooRun) -> Figure:
    return _bars(
        run,
        lambda r: r.throughput_sps,
        lambda r: (r.throughput_iqr_sps or 0) / 2,
        "samples/s (log)",
        "Tuned throughput at the largest profile batch (whiskers ±IQR/2, symmetric)",
        log=True,
    )


def memory(run: ZooRun) -> Figure:
    return _bars(
        run,
        lambda r: r.peak_memory_mb,
        None,
        "MB (log)",
        "Peak memory above the framework's baseline (tuned, batch 1)",
        log=True,
    )


def speedup(run: ZooRun) -> Figure:
    return _bars(
        run,
        lambda r: r.speedup,
        None,
        "default / tuned latency",
        "What tuning bought at batch 1 (dashed: no change)",
        log=False,
        ref=1.0,
    )


def efficiency(run: ZooRun) -> Figure:
    """Against the machine peak, or the best rate reached when that is higher (see
    ``summary.efficiency``): never above 100%."""
    eff = summary.efficiency(run)
    peak = eff.peak_gflops
    title = "Achieved FLOP rate / peak" + (f" ({peak:.0f} GFLOP/s)" if peak else "")
    return _bars(
        run,
        lambda r: None if r.efficiency is None else 100 * r.efficiency / eff.scale,
        None,
        "% of peak (log)",
        title,
        log=True,
        ref=100.0,
    )


def pareto(run: ZooRun) -> Figure:
    models = _done(run)
    cols = 4
    rows = max(1, -(-len(models) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, o in zip(axes.flat, models, strict=False):
        for r in o.frameworks:
            pts = [(p.latency_ms, p.memory_mb) for p in r.trials if p.memory_mb is not None]
            if pts:
                dots = ax.scatter(
                    *zip(*pts, strict=True), s=12, alpha=0.5, color=COLORS[r.framework]
                )
                dots.set_gid(DATA)
            front = [(p.latency_ms, p.memory_mb) for p in r.pareto if p.memory_mb is not None]
            if front:
                ax.plot(
                    *zip(*front, strict=True),
                    marker="o",
                    ms=4,
                    color=COLORS[r.framework],
                    label=NAMES[r.framework],
                )
        _pareto_axes(ax, o.model)
    for ax in list(axes.flat)[len(models) :]:
        ax.axis("off")
    fig.suptitle(
        "Latency/memory trade-off of every batch-1 trial; lines: Pareto fronts", y=1.0 + 0.06 / rows
    )
    fig.legend(
        handles=_pareto_legend(),
        loc="upper center",
        ncol=4,
        frameon=False,
        bbox_to_anchor=(0.5, 1.0 + 0.02 / rows),
        fontsize=8,
    )
    fig.tight_layout()
    return fig


def _tick(v: float, _pos: object = None) -> str:
    """A short tick label: 2400, 150, 0.45 (never 2.4e+03)."""
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _pareto_axes(ax: Any, title: str) -> None:
    """Linear axes with at most four ticks each, short labels: they never overlap
    (a log axis within one decade labelled its minor ticks on top of each other)."""
    ax.set_title(title, fontsize=9)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4, min_n_ticks=2))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, min_n_ticks=2))
    ax.xaxis.set_major_formatter(FuncFormatter(_tick))
    ax.yaxis.set_major_formatter(FuncFormatter(_tick))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(labelsize=7)
    ax.set_xlabel("latency, ms", fontsize=7)
    ax.set_ylabel("peak memory, MiB", fontsize=7)
    ax.grid(alpha=0.3)


def _pareto_legend() -> list[Any]:
    out: list[Any] = []
    for fw in ("torch", "tensorflow"):
        c = COLORS[fw]
        out.append(
            Line2D([], [], ls="", marker="o", ms=4, alpha=0.5, color=c, label=f"{NAMES[fw]} trial")
        )
        out.append(Line2D([], [], marker="o", ms=4, color=c, label=f"{NAMES[fw]} Pareto front"))
    return out


def _grid(
    cells: list[list[str]],
    rows: list[str],
    cols: list[str],
    colors: dict[str, str],
    title: str,
    notes: list[list[str]] | None = None,
) -> Figure:
    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 2.5, 0.34 * len(rows) + 1.2))
    for i, row in enumerate(cells):
        for j, c in enumerate(row):
            ax.add_patch(Rectangle((j, i), 1, 1, color=colors.get(c, "#ffffff"), ec="white"))
            label = c if not notes else f"{c}\n{notes[i][j]}" if notes[i][j] else c
            text = ax.text(j + 0.5, i + 0.5, label, ha="center", va="center", fontsize=7)
            if c != "-":
                text.set_gid(DATA)
    ax.set_xlim(0, len(cols))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks(np.arange(len(cols)) + 0.5, cols, fontsize=8)
    ax.set_yticks(np.arange(len(rows)) + 0.5, rows, fontsize=8)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_title(title)
    return fig


def deployment(run: ZooRun) -> Figure:
    targets: list[str] = sorted({c.target for o in run.models for c in o.exports})
    rows, cells = [], []
    for o in run.models:
        for fw in ("torch", "tensorflow"):
            rows.append(f"{o.model} / {NAMES[fw]}")
            if o.status == "failed":
                cells.append(["failed"] * len(targets))
                continue
            by: dict[str, str] = {c.target: c.status for c in o.exports if c.framework == fw}
            cells.append([by.get(t, "-") for t in targets])
    return _grid(
        cells,
        rows,
        targets or ["-"],
        {**EXPORT_COLORS, "failed": "#f87171"},
        "Deployment: each export built, run and compared with the source model",
    )


def verdicts(run: ZooRun) -> Figure:
    profiles = run.config.profiles
    rows, cells, notes = [], [], []
    for o in run.models:
        rows.append(o.model)
        by = {v.profile: v for v in o.verdicts}
        if o.status == "failed":
            cells.append(["failed"] * len(profiles))
            notes.append([""] * len(profiles))
            continue
        cells.append([by[p].choice if p in by else "-" for p in profiles])
        notes.append([f"{by[p].confidence:.0%}" if p in by else "" for p in profiles])
    return _grid(
        cells, rows, profiles, CHOICE_COLORS, "Verdict per requirement profile (confidence)", notes
    )


FIGURES: dict[str, tuple[str, Callable[[ZooRun], Figure]]] = {
    "latency": ("Tuned latency", latency),
    "throughput": ("Tuned throughput", throughput),
    "memory": ("Peak memory", memory),
    "speedup": ("Tuned / default speed-up", speedup),
    "pareto": ("Pareto fronts", pareto),
    "deployment": ("Deployment matrix", deployment),
    "verdicts": ("Verdict per profile", verdicts),
    "efficiency": ("Efficiency against the machine's peak", efficiency),
}
