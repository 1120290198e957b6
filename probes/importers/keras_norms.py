"""Keras PReLU and GroupNormalization -> the spec's ``prelu`` and ``group_norm``
(channels-last in Keras, channels-first in the spec: ``chan_first``/``chan_last``)."""

from __future__ import annotations

import numpy as np

from probes.importers.context import Act, Ctx, Unsupported
from probes.importers.keras_layers import KLayer, chan_first, chan_last, keras_layer


def _last_axis(ly: KLayer, rank: int) -> None:
    if ly.get("axis", -1) not in (-1, [-1], rank, [rank]):
        raise Unsupported(f"normalization over axis {ly.get('axis')} (only the channels)")


@keras_layer("GroupNormalization")
def group_norm(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    rank = len(ins[0].shape)
    _last_axis(ly, rank)
    if rank < 2:
        raise Unsupported("group normalization of a vector")
    a = chan_first(ctx, ins[0])
    c, i = a.shape[0], 0
    gamma = ly.var(i) if ly.get("scale", True) else np.ones(c, np.float32)
    i += bool(ly.get("scale", True))
    beta = ly.var(i) if ly.get("center", True) else np.zeros(c, np.float32)
    params = {"groups": int(ly.get("groups", 32)), "eps": float(ly.get("epsilon", 1e-3))}
    return chan_last(ctx.emit("group_norm", [a], params, {"gamma": gamma, "beta": beta}))


@keras_layer("PReLU")
def prelu(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    rank = len(ins[0].shape)
    alpha = ly.var(0)
    if rank == 1:
        if alpha.shape != ins[0].shape:
            raise Unsupported(f"a PReLU slope of shape {list(alpha.shape)}")
        return ctx.emit("prelu", [ctx.canonical(ins[0])], {}, {"alpha": alpha})
    if alpha.ndim != rank or any(d != 1 for d in alpha.shape[:-1]):
        raise Unsupported(
            f"a PReLU slope of shape {list(alpha.shape)}: only one per channel "
            f"(shared_axes={list(range(1, rank))})"
        )
    a = chan_first(ctx, ins[0])
    out = ctx.emit("prelu", [a], {}, {"alpha": alpha.reshape(-1)})
    return chan_last(out)
