"""The predictor's caveats in a user's terms, each with the action that removes it.

Feature names (``log10_work``, ``t_flops_conv``) mean nothing to someone choosing a
framework; the quantity behind them does ("compute per call, 1.3e+11 FLOPs").
"""

from __future__ import annotations

MEASURE_HINT = "`--mode measure` times this model here instead (minutes)"
CALIBRATE_FULL = "`fwadvisor calibrate` (the full grid) times them on this machine"

# feature -> (what it is, unit); the value is 10**x for log10 features
_QUANTITY: dict[str, tuple[str, str]] = {
    "log10_params": ("parameter count", ""),
    "log10_flops": ("compute per sample", "FLOPs"),
    "log10_input": ("input size per sample", "values"),
    "log10_nodes": ("layer count", ""),
    "log10_weight_bytes": ("weight size", "bytes"),
    "log10_act_bytes": ("activation memory per sample", "bytes"),
    "log10_rnn_steps": ("recurrent steps per call", ""),
    "log10_batch": ("batch", ""),
    "log10_work": ("compute per call (FLOPs x batch)", "FLOPs"),
    "log10_act_batch": ("activation memory per call", "bytes"),
}


def _amount(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 2**20:.3g} MiB"
    return f"{value:.3g}{' ' + unit if unit else ''}"


def _what(feature: str, value: float) -> tuple[str, str]:
    """(name of the quantity, the value in its unit) for one feature."""
    if feature in _QUANTITY:
        name, unit = _QUANTITY[feature]
        return name, _amount(10**value, unit)
    if feature.startswith(("flops_", "nodes_")):  # share of the model in an op family
        kind, family = feature.split("_", 1)
        what = "compute" if kind == "flops" else "layers"
        return f"share of {what} in {family.replace('_', ' ')} ops", f"{value:.0%}"
    return feature.replace("_", " "), f"{value:.3g}"


_SETTING = {
    "bf16": "bf16 precision",
    "tf_bf16": "bf16 precision in TensorFlow",
    "torch_compile": "torch.compile",
    "torch_autotune": "torch.compile's autotuning",
    "tf_xla": "XLA",
    "tf_eager": "TensorFlow eager mode",
    "no_onednn": "oneDNN off",
    "no_inference_mode": "torch without inference_mode",
    "channels_last": "channels_last memory format",
    "inter_threads": "an inter-op thread count",
    "log2_threads": "this thread count",
    "tf_log2_threads": "this thread count in TensorFlow",
}


def range_note(feature: str, value: float, lo: float, hi: float) -> str:
    """``feature`` at ``value`` fell outside the training range [lo, hi]."""
    if feature in _SETTING:
        return (
            f"the predictor never saw {_SETTING[feature]} in its training data, so this "
            f"estimate extrapolates; {MEASURE_HINT}"
        )
    name, shown = _what(feature, value)
    bound = _what(feature, hi if value > hi else lo)[1]
    side = "above the largest" if value > hi else "below the smallest"
    return (
        f"this model's {name} ({shown}) is {side} the predictor has seen ({bound}), so the "
        f"estimate extrapolates; {MEASURE_HINT}"
    )
