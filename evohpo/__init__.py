"""evohpo: MPI-parallel asynchronous evolutionary hyperparameter optimization.

The layers (each imports only those above it in this list): ``core`` (space, individuals, population,
evolver, strategies, migration; no MPI, no torch), ``journal`` (checkpoints), ``parallel`` (transports, the
worker loop and its collaborators), ``hpo`` (Lightning CNN, TensorBoard, data, devices) and ``results``
(load, tables, plots, command line); ``api.optimize`` wires them. ``testing`` holds benchmark functions.

The public names are loaded on first use, so that ``import evohpo`` (and any of its standard-library-only
modules, such as ``evohpo.journal.finished`` or ``evohpo.testing.functions``) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {  # public name -> the module that defines it
    "optimize": ".api",
    "Choice": ".core.space", "Float": ".core.space", "Int": ".core.space", "Space": ".core.space",
    "Individual": ".core.individual",
    "Evolver": ".core.evolver", "SpaceExhausted": ".core.evolver",
    "Propagator": ".core.propagators", "default_propagator": ".core.propagators",
    "grid_search": ".core.propagators", "random_search": ".core.propagators",
    "ModelGuided": ".core.guided", "Screened": ".core.guided", "guided_propagator": ".core.guided",
    "STRATEGIES": ".core.strategies",
    "EvalContext": ".core.context", "current": ".core.context",
    "report": ".core.reporting", "Pruned": ".core.reporting",
    "Pruner": ".core.pruners", "ASHA": ".core.pruners", "MedianStopping": ".core.pruners",
    "Callback": ".parallel.callbacks", "SearchInfo": ".parallel.callbacks",
    "SearchResult": ".parallel.result",
    "Results": ".results.load", "load": ".results.load",
}
__all__ = ["ASHA", "STRATEGIES", "Callback", "Choice", "EvalContext", "Evolver", "Float", "Individual", "Int",
           "MedianStopping", "ModelGuided", "Propagator", "Pruned", "Pruner", "Results", "SearchInfo", "SearchResult",
           "Screened", "Space", "SpaceExhausted", "current", "default_propagator", "grid_search", "guided_propagator",
           "load", "optimize", "random_search", "report"]

if TYPE_CHECKING:  # pragma: no cover
    from .api import optimize
    from .core.context import EvalContext, current
    from .core.evolver import Evolver, SpaceExhausted
    from .core.guided import ModelGuided, Screened, guided_propagator
    from .core.individual import Individual
    from .core.propagators import Propagator, default_propagator, grid_search, random_search
    from .core.pruners import ASHA, MedianStopping, Pruner
    from .core.reporting import Pruned, report
    from .core.space import Choice, Float, Int, Space
    from .core.strategies import STRATEGIES
    from .parallel.callbacks import Callback, SearchInfo
    from .parallel.result import SearchResult
    from .results.load import Results, load


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'evohpo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
