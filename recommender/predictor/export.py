"""Fit the predictor and write it as a ``CompiledModel`` (JSON), for processes that must
not import scikit-learn.

Run as a program by ``recommender/predictor/cache.py``, in a process of its own:

    python -m recommender.predictor.export --out FILE [--dataset CSV] [--env-key KEY]

This module imports scikit-learn (through ``Predictor``); the compiled model it writes
needs only numpy (``recommender/predictor/compiled.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

# scikit-learn ships no type information.
from sklearn.ensemble import HistGradientBoostingRegressor  # type: ignore[import-untyped]

from probes.measure.environment import environment
from recommender.predictor.compiled import CompiledModel, Regressor, Trees
from recommender.predictor.cost import CostModel
from recommender.predictor.dataset import DEFAULT_DATASET, load_dataset
from recommender.predictor.estimator import PerfPredictor
from recommender.predictor.features import FEATURES
from recommender.predictor.instant import Predictor


def export_trees(est: HistGradientBoostingRegressor) -> Trees:
    """The trees of a fitted regressor as they predict raw (unbinned) data."""
    if type(est._loss.link).__name__ != "IdentityLink" or est.n_trees_per_iteration_ != 1:
        raise ValueError("only single-output regressors with an identity link compile")
    if est.is_categorical_ is not None:
        raise ValueError("categorical splits do not compile")
    cols: dict[str, list[list[Any]]] = {k: [] for k in Trees.model_fields if k != "baseline"}
    fields = {
        "feature": "feature_idx",
        "threshold": "num_threshold",
        "left": "left",
        "right": "right",
        "is_leaf": "is_leaf",
        "value": "value",  # already shrunk by the learning rate (grower._apply_shrinkage)
        "missing_left": "missing_go_to_left",
    }
    for (tree,) in est._predictors:
        nodes = tree.nodes
        for ours, theirs in fields.items():
            column = nodes[theirs]
            cells = column.astype(bool) if column.dtype == np.uint8 else column
            cols[ours].append(cells.tolist())
    return Trees(baseline=float(np.ravel(est._baseline_prediction)[0]), **cols)


def export_regressor(est: PerfPredictor) -> Regressor:
    """A fitted ``PerfPredictor`` with a cost base (or none) as plain numbers."""
    parts = est.parts_
    base = parts["base"]
    if base is not None and not isinstance(base, CostModel):
        raise ValueError("only the cost base compiles, not the ridge base (terms=())")
    trees = parts.get("trees")
    return Regressor(
        terms=list(est.terms),
        modifiers=list(est.modifiers),
        a=None if base is None else base.a.tolist(),
        B=None if base is None else base.B.tolist(),
        quantiles=None if trees is None else tuple(export_trees(t) for t in trees),
        offsets=parts.get("offsets"),
        margin=float(est.margin_),
        margin_column=est.calibrate_by,
        margin_values=est.calibration_values_.tolist(),
        margins=est.calibration_margins_.tolist(),
        feature_min=est.feature_min_.tolist(),
        feature_max=est.feature_max_.tolist(),
    )


def export(p: Predictor, *, env_key: str, dataset_sha256: str) -> CompiledModel:
    """Everything ``p.predict`` needs, as a ``CompiledModel``."""
    return CompiledModel(
        features=list(FEATURES),
        latency=export_regressor(p.latency),
        memory=export_regressor(p.memory),
        baselines=p.baselines,
        env_matches=p.env_matches,
        trained_on=p.trained_on,
        error_correlation=p.error_correlation,
        measurements=[m for found in p.measurements.values() for m in found],
        env_key=env_key,
        dataset_sha256=dataset_sha256,
    )


def write_atomic(model: CompiledModel, out: Path) -> None:
    """Write to a temporary file beside ``out``, then rename: a reader never sees half
    a file, and two builders racing each leave a whole one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(model.model_dump_json())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def build(out: Path, dataset: Path = DEFAULT_DATASET, env_key: str | None = None) -> None:
    """Fit on ``dataset`` (rows of ``env_key``'s machine) and write the compiled model."""
    key = env_key or environment().key()
    p = Predictor(load_dataset(dataset), env_key=key)
    sha = hashlib.sha256(dataset.read_bytes()).hexdigest()
    write_atomic(export(p, env_key=key, dataset_sha256=sha), out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="training-set CSV")
    ap.add_argument("--env-key", default=None, help="choose this environment's rows")
    args = ap.parse_args(argv)
    build(args.out, args.dataset, args.env_key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
