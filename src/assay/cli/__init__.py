"""The `assay` command line: one module per command group."""
