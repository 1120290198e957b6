"""Checks that compare the two builds of one spec: numerical parity, convergence on the
same data, and what custom ops cost. Parent side: they send requests to probe workers."""
