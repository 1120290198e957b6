"""Child-process entry points. Only these processes load a framework package
(``probes.frameworks.torch`` / ``probes.frameworks.tf``) or an export runtime."""
