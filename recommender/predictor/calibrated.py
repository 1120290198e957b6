"""The instant predictor calibrated on a machine: per-operator kernel models summed over
a model's nodes (``opmodel``), a small whole-model correction and conformal interval
scale from that machine's full-model measurements (``corrections``), and the analytic
memory model (``memory``). Numpy only: predict mode's process stays light.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from probes.calibrate.grid import CONFIGS, DEFAULT_CONFIGS
from probes.protocol import FRAMEWORKS, Framework
from probes.settings import TFSettings, TorchSettings, cpu_budget, default_settings, settings_label
from probes.spec import ModelSpec, SpecGraph, build_graph
from recommender.predictor.answers import Z80, Estimate, Prediction
from recommender.predictor.memory import PRIORS, MemoryModel
from recommender.predictor.nodes import NodeCost, node_costs
from recommender.predictor.opfit import ConfigModel
from recommender.predictor.opmodel import Priced, price
from recommender.predictor.plain import CALIBRATE_FULL
from recommender.predictor.sizefit import SizeCorrection

Settings = TorchSettings | TFSettings
#: Without held-out full-model measurements, the interval is the op models' sigma
#: times this (their residuals describe cells, not whole new models).
DEFAULT_SCALE = 2.0


def config_for(s: Settings, available: Mapping[str, ConfigModel]) -> tuple[str, list[str]]:
    """The calibrated configuration that stands for ``s``, and what it does not cover."""
    fw = s.framework
    t1 = s.intra_threads == 1 and cpu_budget() > 1
    if isinstance(s, TorchSettings):
        want = (
            "torch/compile" if s.mode == "compile" else ("torch/eager-t1" if t1 else "torch/eager")
        )
        extra = [
            ("bf16", s.precision == "bf16"),
            ("channels_last", s.channels_last),
            (f"compile_mode={s.compile_mode}", s.compile_mode != "default"),
            ("inference_mode off", not s.inference_mode),
            ("threads=1 with compile", t1 and s.mode == "compile"),
        ]
    else:
        want = {"xla": "tensorflow/xla", "eager": "tensorflow/function"}.get(s.mode, "")
        want = want or ("tensorflow/function-t1" if t1 else "tensorflow/function")
        extra = [
            ("bf16", s.precision == "bf16"),
            ("tf eager mode", s.mode == "eager"),
            ("oneDNN off", not s.onednn),
            ("threads=1 with XLA", t1 and s.mode == "xla"),
        ]
    extra.append(("inter-op threads", s.inter_threads is not None))
    extra.append(
        ("intra threads other than 1 or all", s.intra_threads not in (None, 1, cpu_budget()))
    )
    notes = [name for name, on in extra if on]
    if want not in available:
        default = next(d for d in DEFAULT_CONFIGS if d.startswith(fw + "/"))
        notes.append(f"{want} (not in the calibration)")
        want = default
    return want, notes


@dataclass
class CalibratedPredictor:
    models: dict[str, ConfigModel]
    label: str  # which machine's calibration, in words
    env_matches: bool
    trained_on: str
    widen: float = 1.0  # another machine's calibration: wider intervals
    correction: dict[str, SizeCorrection] = field(default_factory=dict)  # per config
    scale: dict[str, float] = field(default_factory=dict)  # conformal sigma multiplier
    memory: dict[str, MemoryModel] = field(default_factory=lambda: dict(PRIORS))
    error_correlation: dict[str, float] = field(
        default_factory=lambda: {"latency": 0.0, "memory": 0.0}
    )
    full_models: int = 0  # distinct models the correction and scale were fitted on
    warnings: dict[str, str] = field(default_factory=dict)  # per configuration

    def factor(self, key: str, raw_s: float) -> float:
        """The whole-model correction of ``key`` for a per-operator sum of ``raw_s``."""
        c = self.correction.get(key)
        return c.factor(raw_s) if c else 1.0

    def configs(self, framework: str) -> list[str]:
        return [k for k in CONFIGS if k in self.models and k.startswith(framework + "/")]

    def priced(self, graph: SpecGraph, key: str, batch: int) -> Priced:
        return price(self.models[key], node_costs(graph, batch))

    def memory_model(self, framework: str, key: str) -> MemoryModel:
        """The configuration's own memory fit, else its framework's."""
        return self.memory.get(key) or self.memory[framework]

    def _memory(self, mem: MemoryModel, costs: list[NodeCost], batch: int) -> float:
        weights = sum(c.weight_bytes for c in costs)
        return mem.predict(weights, sum(c.out_bytes for c in costs) * batch)

    def predict(
        self,
        spec: ModelSpec | SpecGraph,
        framework: Framework,
        batch: int = 1,
        settings: Settings | None = None,
        *,
        spec_hash: str | None = None,
    ) -> Prediction:
        graph = build_graph(spec) if isinstance(spec, ModelSpec) else spec
        return self._predict(node_costs(graph, batch), framework, batch, settings)

    def _predict(
        self, costs: list[NodeCost], framework: Framework, batch: int, settings: Settings | None
    ) -> Prediction:
        s = settings or default_settings(framework)
        key, uncovered = config_for(s, self.models)
        p = price(self.models[key], costs)
        med = p.latency_s * self.factor(key, p.latency_s)
        half = Z80 * p.log_sigma * self.scale.get(key, DEFAULT_SCALE) * self.widen
        notes = []
        if uncovered:
            notes.append(
                f"these settings were not calibrated ({', '.join(uncovered)}), so they are "
                f"predicted as {key}; `fwadvisor calibrate --configs ...` or "
                "`--mode measure` covers them"
            )
        if key in self.warnings:
            notes.append(self.warnings[key])
        if p.unmeasured:
            notes.append(
                f"ops not timed on this machine, priced from related ops: "
                f"{', '.join(p.unmeasured)}; {CALIBRATE_FULL}"
            )
        mem = self.memory_model(framework, key)
        m_med = self._memory(mem, costs, batch)
        m_half = Z80 * mem.sigma * self.widen
        return Prediction(
            framework=framework,
            batch=batch,
            settings=settings_label(s),
            latency_s=Estimate(median=med, lo=med * math.exp(-half), hi=med * math.exp(half)),
            memory_bytes=Estimate(
                median=m_med, lo=m_med * math.exp(-m_half), hi=m_med * math.exp(m_half)
            ),
            baseline_bytes=mem.baseline_bytes,
            out_of_range=notes,
            env_matches=self.env_matches,
        )

    def predict_both(
        self,
        spec: ModelSpec | SpecGraph | Mapping[str, float],
        batch: int = 1,
        settings: Mapping[str, Settings] | None = None,
        *,
        spec_hash: str | None = None,
    ) -> dict[Framework, Prediction]:
        if not isinstance(spec, ModelSpec | SpecGraph):
            raise TypeError("the calibrated predictor needs the spec or its graph")
        graph = build_graph(spec) if isinstance(spec, ModelSpec) else spec
        chosen = settings or {}
        costs = node_costs(graph, batch)  # once for both frameworks
        return {fw: self._predict(costs, fw, batch, chosen.get(fw)) for fw in FRAMEWORKS}

    def best(self, spec: ModelSpec | SpecGraph, framework: Framework, batch: int) -> Settings:
        """The calibrated configuration with the lowest predicted latency."""
        graph = build_graph(spec) if isinstance(spec, ModelSpec) else spec
        keys = self.configs(framework)
        best = min(
            keys,
            key=lambda k: (raw := self.priced(graph, k, batch).latency_s) * self.factor(k, raw),
        )
        s = CONFIGS[best]
        assert isinstance(s, TorchSettings | TFSettings)
        return s
