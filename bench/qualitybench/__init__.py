"""The search-quality benchmark run by bench/quality.py (its docstring describes the methods and settings).

Modules: ``problems`` (the problems and their space format), ``methods`` (the optimizer adapters and the worker
entry), ``tasks`` (the rows of a run), ``driver`` (jobs, scheduling, locking, resumption), ``report`` (statistics
and the Markdown), ``__main__`` (the command line). Import it with bench/ on ``sys.path``.
"""
