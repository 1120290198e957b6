"""The tuning search space: categorical knobs per framework, and params -> settings."""

from __future__ import annotations

from typing import Any, Literal

from probes.frameworks.facts import facts
from probes.protocol import Framework
from probes.settings import Device, TFSettings, TorchSettings, cpu_budget
from probes.spec import SpecGraph

Objective = Literal["latency", "throughput", "pareto"]
DEFAULT_INTER = 0  # categorical stand-in for "framework default" (None)


def search_space(
    framework: Framework,
    graph: SpecGraph,
    workload: str,
    objective: Objective,
    batches: list[int],
    device: Device = "cpu",
    cores: int | None = None,
) -> dict[str, list[Any]]:
    """Every knob that can matter for this model/workload, as categorical choices.

    The space is flat: some combinations (a compile_mode with mode=eager) are invalid
    and are pruned before running, by the same validity check the CLI uses.
    """
    cores = cores or cpu_budget()
    space: dict[str, list[Any]] = {
        "intra_threads": list(range(1, cores + 1)),
        "inter_threads": [DEFAULT_INTER, 1],
        "precision": ["fp32", "bf16"],
    }
    space.update(facts(framework).space_knobs(graph, workload, device))
    if objective == "throughput":
        space["batch"] = list(batches)
    return space


def to_settings(framework: Framework, params: dict[str, Any]) -> TorchSettings | TFSettings:
    knobs = {k: v for k, v in params.items() if k != "batch"}
    if knobs.get("inter_threads") == DEFAULT_INTER:
        knobs["inter_threads"] = None
    return facts(framework).settings_cls.model_validate(knobs)


def to_params(
    s: TorchSettings | TFSettings, space: dict[str, list[Any]], batch: int | None = None
) -> dict[str, Any] | None:
    """Settings -> params of this space (None if they fall outside it)."""
    raw = s.model_dump(exclude={"framework"})
    raw["inter_threads"] = raw["inter_threads"] or DEFAULT_INTER
    raw["intra_threads"] = raw["intra_threads"] or max(space["intra_threads"])
    if batch is not None:
        raw["batch"] = batch
    params = {k: raw[k] for k in space if k in raw}
    if len(params) != len(space) or any(params[k] not in space[k] for k in space):
        return None
    # knobs outside the space must be at their defaults, or the point is not in it
    default = type(s)().model_dump(exclude={"framework"})
    if any(
        raw[k] != default[k]
        for k in raw.keys() - space.keys() - {"batch"}
        if k not in ("intra_threads", "inter_threads")
    ):
        return None
    return params


def space_size(space: dict[str, list[Any]]) -> int:
    n = 1
    for choices in space.values():
        n *= len(choices)
    return n
