"""bench/pruning.py's package: step accounting and scoring (``steps``), the methods and their worker entry
(``methods``), the driver (``driver``), the statistics and the Markdown (``report``), the command line
(``__main__``)."""
