"""Framework-free inputs of the performance predictor: spec statistics, batch, settings.

``spec_stats`` summarises a spec once (it is stored with each training row, so the
training set needs no zoo). ``query_features`` adds what depends on the question: the
framework, the batch and the settings. Both the training rows and a live query go
through ``query_features``, so they cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from probes.features import FAMILIES, spec_features
from probes.settings import TFSettings, TorchSettings, cpu_budget, default_settings
from probes.spec import SpecGraph, analyze

FrameworkSettingsT = TorchSettings | TFSettings

# Per-spec statistics (batch-free): the op mix and sizes of probes.features, plus counts
# that drive fixed per-op overhead, sequential work and memory.
STAT_COLUMNS: tuple[str, ...] = (
    *(f"{kind}_{fam}" for fam in FAMILIES for kind in ("flops", "nodes")),
    "flops_grouped",  # share of FLOPs in grouped (e.g. depthwise) convolutions
    "log10_params",
    "log10_flops",
    "log10_input",
    "log10_nodes",
    "log10_weight_bytes",
    "log10_act_bytes",
    "log10_rnn_steps",  # log10(1 + sequential recurrent steps per call)
)

# Settings as numbers. Every flag is 0 at the framework's default settings.
SETTING_COLUMNS: tuple[str, ...] = (
    "log2_threads",
    "inter_threads",
    "bf16",
    "torch_compile",
    "torch_autotune",
    "channels_last",
    "no_inference_mode",
    "tf_eager",
    "tf_xla",
    "no_onednn",
)

# Question-dependent columns built from the statistics and the batch.
WORK_COLUMNS: tuple[str, ...] = (
    "log10_batch",
    "log10_work",  # log10(FLOPs x batch): the compute of one call
    "log10_act_batch",  # log10(activation bytes x batch): the memory of one call
)

# The framework, the settings, and the interactions the data shows (bf16 and threads
# act differently in the two frameworks): what scales the price of each cost term.
MODIFIER_COLUMNS: tuple[str, ...] = ("is_tf", *SETTING_COLUMNS, "tf_bf16", "tf_log2_threads")

# Additive cost terms, log10 of nominal seconds (perf_cost): per call, per node of each
# family, per FLOP of each family, per activation and weight byte, per recurrent step.
NOMINAL = {
    "call": 1e-4,
    "node": 1e-5,
    "flop": 1 / 5e10,
    "grouped_flop": 1 / 5e9,
    "act": 1 / 1e10,
    "weight": 1 / 2e10,
    "step": 2e-5,
    "step_sample": 2e-6,
}
TERM_COLUMNS: tuple[str, ...] = (
    "t_call",
    *(f"t_nodes_{fam}" for fam in (*FAMILIES, "other")),
    *(f"t_flops_{fam}" for fam in (*FAMILIES, "grouped")),
    "t_act",
    "t_weights",
    "t_steps",
    "t_steps_batch",
)
# Terms of one group share a price (perf_cost): per call, per node, per FLOP, per
# activation byte, per weight byte, per recurrent step.
_GROUP_PREFIXES = ("t_call", "t_nodes", "t_flops", "t_act", "t_weights", "t_steps")
TERM_GROUPS: tuple[int, ...] = tuple(
    next(i for i, p in enumerate(_GROUP_PREFIXES) if c.startswith(p)) for c in TERM_COLUMNS
)
TERM_FLOOR = -12.0  # log10 of a term that is absent (1 ps)

FEATURES: tuple[str, ...] = (*STAT_COLUMNS, *WORK_COLUMNS, *MODIFIER_COLUMNS, *TERM_COLUMNS)
# What a range check reports (the cost terms are derived from these).
RANGE_COLUMNS: tuple[str, ...] = (*STAT_COLUMNS, *WORK_COLUMNS, *MODIFIER_COLUMNS)


def spec_stats(graph: SpecGraph) -> dict[str, float]:
    """The batch-free statistics of a spec (``STAT_COLUMNS``)."""
    a = analyze(graph)
    out = dict(spec_features(graph))
    flops = {n.id: n.flops for n in a.nodes}
    grouped = steps = 0
    for n in graph.nodes:
        if n.op in ("conv1d", "conv2d") and getattr(n.params, "groups", 1) > 1:
            grouped += flops[n.id]
        if n.op in ("lstm", "gru"):
            directions = 2 if getattr(n.params, "bidirectional", False) else 1
            steps += graph.inputs_of(n)[0].shape[0] * directions
    out["flops_grouped"] = grouped / max(a.flops, 1)
    out["log10_nodes"] = math.log10(max(len(a.nodes), 1))
    out["log10_weight_bytes"] = math.log10(max(a.weight_bytes, 1))
    out["log10_act_bytes"] = math.log10(max(a.activation_bytes_per_sample, 1))
    out["log10_rnn_steps"] = math.log10(1 + steps)
    return {k: float(out[k]) for k in STAT_COLUMNS}


def _log_term(amount: float, unit: str) -> float:
    v = amount * NOMINAL[unit]
    return math.log10(v) if v > 10**TERM_FLOOR else TERM_FLOOR


def cost_terms(stats: Mapping[str, float], batch: int) -> dict[str, float]:
    """``TERM_COLUMNS`` of one question: the amounts each price multiplies."""
    nodes = 10 ** stats["log10_nodes"]
    flops = 10 ** stats["log10_flops"] * batch
    steps = 10 ** stats["log10_rnn_steps"] - 1
    out = {"t_call": _log_term(1, "call")}
    shares = {fam: stats[f"nodes_{fam}"] for fam in FAMILIES}
    for fam, share in shares.items():
        out[f"t_nodes_{fam}"] = _log_term(share * nodes, "node")
    out["t_nodes_other"] = _log_term(max(0.0, 1 - sum(shares.values())) * nodes, "node")
    for fam in FAMILIES:
        share = stats[f"flops_{fam}"] - (stats["flops_grouped"] if fam == "conv" else 0.0)
        out[f"t_flops_{fam}"] = _log_term(max(0.0, share) * flops, "flop")
    out["t_flops_grouped"] = _log_term(stats["flops_grouped"] * flops, "grouped_flop")
    out["t_act"] = _log_term(10 ** stats["log10_act_bytes"] * batch, "act")
    out["t_weights"] = _log_term(10 ** stats["log10_weight_bytes"], "weight")
    out["t_steps"] = _log_term(steps, "step")
    out["t_steps_batch"] = _log_term(steps * batch, "step_sample")
    return out


def settings_columns(s: FrameworkSettingsT, cores: int | None = None) -> dict[str, float]:
    """Numeric encoding of one framework's settings (``SETTING_COLUMNS``)."""
    threads = s.intra_threads or cores or cpu_budget()
    torch_s = s if isinstance(s, TorchSettings) else None
    tf_s = s if isinstance(s, TFSettings) else None
    return {
        "log2_threads": math.log2(threads),
        "inter_threads": float(s.inter_threads or 0),
        "bf16": float(s.precision == "bf16"),
        "torch_compile": float(torch_s is not None and torch_s.mode == "compile"),
        "torch_autotune": float(
            torch_s is not None and torch_s.compile_mode == "max-autotune-no-cudagraphs"
        ),
        "channels_last": float(torch_s is not None and torch_s.channels_last),
        "no_inference_mode": float(torch_s is not None and not torch_s.inference_mode),
        "tf_eager": float(tf_s is not None and tf_s.mode == "eager"),
        "tf_xla": float(tf_s is not None and tf_s.mode == "xla"),
        "no_onednn": float(tf_s is not None and not tf_s.onednn),
    }


