"""Text rendering of probe and convergence reports (the JSON form is the model itself)."""

from __future__ import annotations

from probes.checks.convergence import ConvergenceReport
from probes.protocol import FRAMEWORKS
from service.cli.render import table
from service.schemas import ProbeReport, ProbeRow


def _ms(x: float | None) -> str:
    return "-" if x is None else (f"{x * 1e3:.3f}" if x < 0.01 else f"{x * 1e3:.1f}")


def _row_cells(r: ProbeRow) -> list[str]:
    m = r.result.measurement
    if r.result.status != "ok" or m is None:
        return [
            r.workload,
            str(r.batch),
            r.framework,
            r.settings,
            r.result.status.upper(),
            *["-"] * 7,
        ]
    t = m.timing
    mem = m.memory.peak_rss_bytes / 2**20 if m.memory else None
    busy = "~" if m.contention and m.contention.flagged else ""
    return [
        r.workload,
        str(r.batch),
        r.framework,
        r.settings,
        (_ms(t.median_s) if t else _ms(m.phases.total_s)) + busy,
        _ms(t.p90_s) if t else "-",
        _ms(t.p99_s) if t else "-",
        f"{100 * t.iqr_s / t.median_s:.0f}%{'!' if t.noisy else ''}" if t else "-",
        f"{m.throughput_sps:,.0f}" if m.throughput_sps else "-",
        _ms(m.phases.first_result_s),
        "-" if mem is None else f"{mem:,.0f}",
        f"{100 * m.efficiency:.1f}%" if m.efficiency is not None else "-",
    ]


def render(report: ProbeReport) -> str:
    env = report.environment
    head = (
        f"{report.model} {report.input_shapes} on {env.cpu_model}, "
        f"{env.cores_available} cores; peak {report.machine_peak_gflops or 0:.0f} GFLOP/s"
    )
    rounds = max((r.round for r in report.rows), default=1)
    rows = [[*_row_cells(r), str(r.round)] for r in report.rows]
    body = table(
        [
            "workload",
            "batch",
            "framework",
            "settings",
            "median ms",
            "p90",
            "p99",
            "IQR",
            "samples/s",
            "first ms",
            "mem MiB",
            "eff",
            "round",
        ],
        rows,
        align_right=tuple(range(4, 12)),
    )
    failures = [
        f"  {r.framework} {r.workload} b={r.batch}: {r.result.status}: {r.result.reason or ''}"
        for r in report.rows
        if r.result.status != "ok" or r.result.measurement is None
    ]
    verdicts = [f"  {c.workload} b={c.batch}: {c.note}" for c in report.comparisons]
    legend = (
        "cold: median column is spawn->first result; IQR '!' = noisy (>10% of median); "
        "'~' = measured while the machine was contended (see contention in --json); "
        "mem = peak RSS above the post-import baseline; eff = achieved / machine peak; "
        f"comparisons pair the {rounds} round(s) (torch/TF per round)"
    )
    return "\n".join([head, body, *failures, *verdicts, legend])


def render_convergence(rep: ConvergenceReport) -> str:
    by_fw = {c.framework: c for c in rep.curves}
    rows = []
    for i in range(max(len(c.epochs) for c in rep.curves) if rep.curves else 0):
        row = [str(i + 1)]
        for fw in FRAMEWORKS:
            eps = by_fw[fw].epochs if fw in by_fw else []
            e = eps[i] if i < len(eps) else None
            row += (
                [f"{e.train_loss:.4f}", f"{e.val_metric:.4f}", f"{e.train_time_s:.2f}"]
                if e
                else ["-", "-", "-"]
            )
        rows.append(row)
    head = (
        f"convergence of {rep.model} on {rep.dataset}: {rep.metric}, "
        f"{rep.workload.optimizer} lr={rep.workload.lr} batch={rep.workload.batch}; "
        f"same initial weights, data and batch order in both frameworks"
    )
    m = rep.metric.removeprefix("val_")
    table_text = table(
        ["epoch", "torch loss", f"torch {m}", "torch s", "tf loss", f"tf {m}", "tf s"],
        rows,
        align_right=tuple(range(7)),
    )
    lines = [head, table_text]
    for c in rep.curves:
        tta = (
            f"reached {rep.target} after {c.time_to_target_s:.2f} s (epoch {c.epochs_to_target})"
            if c.time_to_target_s is not None
            else f"did not reach {rep.target}"
            if rep.target is not None
            else "no target"
        )
        lines.append(
            f"  {c.framework} ({c.settings}): {c.status}"
            f"{': ' + c.reason[:80] if c.reason else ''}; {tta}"
        )
    if rep.final_gap is not None:
        lines.append(f"  final {rep.metric} gap between frameworks: {rep.final_gap:.4f}")
    return "\n".join(lines)
