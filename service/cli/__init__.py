"""The ``fwadvisor`` command line: one module per command, argument parsing and rendering."""
