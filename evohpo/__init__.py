"""evohpo: MPI-parallel asynchronous evolutionary hyperparameter optimization.

The public names are loaded on first use, so that ``import evohpo`` (and any of its standard-library-only
modules, such as ``evohpo.journal.finished`` or ``evohpo.testing.functions``) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {  # public name -> the module that defines it
    "optimize": ".api",
    "EvalContext": ".context", "current": ".context",
    "Evolver": ".evolver", "SpaceExhausted": ".evolver",
    "ModelGuided": ".guided", "guided_propagator": ".guided",
    "Individual": ".individual",
    "default_propagator": ".propagators", "grid_search": ".propagators", "random_search": ".propagators",
    "Results": ".results", "load": ".results",
    "Result": ".runner",
    "Choice": ".space", "Float": ".space", "Int": ".space", "Space": ".space",
}
__all__ = ["Choice", "EvalContext", "Evolver", "Float", "Individual", "Int", "ModelGuided", "Result", "Results",
           "Space", "SpaceExhausted", "current", "default_propagator", "grid_search", "guided_propagator", "load",
           "optimize", "random_search"]

if TYPE_CHECKING:  # pragma: no cover
    from .api import optimize
    from .context import EvalContext, current
    from .evolver import Evolver, SpaceExhausted
    from .guided import ModelGuided, guided_propagator
    from .individual import Individual
    from .propagators import default_propagator, grid_search, random_search
    from .results import Results, load
    from .runner import Result
    from .space import Choice, Float, Int, Space


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'evohpo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
