"""Subprocess for benchmarks/independent_harness.py: times one model with the
framework's own tool instead of ours. argv: framework model batch C H W (or -)."""

from __future__ import annotations

import json
import os
import sys
import timeit

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from probes.config import Settings
from probes.settings import cpu_budget
from probes.spec import build_graph, resolve_spec
from probes.weights import init_weights, make_inputs


def main() -> None:
    fw, model, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spec = resolve_spec(model, Settings().zoo_dir)
    if sys.argv[4] != "-":
        inp = spec.inputs[0].model_copy(update={"shape": [int(v) for v in sys.argv[4:7]]})
        spec = spec.model_copy(update={"inputs": [inp]})
    graph = build_graph(spec)
    weights, arrays = init_weights(graph), list(make_inputs(graph, batch).values())
    if fw == "torch":
        import torch
        import torch.utils.benchmark as tb

        from probes.frameworks.torch import build as build_torch

        torch.set_num_threads(cpu_budget())
        m = build_torch.build(graph, weights)
        xs = [torch.from_numpy(a) for a in arrays]
        timer = tb.Timer(
            "with torch.inference_mode(): m(*xs)",
            globals={"m": m, "xs": xs, "torch": torch},
            num_threads=cpu_budget(),
        )
        median = timer.blocked_autorange(min_run_time=3.0).median
    else:
        import tensorflow as tf

        from probes.frameworks.tf import build as build_tf

        tf.config.threading.set_intra_op_parallelism_threads(cpu_budget())
        built = build_tf.build(graph, weights)
        fed = [
            tf.constant(build_tf.to_cl(a) if built.input_layouts[i.name] == build_tf.CL else a)
            for i, a in zip(spec.inputs, arrays, strict=True)
        ]
        call = tf.function(lambda: built.model(fed[0] if len(fed) == 1 else fed, training=False))
        for _ in range(20):
            call().numpy()
        number = max(1, int(0.2 / min(timeit.repeat(lambda: call().numpy(), number=1, repeat=5))))
        runs = timeit.repeat(lambda: call().numpy(), number=number, repeat=15)
        median = sorted(runs)[len(runs) // 2] / number
    print(json.dumps({"median_s": median}))


if __name__ == "__main__":
    main()
