"""The framework-neutral model spec as users write it (YAML or JSON).

Layout convention: channels-first, batch excluded. An image is ``[C, H, W]``, a
1-D signal ``[C, L]``, a sequence ``[T, F]``. Every ``axis`` parameter indexes
the per-sample shape (0 = first non-batch axis; negatives count from the end).
The Keras builder converts to channels-last internally; see docs/spec.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from probes.errors import SpecError, did_you_mean

IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=IDENT)
    shape: list[int] = Field(description="Per-sample shape, batch excluded.")
    dtype: Literal["float32", "int64"] = "float32"
    max_value: int | None = Field(
        default=None, gt=0, description="int64 inputs take values in [0, max_value)."
    )


class NodeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=IDENT)
    op: str
    inputs: list[str]
    params: dict[str, Any] = Field(default_factory=dict)


class WeightsRef(BaseModel):
    """Real weights for every node, in a safetensors file (keys ``node/name``, neutral layouts)."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="Path of the .safetensors file, relative to the spec file.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Digest of that file.")


class ModelSpec(BaseModel):
    """A DAG of typed nodes. ``sizes`` names alternative input shapes (e.g. ``small``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    task: Literal["classification", "regression", "reconstruction"] = "classification"
    inputs: list[InputSpec] = Field(min_length=1)
    nodes: list[NodeSpec] = Field(min_length=1)
    outputs: list[str] = Field(min_length=1)
    sizes: dict[str, dict[str, list[int]]] = Field(default_factory=dict)
    weights: WeightsRef | None = Field(
        default=None, description="Imported weights; None: seeded random weights."
    )

    @field_validator("nodes", mode="before")
    @classmethod
    def _node_count(cls, nodes: Any, info: ValidationInfo) -> Any:
        """Count before building: a caller that passes ``context={"max_nodes": N}``
        (the API) refuses a 10,000-node spec without validating 10,000 nodes."""
        limit = (info.context or {}).get("max_nodes")
        if isinstance(limit, int) and isinstance(nodes, list) and len(nodes) > limit:
            raise ValueError(f"spec has {len(nodes)} nodes; the limit is {limit}")
        return nodes

    def resized(self, size: str | None) -> ModelSpec:
        """Return a copy whose input shapes are the named size preset (None/"default": as is)."""
        if size in (None, "default"):
            return self
        if size not in self.sizes:
            known = ", ".join(["default", *sorted(self.sizes)])
            hint = did_you_mean(size, ["default", *self.sizes])
            raise SpecError(f"model '{self.name}' has no size '{size}'{hint} (known: {known})")
        preset = self.sizes[size]
        inputs = [
            inp.model_copy(update={"shape": list(preset.get(inp.name, inp.shape))})
            for inp in self.inputs
        ]
        return self.model_copy(update={"inputs": inputs})
