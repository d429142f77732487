"""evohpo: MPI-parallel asynchronous evolutionary hyperparameter optimization."""

from .api import optimize
from .context import EvalContext, current
from .evolver import Evolver, SpaceExhausted
from .guided import ModelGuided, guided_propagator
from .individual import Individual
from .propagators import default_propagator, grid_search, random_search
from .results import Results, load
from .runner import Result
from .space import Choice, Float, Int, Space

__version__ = "0.1.0"
__all__ = ["Choice", "EvalContext", "Evolver", "Float", "Individual", "Int", "ModelGuided", "Result", "Results",
           "Space", "SpaceExhausted", "current", "default_propagator", "grid_search", "guided_propagator", "load",
           "optimize", "random_search"]
