"""JSON protocol between the parent and ``python -m probes.worker.probe``.

Arrays (inputs, outputs, weights) travel as ``.npz`` files in ``io_dir``; the JSON
stays small. The parent never imports a framework: it only reads the arrays back.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probes.calibrate.cells import CalibrateWorkload
from probes.measure.contention import Contention
from probes.measure.timing import MeasureConfig, Timing
from probes.payloads import EXPORT_TARGETS as EXPORT_TARGETS
from probes.payloads import ExportTarget as ExportTarget
from probes.payloads import Payload, legacy_payload
from probes.settings import Device, FrameworkSettings, default_settings
from probes.spec import ModelSpec

P = TypeVar("P", bound=BaseModel)
Framework = Literal["torch", "tensorflow"]
FRAMEWORKS: tuple[Framework, ...] = ("torch", "tensorflow")
Status = Literal["ok", "failed", "timeout", "oom", "crashed", "unsupported"]


class ForwardWorkload(BaseModel):
    """Eval-mode forward pass on ``inputs.npz``; writes ``outputs_<framework>.npz``."""

    kind: Literal["forward"] = "forward"


class TrainStepWorkload(BaseModel):
    """One step of mean-squared-error against ``targets`` in ``inputs.npz``.

    Writes the loss and the updated trainable weights (neutral layout).
    """

    kind: Literal["train_step"] = "train_step"
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.01, gt=0)


class InferWorkload(BaseModel):
    """Steady-state inference latency and throughput at ``batch``."""

    kind: Literal["infer"] = "infer"
    batch: int = Field(default=1, gt=0)


class TrainWorkload(BaseModel):
    """Steady-state training step: forward, MSE loss, backward, optimizer step."""

    kind: Literal["train"] = "train"
    batch: int = Field(default=8, gt=0)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.01, gt=0)


class ColdStartWorkload(BaseModel):
    """Process start -> import -> build -> first result, each phase timed."""

    kind: Literal["cold"] = "cold"
    batch: int = Field(default=1, gt=0)


class ConvergenceWorkload(BaseModel):
    """Train from the shared initial weights on the shared data and batch order.

    Classification uses softmax cross-entropy and reports validation accuracy;
    regression/reconstruction use MSE and report validation MSE. Only full batches
    run, so every step has the same shape (no retracing) in both frameworks.
    """

    kind: Literal["convergence"] = "convergence"
    batch: int = Field(default=32, gt=0)
    epochs: int = Field(default=5, gt=0, le=200)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.05, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1, description="SGD only.")
    target: float | None = Field(
        default=None, description="Time-to-target threshold: accuracy (>=) or MSE (<=)."
    )


class ExportWorkload(BaseModel):
    """Export to ``target``, load the artifact in its runtime, compare and time it.

    The artifact has a static batch of ``batch``; inputs come from ``make_inputs`` with
    the request's seed, and the reference is the source model on the same inputs.
    """

    kind: Literal["export"] = "export"
    target: ExportTarget
    batch: int = Field(default=1, gt=0)
    keep_dir: str | None = Field(default=None, description="Copy the artifact here.")


class CustomOpWorkload(BaseModel):
    """What the model's ``custom`` nodes cost and allow, in each custom-op mode.

    Modes: ``autodiff`` (the expression as built-in ops: the baseline), ``explicit``
    (built-ins plus the declared gradient) and ``opaque`` (a kernel the framework cannot
    see). For each: eager inference and training-step time, and whether the model
    compiles (torch.compile graph breaks; tf.function and XLA). Plus a numerical
    gradient check of every custom node. Exports per mode run from the parent.
    """

    kind: Literal["custom_op"] = "custom_op"
    batch: int = Field(default=8, gt=0)
    compile: bool = Field(default=True, description="Also compile for real, not only trace.")


class PeakWorkload(BaseModel):
    """Attainable float32 GFLOP/s of this machine: a large square matmul (no model)."""

    kind: Literal["peak"] = "peak"
    n: int = Field(default=2048, ge=64)


Workload = Annotated[
    ForwardWorkload
    | TrainStepWorkload
    | InferWorkload
    | TrainWorkload
    | ColdStartWorkload
    | ConvergenceWorkload
    | PeakWorkload
    | ExportWorkload
    | CustomOpWorkload
    | CalibrateWorkload,
    Field(discriminator="kind"),
]


class ProbeLimits(BaseModel):
    timeout_s: float = Field(default=600.0, gt=0)
    memory_mb: int | None = Field(default=None, gt=0, description="Process-group RSS cap.")


class ProbeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: ModelSpec | None = Field(
        default=None, description="None only for the peak and calibrate probes."
    )
    framework: Framework
    workload: Workload
    settings: FrameworkSettings | None = Field(default=None, description="None: defaults.")
    device: Device = "cpu"
    seed: int = 0
    io_dir: str | None = Field(default=None, description="Holds inputs.npz for parity.")
    measure: MeasureConfig = Field(default_factory=MeasureConfig)
    limits: ProbeLimits = Field(default_factory=ProbeLimits)
    spawn_time: float | None = Field(default=None, description="Set by the runner (epoch s).")

    @model_validator(mode="after")
    def _settings_match(self) -> ProbeRequest:
        if self.settings is not None and self.settings.framework != self.framework:
            raise ValueError(f"settings are for {self.settings.framework}, not {self.framework}")
        if self.spec is None and self.workload.kind not in ("peak", "calibrate"):
            raise ValueError(f"workload {self.workload.kind} needs a spec")
        return self

    def effective_settings(self) -> FrameworkSettings:
        return self.settings or default_settings(self.framework)


class Phases(BaseModel):
    """Wall time of each phase of the probe process (cold-start breakdown)."""

    spawn_to_main_s: float | None = Field(
        description="From the runner taking the request to the probe's main: a fresh "
        "process's interpreter start, or a warm worker's fork (with the worker's own "
        "start for its first probe, and its compiler import for the first probe that "
        "uses the compiler)."
    )
    import_s: float
    build_s: float = Field(description="Weight init, model build, weight load, inputs.")
    first_result_s: float = Field(description="First call, materialised.")
    total_s: float | None = Field(description="Spawn to first result.")


class MemoryStats(BaseModel):
    """Bytes above the worker's RSS when the probe began: right after importing its
    framework (a fresh process), or after the previous probe was released (a warm one)."""

    baseline_rss_bytes: int
    peak_rss_bytes: int = Field(description="Sampled every 5 ms, minus baseline.")
    maxrss_bytes: int = Field(
        description="Peak RSS since the probe began (VmHWM; ru_maxrss if absent) minus baseline."
    )
    weight_bytes: int
    cuda_peak_bytes: int | None = None


class Measurement(BaseModel):
    kind: str
    batch: int | None = None
    settings_label: str
    timing: Timing | None = None
    throughput_sps: float | None = Field(default=None, description="Samples per second.")
    gflops_per_s: float | None = None
    efficiency: float | None = Field(default=None, description="Achieved / machine peak.")
    phases: Phases
    memory: MemoryStats | None = None
    runtime: dict[str, str] = Field(default_factory=dict, description="Framework build facts.")
    contention: Contention | None = Field(
        default=None, description="Did the timed part get the machine? (None: not timed.)"
    )


class ProbeResult(BaseModel):
    # An infinite difference (shape mismatch) or NaN output must survive the trip.
    model_config = ConfigDict(ser_json_inf_nan="constants")

    status: Status
    framework: Framework
    reason: str | None = None
    data: Payload | None = Field(default=None, description="The workload's own result.")
    measurement: Measurement | None = None
    wall_s: float | None = None
    peak_group_rss_bytes: int | None = Field(default=None, description="Seen by the runner.")

    def payload(self, model: type[P]) -> P | None:
        """``data`` if it is a ``model`` (e.g. ``ExportData``), else None."""
        return self.data if isinstance(self.data, model) else None

    @field_validator("data", mode="before")
    @classmethod
    def _untagged(cls, v: Any) -> Any:
        return legacy_payload(v)
