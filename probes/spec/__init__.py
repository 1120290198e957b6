"""Framework-neutral model spec: documents, validation, shape inference, analytics."""

from probes.spec.analysis import Limits, NodeStats, SpecAnalysis, analyze, check_limits
from probes.spec.graph import OPS, GraphNode, SpecGraph, build_graph
from probes.spec.io import load_spec_file, resolve_spec, spec_from_mapping, zoo_names
from probes.spec.memo import SpecMemo, analyzed, spec_hash
from probes.spec.model import InputSpec, ModelSpec, NodeSpec
from probes.spec.ops_base import TensorInfo, WeightDef

__all__ = [
    "OPS",
    "GraphNode",
    "InputSpec",
    "Limits",
    "ModelSpec",
    "NodeSpec",
    "NodeStats",
    "SpecAnalysis",
    "SpecGraph",
    "SpecMemo",
    "TensorInfo",
    "WeightDef",
    "analyze",
    "analyzed",
    "build_graph",
    "check_limits",
    "load_spec_file",
    "resolve_spec",
    "spec_from_mapping",
    "spec_hash",
    "zoo_names",
]
