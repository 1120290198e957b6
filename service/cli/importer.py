"""``fwadvisor import FILE``: ONNX or Keras -> spec + safetensors, then three-way parity."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from probes.config import Settings
from probes.errors import AdvisorError, UnsupportedOpsError
from probes.importers import ImportResult, import_file
from probes.importers.cache import cached_import
from probes.importers.parity import ThreeWayReport, three_way_parity
from probes.runners.local import SubprocessRunner
from probes.spec import analyze, build_graph
from service.cli.render import si, table


class ImportReport(BaseModel):
    spec_file: str
    weights_file: str
    model: str
    nodes: int
    params: int
    flops: int
    import_s: float
    parity: ThreeWayReport | None


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "import", help="turn an ONNX or Keras file into a spec plus weights"
    )
    p.add_argument("file", metavar="FILE", help="a .onnx or .keras file")
    p.add_argument("--out", default=None, help="spec YAML to write (default: ./<name>.yaml)")
    p.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=D1,D2",
        help="per-sample shape of an input with dynamic dimensions (repeatable)",
    )
    p.add_argument("--no-parity", action="store_true", help="skip the three-way check")
    p.add_argument("--batch", type=int, default=2, help="parity batch (a static batch wins)")
    p.add_argument("--seed", type=int, default=0, help="seed of the parity inputs")
    return p


def _shapes(items: list[str]) -> dict[str, list[int]] | None:
    out: dict[str, list[int]] = {}
    for item in items:
        name, _, dims = item.partition("=")
        try:
            out[name] = [int(d) for d in dims.split(",")]
        except ValueError:
            raise AdvisorError(f"--input-shape {item!r}: expected NAME=D1,D2,...") from None
    return out or None


def parity_for(
    res: ImportResult, source: Path, settings: Settings, batch: int, seed: int
) -> ThreeWayReport:
    static = res.extra.get("static_batch")
    return three_way_parity(
        res.spec,
        source,
        SubprocessRunner(timeout_s=settings.probe_timeout_s),
        batch=int(static or batch),
        seed=seed,
        input_dtypes=res.extra.get("input_dtypes"),
    )


def render_parity(r: ThreeWayReport) -> str:
    rows = [
        (c.name, "PASS" if c.passed else "FAIL", f"{c.max_abs_diff:.2e}", f"{c.tolerance:.1e}")
        for c in r.compared
    ]
    rows += [(f"{side}: did not run", "FAIL", "-", why[:80]) for side, why in r.failures.items()]
    verdict = "PASS" if r.passed else "FAIL"
    return (
        table(["compared", "parity", "max|diff|", "tolerance"], rows, align_right=(2, 3))
        + f"\nthree-way parity {verdict} at batch {r.batch} "
        "(max|diff| <= 1e-4 x max(1, max|output|))"
    )


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    source = Path(args.file)
    out = Path(args.out) if args.out else Path.cwd() / f"{source.stem}.yaml"
    try:
        res = import_file(source, out, input_shapes=_shapes(args.input_shape))
    except UnsupportedOpsError as e:
        if args.json:
            print(json.dumps({"error": e.to_dict()}, indent=2))
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    a = analyze(build_graph(res.spec))
    if not args.json:
        print(
            f"imported {source.name} in {res.wall_s:.2f} s -> {res.spec_file} "
            f"+ {res.weights_file.name}\n{len(res.spec.nodes)} nodes, {a.params:,} params, "
            f"{si(a.flops)} FLOPs/sample",
            flush=True,
        )
    report = None if args.no_parity else parity_for(res, source, settings, args.batch, args.seed)
    summary = ImportReport(
        spec_file=str(res.spec_file),
        weights_file=str(res.weights_file),
        model=res.spec.name,
        nodes=len(res.spec.nodes),
        params=a.params,
        flops=a.flops,
        import_s=res.wall_s,
        parity=report,
    )
    if args.json:
        print(summary.model_dump_json(indent=2))
    elif report is not None:
        print(render_parity(report))
    return 0 if report is None or report.passed else 1


def cmd_parity_file(args: argparse.Namespace, settings: Settings, name: str) -> ThreeWayReport:
    res = cached_import(Path(name), settings.data_dir / "imports")
    return parity_for(res, Path(name), settings, args.batch, args.seed)
