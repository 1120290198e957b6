"""The constants that shape the per-operator fit (``opfit``), each with the measurement
that chose it. Six can be overridden by an environment variable (``FWADVISOR_<NAME>``),
for evaluation only (``benchmarks/predictor_eval_ops.py`` on stored references,
``docs/benchmarks.md``); nothing in the product sets them, and a value that is not a
number is ignored with a warning rather than stopping the server.
"""

from __future__ import annotations

import math
import os
import warnings


def _knob(name: str, default: float) -> float:
    text = os.environ.get(f"FWADVISOR_{name}")
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        warnings.warn(
            f"FWADVISOR_{name}={text!r} is not a number >= 0; using {default}", stacklevel=2
        )
        return default
    return value


#: Width of the interpolation of cell residuals, in log10 units of FLOPs and bytes.
#: 0.25 and 0.35 were no better on the references (2026-12-06).
BANDWIDTH_LOG10 = _knob("BANDWIDTH", 0.5)
#: The batch is a third coordinate, in log10 units times this: frameworks pick another
#: algorithm at batch 1 (a 512-channel conv on 2x2 took 1.5 ms at batch 1 and 0.9 ms
#: at batch 8 in torch), which no price per FLOP or byte can follow, so a batch-1 node
#: learns from batch-1 cells. At 1.0, batches 1 and 8 are 0.9 decades apart: weight 0.04.
BATCH_SCALE = _knob("BATCH_SCALE", 1.0)
#: Pseudo-weight of "no correction" in the interpolation between cells (a node within
#: EXACT_LOG10 of a cell takes that cell's residual whole). 0.5 before 2026-12-06; 0.2
#: lowered the default-settings MAPE by half a point and raised the share within 10% by
#: three.
SHRINK = _knob("SHRINK", 0.2)
#: A node within this distance of a measured cell (log10 units of FLOPs, bytes and the
#: batch coordinate: 0.1 is 26%) is priced by that cell alone, as a lookup table: the
#: smoothing shared XLA's 66 ms 2x2 conv cell with its neighbours and priced the same
#: conv inside resnet18 at 6 ms. Lowered the MAPE on both sets (main: default 18.8% ->
#: 18.2%, tuned 26.2% -> 23.8%; held out: 16.0% -> 15.4%, 24.3% -> 23.8%; at 0.01
#: decades: 18.7%, 23.9%, 15.9%, 23.8%). Chosen among 0, 0.01 and 0.1 on both sets.
EXACT_LOG10 = _knob("EXACT", 0.1)
#: An elementwise op right after a conv costs more in eager mode than its own cell: it
#: reads the conv's fresh output, not the input its cell reuses call after call (torch
#: eager chains: 2.0x the epilogue's cells; inside resnet18, batch_norm, relu and add
#: ran 2-5x their isolated time). The chains measure it, up to this factor.
MAX_EPILOGUE = _knob("MAX_EPILOGUE", 4.0)
#: Which statistic of a cell's timed calls prices its kernel. The fastest call: on a
#: shared machine, a two-thread kernel often waits a scheduler slice for its second
#: thread (a 0.7 ms conv chain read 57 ms at its lower quartile), and the minimum is
#: the kernel without that wait. The whole-model correction absorbs the bias.
CELL_STAT = os.environ.get("FWADVISOR_CELL_STAT", "min")  # or q25, median
#: A cell this many times slower than its kernel's fit waited, not computed ...
STALL = 3.0
#: ... unless its calls agreed: lower quartile within this factor of the fastest. A
#: wait for the CPU shows as a spread (a stalled chain: 0.75 ms at best, 57 ms at its
#: lower quartile); a kernel that is slow for real is slow in every call.
STEADY = 1.25
