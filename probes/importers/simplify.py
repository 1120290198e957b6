"""Clean-ups on the emitted spec: dead nodes, identity reshapes, reshape chains."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

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


def _sole_user(spec: dict[str, Any], ref: str, op: str) -> dict[str, Any] | None:
    found: list[dict[str, Any]] = [n for n in spec["nodes"] if ref in n["inputs"]]
    if len(found) == 1 and found[0]["op"] == op and ref not in spec["outputs"]:
        return found[0]
    return None


def _group_chain(imp: Imported, r1: dict[str, Any]) -> list[dict[str, Any]] | None:
    """reshape [C, *S] -> [G, L], instance_norm with unit weights, reshape back: how
    torch exports nn.GroupNorm (its per-channel scale and shift follow as affines)."""
    spec, shapes = imp.spec, imp.shapes
    x, g = shapes[r1["inputs"][0]].shape, shapes[r1["id"]].shape
    if len(g) != 2 or len(x) < 2 or x[0] % g[0] or g[0] == x[0]:
        return None
    norm = _sole_user(spec, r1["id"], "instance_norm")
    r2 = _sole_user(spec, norm["id"], "reshape") if norm else None
    if norm is None or r2 is None or shapes[r2["id"]].shape != x:
        return None
    w = imp.weights.get(norm["id"], {})
    if not (np.all(w["gamma"] == 1) and not np.any(w["beta"])):
        return None
    chain = [r1, norm, r2]
    want = [x[0], *([1] * (len(x) - 1))]
    for _ in range(2):  # the scale, then the shift (or one affine with both)
        nxt = _sole_user(spec, chain[-1]["id"], "affine")
        if nxt is None or list(nxt["params"]["shape"]) != want:
            break
        if len(chain) == 4 and (  # (x * s) + b only, never (x + b) * s
            set(imp.weights[chain[3]["id"]]) != {"scale"}
            or set(imp.weights[nxt["id"]]) != {"shift"}
        ):
            break
        chain.append(nxt)
    return chain


def _fuse_group_norms(imp: Imported) -> None:
    for r1 in [n for n in imp.spec["nodes"] if n["op"] == "reshape"]:
        chain = _group_chain(imp, r1)
        if chain is None:
            continue
        c = imp.shapes[r1["inputs"][0]].shape[0]
        w = {"gamma": np.ones(c, np.float32), "beta": np.zeros(c, np.float32)}
        for n in chain[3:]:
            for k, v in imp.weights[n["id"]].items():
                w["gamma" if k == "scale" else "beta"] = v.reshape(c).astype(np.float32)
        last, groups = chain[-1], imp.shapes[r1["id"]].shape[0]
        eps = chain[1]["params"].get("eps", 1e-5)
        last.update(op="group_norm", inputs=list(r1["inputs"]))
        last["params"] = {"groups": groups, "eps": eps}
        imp.weights[last["id"]] = w  # the other chain nodes are now dead: removed below


def simplify(imp: Imported) -> Imported:
    _fuse_group_norms(imp)
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