def query_features(
    spec: SpecGraph | Mapping[str, float],
    framework: str,
    batch: int,
    settings: FrameworkSettingsT | None = None,
    *,
    cores: int | None = None,
) -> dict[str, float]:
    """One predictor input row (keys: ``FEATURES``).

    ``spec`` is a built graph or its ``spec_stats``; ``settings`` None means the
    framework's defaults; ``cores`` is the thread count that "all cores" meant (None:
    this process's core budget).
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    s = settings or default_settings(framework)
    if s.framework != framework:
        raise ValueError(f"settings are for {s.framework}, not {framework}")
    stats = spec_stats(spec) if isinstance(spec, SpecGraph) else dict(spec)
    missing = [c for c in STAT_COLUMNS if c not in stats]
    if missing:
        raise ValueError(f"spec statistics lack {', '.join(missing)}")
    lb = math.log10(batch)
    row = {c: float(stats[c]) for c in STAT_COLUMNS}
    row.update(
        log10_batch=lb,
        log10_work=stats["log10_flops"] + lb,
        log10_act_batch=stats["log10_act_bytes"] + lb,
        is_tf=float(framework == "tensorflow"),
    )
    row.update(settings_columns(s, cores))
    row["tf_bf16"] = row["is_tf"] * row["bf16"]
    row["tf_log2_threads"] = row["is_tf"] * row["log2_threads"]
    row.update(cost_terms(stats, batch))
    return {c: row[c] for c in FEATURES}
