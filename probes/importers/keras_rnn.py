"""Keras LSTM, GRU and Bidirectional(LSTM | GRU) -> the spec's ``lstm``/``gru``.

Keras gate order is i, f, c, o for LSTM (the neutral order) and z, r, h for GRU
(reordered to r, z, n); a Bidirectional wrapper's backward layer becomes the
``_reverse`` weights of one bidirectional node.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from probes.importers.context import Act, Ctx, Unsupported
from probes.importers.keras_layers import KLayer, keras_layer
from probes.importers.ops_seq import GRU_ORDER, _blocks


def _rnn_checks(ly: KLayer) -> None:
    for key in ("go_backwards", "stateful", "return_state"):
        if ly.get(key):
            raise Unsupported(f"{key}=True")
    if (
        ly.get("activation", "tanh") != "tanh"
        or ly.get("recurrent_activation", "sigmoid") != "sigmoid"
    ):
        raise Unsupported("recurrent activations other than tanh/sigmoid")
    if not ly.get("use_bias", True):
        raise Unsupported("a recurrent layer without bias")
    if ly.cls == "GRU" and not ly.get("reset_after", True):
        raise Unsupported("reset_after=False (PyTorch's GRU is reset_after=True)")


def _weights(
    cls: str, kernel: np.ndarray, rec: np.ndarray, b: np.ndarray, sfx: str
) -> dict[str, np.ndarray]:
    if cls == "LSTM":  # gates i, f, c, o: the neutral order
        return {f"w_ih{sfx}": kernel.T, f"w_hh{sfx}": rec.T, f"b{sfx}": b}
    return {
        f"w_ih{sfx}": _blocks(kernel.T, GRU_ORDER),
        f"w_hh{sfx}": _blocks(rec.T, GRU_ORDER),
        f"b_ih{sfx}": _blocks(b[0], GRU_ORDER),
        f"b_hh{sfx}": _blocks(b[1], GRU_ORDER),
    }


def _emit(ctx: Ctx, ly: KLayer, a: Act, weights: dict[str, np.ndarray], both: bool) -> Act:
    params: dict[str, Any] = {
        "hidden_size": int(ly.get("units")),
        "return_sequences": bool(ly.get("return_sequences")),
    }
    if both:
        params["bidirectional"] = True
    return ctx.emit(ly.cls.lower(), [a], params, weights)


@keras_layer("LSTM", "GRU")
def recurrent(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    _rnn_checks(ly)
    weights = _weights(ly.cls, ly.var(0), ly.var(1), ly.var(2), "")
    return _emit(ctx, ly, ctx.canonical(ins[0]), weights, False)


@keras_layer("Bidirectional")
def bidirectional(ctx: Ctx, ly: KLayer, ins: list[Act]) -> Act:
    """Weights: the forward layer's three arrays, then the backward layer's."""
    inner_raw = ly.get("layer")
    if not isinstance(inner_raw, dict) or inner_raw.get("class_name") not in ("LSTM", "GRU"):
        raise Unsupported("a Bidirectional wrapper around a layer other than LSTM or GRU")
    if ly.get("merge_mode", "concat") != "concat":
        raise Unsupported(f"merge_mode={ly.get('merge_mode')!r} (only 'concat')")
    back = ly.get("backward_layer")
    if back is not None and back.get("class_name") != inner_raw["class_name"]:
        raise Unsupported("a backward layer of another class")
    inner = KLayer(
        str(inner_raw["class_name"]), ly.name, dict(inner_raw.get("config", {})), ly.vars
    )
    _rnn_checks(inner)
    if len(ly.vars) != 6:
        raise Unsupported(f"expected 6 weight arrays (forward, backward), found {len(ly.vars)}")
    weights = _weights(inner.cls, inner.var(0), inner.var(1), inner.var(2), "")
    weights |= _weights(inner.cls, inner.var(3), inner.var(4), inner.var(5), "_reverse")
    return _emit(ctx, inner, ctx.canonical(ins[0]), weights, True)
