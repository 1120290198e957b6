"""The reference side of a ``.keras`` import's parity: Keras runs the original layer graph.

``python -m probes.worker.keras_ref IN.npz OUT.npz MODEL.keras`` rebuilds the model with
``probes.frameworks.tf.reference`` (standard layers only, never ``load_model``), runs it
once and writes the outputs. Image inputs arrive channels-first (as the spec has them)
and are moved channels-last.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    reference = importlib.import_module("probes.frameworks.tf.reference")  # Keras lives there
    model, images = reference.build(Path(argv[2]))
    with np.load(argv[0]) as z:
        arrays = [z[f"arr_{i}"] for i in range(len(z.files))]
    feed = [np.moveaxis(a, 1, -1) if img else a for a, img in zip(arrays, images, strict=True)]
    outs = model(feed if len(feed) > 1 else feed[0], training=False)
    outs = outs if isinstance(outs, list | tuple) else [outs]
    np.savez(argv[1], *[np.asarray(o) for o in outs])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
