"""Import ONNX and Keras files into the neutral spec plus real weights (safetensors).

Parent-side entry point: ``import_file`` (runs the conversion in a bounded child
process). Nothing from the file is ever executed; see docs/import.md.
"""

from probes.importers.sandbox import FORMATS, ImportLimits, ImportResult, import_file

__all__ = ["FORMATS", "ImportLimits", "ImportResult", "import_file"]
