"""Measurement engine: model spec, native builders, probe workers.

Nothing imported from this package at top level may import torch or tensorflow;
the framework-specific modules (`build_torch`, `build_tf`, `tf_layers`) are loaded
only inside probe worker processes.
"""
