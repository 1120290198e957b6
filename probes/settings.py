"""Per-framework knobs (the search space of tuning) and their validity check.

The check runs in the parent before any process starts, and says why a combination
is impossible. Settings read when the framework is imported (TF_ENABLE_ONEDNN_OPTS)
are *process-level* (`PROCESS_LEVEL`): a probe runs in a fresh process, or in a warm
worker started with exactly those settings (`WorkerKey`).
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Precision = Literal["fp32", "bf16"]
Device = Literal["cpu", "cuda"]


def cpu_budget() -> int:
    """Cores this process may run on (respects affinity/cgroup pinning)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    intra_threads: int | None = Field(
        default=None, gt=0, description="None: every available core (the same for both)."
    )
    inter_threads: int | None = Field(default=None, gt=0, description="None: framework default.")
    precision: Precision = "fp32"


class TorchSettings(_Common):
    framework: Literal["torch"] = "torch"
    mode: Literal["eager", "compile"] = "eager"
    compile_mode: Literal["default", "reduce-overhead", "max-autotune-no-cudagraphs"] = "default"
    channels_last: bool = False
    inference_mode: bool = Field(
        default=True, description="torch.inference_mode for inference; training ignores it."
    )


class TFSettings(_Common):
    framework: Literal["tensorflow"] = "tensorflow"
    mode: Literal["eager", "function", "xla"] = "function"
    onednn: bool = True


FrameworkSettings = Annotated[TorchSettings | TFSettings, Field(discriminator="framework")]
_SETTINGS: TypeAdapter[TorchSettings | TFSettings] = TypeAdapter(FrameworkSettings)


def default_settings(framework: str) -> TorchSettings | TFSettings:
    """What a user gets without tuning: eager PyTorch, and Keras's own default of
    ``model(x)`` under a tf.function (``model.predict`` traces one too)."""
    return _SETTINGS.validate_python({"framework": framework})


#: Settings a process cannot change once its framework is imported: TF_ENABLE_ONEDNN_OPTS
#: is read at import. A warm worker is keyed by them. Thread counts are not: the thread
#: pools (TensorFlow's, PyTorch's inter-op pool) start at a process's first op, and a
#: warm worker never runs one, so each probe's forked child sets its own before its
#: first op. Checked: a child forked from one worker ran a 1024x1024 matmul on 1.00
#: core at one thread and 1.8-2.0 cores at two, in both frameworks, and set either
#: inter-op count (before 2026-12-06 a worker per thread count started a second
#: TensorFlow, 5 s here, in most answers).
PROCESS_LEVEL = ("onednn",)


class WorkerKey(BaseModel):
    """What a warm worker process is fixed to: its framework, device and the
    process-level settings (a setting the framework lacks stays None)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    framework: Literal["torch", "tensorflow"]
    device: Device = "cpu"
    onednn: bool | None = None

    def settings(self) -> TorchSettings | TFSettings:
        """Settings with these process-level values (the rest default)."""
        fields = {k: v for k in PROCESS_LEVEL if (v := getattr(self, k)) is not None}
        return _SETTINGS.validate_python({"framework": self.framework, **fields})

    def __str__(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.model_dump().items() if v is not None)


def worker_key(s: TorchSettings | TFSettings, device: Device = "cpu") -> WorkerKey:
    """The warm worker that may run a probe with settings ``s`` on ``device``."""
    fields = {k: getattr(s, k, None) for k in PROCESS_LEVEL}
    return WorkerKey(framework=s.framework, device=device, **fields)


def canonical(s: TorchSettings | TFSettings) -> TorchSettings | TFSettings:
    """The same run, spelled one way: no thread count means every available core, and
    a compile mode means nothing in eager mode. Two candidates with the same canonical
    form are one measurement (timing both would only pay its probes twice)."""
    update: dict[str, object] = {"intra_threads": s.intra_threads or cpu_budget()}
    if isinstance(s, TorchSettings) and s.mode == "eager":
        update["compile_mode"] = "default"
    return s.model_copy(update=update)


def settings_label(s: TorchSettings | TFSettings) -> str:
    """Short human label, e.g. ``compile/default t2 fp32`` or ``xla t2 bf16 onednn``."""
    parts = [
        s.mode
        + (f"/{s.compile_mode}" if isinstance(s, TorchSettings) and s.mode == "compile" else "")
    ]
    parts.append(f"t{s.intra_threads or cpu_budget()}")
    if s.inter_threads:
        parts.append(f"i{s.inter_threads}")
    parts.append(s.precision)
    if isinstance(s, TorchSettings) and s.channels_last:
        parts.append("channels_last")
    if isinstance(s, TFSettings) and not s.onednn:
        parts.append("no-onednn")
    return " ".join(parts)


def invalid_reasons(
    s: TorchSettings | TFSettings,
    *,
    workload: str,
    has_conv2d: bool,
    device: Device = "cpu",
    cores: int | None = None,
) -> list[str]:
    """Why these settings cannot run (empty list: valid)."""
    cores = cores or cpu_budget()
    why: list[str] = []
    for name in ("intra_threads", "inter_threads"):
        n = getattr(s, name)
        if n is not None and n > cores:
            why.append(f"{name}={n} exceeds the {cores} cores available")
    if isinstance(s, TorchSettings):
        if s.compile_mode != "default" and s.mode != "compile":
            why.append(f"compile_mode={s.compile_mode} needs mode=compile")
        if s.inference_mode is False and workload != "infer":
            why.append("inference_mode only applies to the infer workload")
        if s.channels_last and not has_conv2d:
            why.append("channels_last only changes 4-D (conv2d) tensors; this model has none")
        if s.compile_mode == "reduce-overhead" and device == "cpu":
            why.append("compile_mode=reduce-overhead uses CUDA graphs; it needs device=cuda")
    if device == "cuda" and isinstance(s, TFSettings) and not s.onednn:
        why.append("onednn=False only affects CPU kernels")
    return why
