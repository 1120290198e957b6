"""Per-operator kernel models fitted on a calibration's cells (numpy only).

Per configuration (framework and settings):
- ``call_s`` and ``dispatch_s``: a chain of k tiny tanhs costs ``call + k x dispatch``;
- per kernel key, a cost ``c0 + c1 FLOPs + c2 bytes + c3 steps`` with non-negative
  prices, fitted on relative error, times a log-residual correction: a node within
  ``EXACT_LOG10`` of a cell takes that cell's residual (a lookup table), else the
  residuals of the nearest cells in (log FLOPs, log bytes, batch coordinate), Gaussian
  weighted and shrunk; the leave-one-out error of that model is the key's sigma;
- ``fusion``: what the elementwise epilogue (batch_norm, relu, ...) after a conv or
  dense costs against its own cells, from the chains: in [0, 1] where a graph compiler
  fuses it (0 = free), in [1, MAX_EPILOGUE] in eager mode (it reads a fresh output).
The constants and the measurements behind them are in ``fitknobs``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, PrivateAttr

from probes.calibrate.cells import CellResult
from probes.calibrate.grid import CONFIGS, DEFAULT_CONFIGS
from probes.calibrate.store import CalibEntry, Calibration
from probes.spec import build_graph
from recommender.predictor.fitknobs import (
    BANDWIDTH_LOG10,
    BATCH_SCALE,
    CELL_STAT,
    EXACT_LOG10,
    MAX_EPILOGUE,
    SHRINK,
    STALL,
    STEADY,
)
from recommender.predictor.nodes import NodeCost, node_costs

Floats = npt.NDArray[np.float64]
DEFAULT_SIGMA = 0.35  # ln: a key with fewer than 3 cells
MIN_KERNEL_S = 1e-7


class KernelModel(BaseModel):
    coef: list[float]  # seconds per unit of [1, flops, bytes, steps]
    points: list[list[float]]  # per cell: log10(1 + flops), log10(1 + bytes), batch coordinate
    residuals: list[float]  # per cell: ln(measured / base cost)
    sigma: float  # ln, leave-one-out of the interpolated model
    n: int
    _arrays: tuple[Floats, Floats, Floats] | None = PrivateAttr(default=None)

    def arrays(self) -> tuple[Floats, Floats, Floats]:
        """coef, points, residuals as arrays (built once: predict mode's hot path)."""
        if self._arrays is None:
            pts = np.array(self.points, dtype=float).reshape(-1, 3)
            self._arrays = (np.array(self.coef), pts, np.array(self.residuals, dtype=float))
        return self._arrays


class ConfigModel(BaseModel):
    key: str
    framework: str
    settings: dict[str, object]
    call_s: float
    dispatch_s: float
    fusion: float
    kernels: dict[str, KernelModel]
    borrowed: list[str] = []  # kernel keys taken from the framework's default config


def features(c: NodeCost) -> Floats:
    return np.array([1.0, c.flops, c.bytes, c.steps])


def _point(c: NodeCost) -> list[float]:
    return [math.log10(1 + c.flops), math.log10(1 + c.bytes), BATCH_SCALE * math.log10(c.batch)]


def nnls_relative(X: Floats, y: Floats) -> Floats:
    """Non-negative least squares on relative error, by enumerating column subsets
    (at most four columns): the best fit whose prices are all >= 0."""
    scale = np.maximum(np.abs(X).max(axis=0), 1e-30)
    A = (X / scale) / y[:, None]
    b = np.ones(len(y))
    cols = [j for j in range(X.shape[1]) if np.any(X[:, j] != 0)]
    best, best_err = np.zeros(X.shape[1]), math.inf
    for r in range(1, len(cols) + 1):
        for sub in itertools.combinations(cols, r):
            c, *_ = np.linalg.lstsq(A[:, sub], b, rcond=None)
            if np.any(c < 0):
                continue
            err = float(np.sum((A[:, sub] @ c - b) ** 2))
            if err < best_err:
                best_err, best = err, np.zeros(X.shape[1])
                best[list(sub)] = c
    out: Floats = best / scale
    return out


def interpolate(points: Floats, residuals: Floats, q: Floats) -> float:
    if len(residuals) == 0:
        return 0.0
    return float(_corrections(points, residuals, q[None, :])[0])


def _corrections(points: Floats, residuals: Floats, q: Floats) -> Floats:
    """Per query row: the residual of a cell within ``EXACT_LOG10`` (the nearest), else
    the Gaussian-weighted residuals of the cells, shrunk towards 0."""
    d2 = np.sum((q[:, None, :] - points[None, :, :]) ** 2, axis=2)
    w = np.exp(-d2 / BANDWIDTH_LOG10**2)
    smooth = w @ residuals / (w.sum(axis=1) + SHRINK)
    nearest = d2.argmin(axis=1)
    exact: Floats = np.where(d2.min(axis=1) < EXACT_LOG10**2, residuals[nearest], smooth)
    return exact


def fit_kernel(
    costs: list[NodeCost],
    times: list[float],
    dispatch: float = 0.0,
    steady: list[bool] | None = None,
) -> KernelModel:
    """One cell: dispatch plus a price on its FLOPs (else its bytes); more: NNLS, then
    once more without the cells ``STALL`` x slower than the fit that were not
    ``steady`` (a kernel that waited for a descheduled thread), which then take no part
    in the interpolation either. A steady cell, whose calls agreed, is slow for real: a
    regime the prices cannot follow (XLA's 512-channel conv on 2x2 took 66 ms at batch
    8, against 2.8 ms in a traced function), which only the interpolation can carry."""
    X = np.array([features(c) for c in costs])
    y = np.maximum(np.array(times), MIN_KERNEL_S)
    pts = np.array([_point(c) for c in costs])
    if len(y) == 1:
        col = 1 if X[0, 1] > 0 else 2
        coef = np.zeros(4)
        coef[0] = min(dispatch, y[0] / 2)
        coef[col] = (y[0] - coef[0]) / max(X[0, col], 1.0)
    else:
        coef = nnls_relative(X, y)
        res = np.log(y / np.maximum(X @ coef, MIN_KERNEL_S))
        keep = (res - np.median(res) < math.log(STALL)) | np.array(steady or [False] * len(y))
        if len(y) >= 4 and 3 <= keep.sum() < len(y):
            X, y, pts = X[keep], y[keep], pts[keep]
            coef = nnls_relative(X, y)
    res = np.log(y / np.maximum(X @ coef, MIN_KERNEL_S))
    loo = [
        res[i] - interpolate(np.delete(pts, i, 0), np.delete(res, i), pts[i]) for i in range(len(y))
    ]
    sigma = float(np.sqrt(np.mean(np.square(loo)))) if len(y) >= 3 else DEFAULT_SIGMA
    return KernelModel(
        coef=coef.tolist(),
        points=pts.tolist(),
        residuals=res.tolist(),
        sigma=max(sigma, 0.05),
        n=len(y),
    )


def kernel_times(k: KernelModel, costs: list[NodeCost]) -> Floats:
    """``kernel_time`` of many nodes at once (one distance matrix)."""
    coef, pts, res = k.arrays()
    X = np.array([[1.0, c.flops, c.bytes, c.steps] for c in costs])
    base = np.maximum(X @ coef, MIN_KERNEL_S)
    if len(res) == 0:
        return base
    batch = np.array([c.batch for c in costs], dtype=float)
    q = np.c_[np.log10(1 + X[:, 1:3]), BATCH_SCALE * np.log10(batch)]  # _point, vectorised
    out: Floats = base * np.exp(_corrections(pts, res, q))
    return out


def kernel_time(k: KernelModel, c: NodeCost) -> float:
    coef, pts, res = k.arrays()
    base = max(coef[0] + c.flops * coef[1] + c.bytes * coef[2] + c.steps * coef[3], MIN_KERNEL_S)
    return float(base * math.exp(interpolate(pts, res, np.array(_point(c)))))


def _ok(
    entries: dict[str, CalibEntry], bound: dict[str, float] | None = None
) -> list[tuple[CalibEntry, list[NodeCost], float]]:
    """Usable cells with their time; ``bound``: by cell id, a time this cell cannot
    exceed on an idle machine (the same cell with one thread)."""
    out = []
    for e in entries.values():
        t = cell_time(e.result)
        if t and bound and e.cell.id in bound:
            t = min(t, bound[e.cell.id])
        if e.result.status == "ok" and t:
            out.append((e, node_costs(build_graph(e.cell.spec), e.cell.batch), t))
    return out


def _steady(r: CellResult) -> bool:
    return bool(r.min_s and r.q25_s and r.q25_s <= STEADY * r.min_s)


def cell_time(r: CellResult) -> float | None:
    stat = {"min": r.min_s, "q25": r.q25_s}.get(CELL_STAT)
    return stat or r.median_s


def _dispatch(rows: list[tuple[CalibEntry, list[NodeCost], float]]) -> tuple[float, float]:
    """(call, per node) from the tanh chains: t = call + k x dispatch."""
    pts = [(len(costs), t) for e, costs, t in rows if e.cell.group == "dispatch"]
    if len({k for k, _ in pts}) < 2:
        return 2e-5, 5e-6
    k = np.array([p[0] for p in pts], float)
    t = np.array([p[1] for p in pts])
    slope, icpt = np.polyfit(k, t, 1)
    d = max(float(slope), 1e-7)
    return max(float(icpt), 1e-6), d


def fit_config(
    key: str,
    entries: dict[str, CalibEntry],
    settings: dict[str, object],
    bound: dict[str, float] | None = None,
) -> ConfigModel:
    rows = _ok(entries, bound)
    call, dispatch = _dispatch(rows)
    by_key: dict[str, tuple[list[NodeCost], list[float], list[bool]]] = {}
    for e, costs, t in rows:
        if len(costs) == 1 and e.cell.group != "chain":  # a chain of one tanh is a tanh cell
            xs, ts, st = by_key.setdefault(costs[0].key, ([], [], []))
            xs.append(costs[0])
            ts.append(max(t - call, MIN_KERNEL_S))
            st.append(_steady(e.result))
    kernels = {k: fit_kernel(xs, ts, dispatch, st) for k, (xs, ts, st) in by_key.items()}
    return ConfigModel(
        key=key,
        framework=key.split("/")[0],
        settings=settings,
        call_s=call,
        dispatch_s=dispatch,
        fusion=1.0,
        kernels=kernels,
    )


#: Configurations without a graph compiler run every node as its own kernel.
UNFUSED = frozenset({"torch/eager", "torch/eager-t1"})
Signature = tuple[str, float, float]


def _signature(c: NodeCost) -> Signature:
    return (c.key, c.flops, c.bytes)


def _fusion(
    model: ConfigModel,
    chains: list[tuple[list[NodeCost], float]],
    singles: dict[Signature, float],
) -> float:
    """Median over chains of (chain - call - head) / epilogue: in [0, 1] where a graph
    compiler fuses, in [1, MAX_EPILOGUE] in eager configurations, where nothing fuses.
    A node with a single-op cell of the same shape and batch uses that cell's time,
    else its prediction."""
    from recommender.predictor.opmodel import node_time  # the one place nodes are priced

    low, high = (1.0, MAX_EPILOGUE) if model.key in UNFUSED else (0.0, 1.0)

    def t(c: NodeCost) -> float:
        return singles.get(_signature(c)) or node_time(model, c)

    shares = []
    for costs, total in chains:
        tail = sum(t(c) for c in costs[1:])
        if tail > 0:
            shares.append((total - model.call_s - t(costs[0])) / tail)
    return float(min(max(np.median(shares), low), high)) if shares else 1.0


#: On an idle machine all threads are not slower than one; on a shared one a
#: multi-threaded kernel waits for its descheduled threads. The one-thread cell of the
#: same id bounds the default configuration's cell.
ONE_THREAD = {"torch/eager": "torch/eager-t1", "tensorflow/function": "tensorflow/function-t1"}


def _thread_bound(cal: Calibration, key: str) -> dict[str, float] | None:
    t1 = cal.configs.get(ONE_THREAD.get(key, ""))
    if t1 is None:
        return None
    times = {i: cell_time(e.result) for i, e in t1.entries.items() if e.result.status == "ok"}
    return {i: t for i, t in times.items() if t}


def fit_calibration(cal: Calibration) -> dict[str, ConfigModel]:
    """Every configuration's model; a tuned configuration borrows the kernels it did
    not measure from its framework's default configuration."""
    out = {
        key: fit_config(key, cc.entries, cc.settings, _thread_bound(cal, key))
        for key, cc in cal.configs.items()
        if key in CONFIGS and any(e.result.status == "ok" for e in cc.entries.values())
    }
    for key, m in out.items():
        default = next((d for d in DEFAULT_CONFIGS if d.startswith(m.framework + "/")), None)
        if default is not None and default != key and default in out:
            for k, km in out[default].kernels.items():
                if k not in m.kernels:
                    m.kernels[k] = km
                    m.borrowed.append(k)
        rows = _ok(cal.configs[key].entries, _thread_bound(cal, key))
        singles = {_signature(c[0]): t - m.call_s for e, c, t in rows if len(c) == 1}
        chains = [(c, t) for e, c, t in rows if e.cell.group == "chain"]
        m.fusion = _fusion(m, chains, singles)
    return out
