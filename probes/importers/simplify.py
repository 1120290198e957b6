"""Clean-ups on the emitted spec: dead nodes, identity reshapes, reshape chains."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probes.importers.onnx_import import Imported

SHAPE_ONLY = ("reshape", "flatten")


def _live(spec: dict[str, Any]) -> set[str]:
    by_id = {n["id"]: n for n in spec["nodes"]}
    live: set[str] = set()
    stack = list(spec["outputs"])
    while stack:
        cur = stack.pop()
        if cur not in live:
            live.add(cur)
            stack.extend(by_id[cur]["inputs"] if cur in by_id else [])
    return live


def _rename(spec: dict[str, Any], old: str, new: str) -> None:
    for n in spec["nodes"]:
        n["inputs"] = [new if r == old else r for r in n["inputs"]]
    spec["outputs"] = [new if r == old else r for r in spec["outputs"]]


def simplify(imp: Imported) -> Imported:
    spec, shapes = imp.spec, imp.shapes
    changed = True
    while changed:
        changed = False
        users: dict[str, int] = {}
        for n in spec["nodes"]:
            for r in n["inputs"]:
                users[r] = users.get(r, 0) + 1
        by_id = {n["id"]: n for n in spec["nodes"]}
        for n in spec["nodes"]:
            if n["op"] not in SHAPE_ONLY:
                continue
            src = n["inputs"][0]
            if shapes[src].shape == shapes[n["id"]].shape and n["id"] not in spec["outputs"]:
                _rename(spec, n["id"], src)
                changed = True
                break
            inner = by_id.get(src)
            if inner is not None and inner["op"] in SHAPE_ONLY and users.get(src) == 1:
                n["inputs"] = [inner["inputs"][0]]
                n["op"], n["params"] = "reshape", {"shape": list(shapes[n["id"]].shape)}
                changed = True
                break
        live = _live(spec)
        kept = [n for n in spec["nodes"] if n["id"] in live]
        changed = changed or len(kept) != len(spec["nodes"])
        spec["nodes"] = kept
    live = _live(spec)
    imp.weights = {k: v for k, v in imp.weights.items() if k in live}
    return imp
