"""``fwadvisor probe NAME --workload custom-op``: what the model's custom ops cost and
what they allow, per framework (see probes/checks/custom_ops.py)."""

from __future__ import annotations

import argparse
import sys

from probes.checks.custom_ops import CustomOpReport, FrameworkCustomOps, custom_op_report
from probes.config import Settings
from probes.errors import AdvisorError
from probes.export.checks import ExportCheck, parse_targets
from probes.frameworks.facts import expand
from probes.measure.timing import MeasureConfig
from probes.protocol import FRAMEWORKS
from probes.spec import ModelSpec
from service.cli.deploy import export_prober
from service.cli.render import table


def _ms(fw: FrameworkCustomOps, mode: str, what: str) -> tuple[str, str]:
    if fw.data is None:
        return (fw.status.upper(), "")
    m = next((m for m in fw.data.modes if m.mode == mode), None)
    if m is None:
        return ("", "")
    t = getattr(m, what)
    if t is None:
        return ("n/a", "")
    ratio = fw.ratio(mode, what)
    return (f"{t.median_s * 1e3:.3f}", f"x{ratio:.2f}" if ratio is not None else "")


def _cost_table(rep: CustomOpReport) -> str:
    modes = ["autodiff", "explicit", "opaque"]
    rows = []
    for mode in modes:
        cells: list[str] = []
        for fw in rep.frameworks:
            cells += [*_ms(fw, mode, "infer"), *_ms(fw, mode, "train")]
        if any(cells):
            rows.append([mode, *cells])
    heads = [h for fw in rep.frameworks for h in (f"{fw.framework} infer ms", "", "train ms", "")]
    return table(["mode", *heads], rows, align_right=tuple(range(1, len(heads) + 1)))


def _details(rep: CustomOpReport) -> list[str]:
    out = []
    for fw in rep.frameworks:
        if fw.data is None:
            out.append(f"  {fw.framework}: {fw.status}: {fw.reason}")
            continue
        for m in fw.data.modes:
            for why in (m.infer_reason, m.train_reason):
                if why:
                    out.append(f"  {fw.framework} {m.mode}: {why}")
            for c in m.compile:
                took = f", {c.time_s:.1f} s" if c.time_s is not None else ""
                graphs = (
                    f" ({c.graphs} graph(s), {c.graph_breaks} break(s))"
                    if c.graph_breaks is not None
                    else ""
                )
                state = "ok" if c.ok else "NO"
                out.append(
                    f"  {fw.framework} {m.mode}: {c.name}: {state}{graphs}{took}; {c.detail}"
                )
    return out


def _grads(rep: CustomOpReport) -> list[str]:
    out = []
    for fw in rep.frameworks:
        for node, g in (fw.data.grads if fw.data else {}).items():
            worst = ", ".join(f"{k} {v:.1e}" for k, v in g.max_abs_err.items())
            verdict = "PASS" if g.passed else "FAIL"
            out.append(f"  {fw.framework} {node}: {verdict} (tol {g.tolerance:.1e}; {worst})")
    return out


def _export_cell(base: ExportCheck | None, opaque: ExportCheck | None) -> str:
    def s(c: ExportCheck | None) -> str:
        return "-" if c is None else {"verified": "ok", "failed": "FAIL"}.get(c.status, "n/a")

    return f"{s(base)} -> {s(opaque)}"


def _export_details(rep: CustomOpReport) -> list[str]:
    """Every failed cell's reason and every cell's notes (Flex needed, checked in a fresh
    process, ...), by mode."""
    out = []
    for mode, report in rep.exports.items():
        for c in report.checks:
            where = f"  {mode} {c.framework} {c.target}"
            if c.status == "failed":
                out.append(f"{where}: FAIL: {c.reason}")
            out += [f"{where}: {note}" for note in c.notes]
    return out


def render(rep: CustomOpReport) -> str:
    lines = [
        f"{rep.model}: custom nodes {', '.join(rep.nodes)}; batch {rep.batch}, eager; "
        "x = time over the built-in (autodiff) baseline",
        _cost_table(rep),
        "",
        "compile and failures:",
        *_details(rep),
        "",
        "gradient check (float64 central differences vs each gradient source):",
        *_grads(rep),
    ]
    base, opaque = rep.exports.get("autodiff"), rep.exports.get("opaque")
    if base is not None and opaque is not None:
        rows = [
            [t, *(_export_cell(base.cell(fw, t), opaque.cell(fw, t)) for fw in FRAMEWORKS)]
            for t in base.targets
        ]
        lines += [
            "",
            "exports: built-in ops -> opaque kernel",
            table(["target", *FRAMEWORKS], rows),
            *_export_details(rep),
        ]
    if rep.needs:
        lines += ["", "what an opaque kernel then needs:"]
        lines += [f"  {n.framework} {n.target}: {n.needs}" for n in rep.needs]
    return "\n".join(lines)


def cmd_custom_op(args: argparse.Namespace, settings: Settings, spec: ModelSpec) -> int:
    fws = expand(args.framework)
    try:
        targets = parse_targets(args.export_targets) if args.export_targets != "none" else []
    except ValueError as e:
        raise AdvisorError(str(e)) from None
    prober = export_prober(args, settings, MeasureConfig(min_time_s=args.min_time))

    def progress(what: str) -> None:
        if not args.json:
            print(f"custom-op {spec.name}: {what} ...", file=sys.stderr, flush=True)

    rep = custom_op_report(
        spec,
        prober,
        frameworks=fws,
        batch=args.batch[0],
        compile=not args.no_compile,
        targets=targets,
        export_measure=MeasureConfig(min_time_s=min(args.min_time, 0.3)),
        progress=progress,
    )
    print(rep.model_dump_json(indent=2) if args.json else render(rep))
    ok = all(fw.status == "ok" for fw in rep.frameworks)
    grads_ok = all(g.passed for fw in rep.frameworks if fw.data for g in fw.data.grads.values())
    return 0 if ok and grads_ok else 1
