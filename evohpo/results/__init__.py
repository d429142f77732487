"""Results read back from a checkpoint directory: load, tables, curves, plots and the command line."""
