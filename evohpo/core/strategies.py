"""The named breeding strategies (``optimize(propagator=NAME)``) and how each is built for one worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .cma import CMAES
from .guided import Screened, guided_propagator
from .neldermead import NelderMead
from .propagators import (
    AdaptiveGA,
    BreedFn,
    GridSearch,
    Portfolio,
    Propagator,
    as_propagator,
    default_propagator,
    grid_search,
    random_search,
)
from .pso import ParticleSwarm
from .space import Choice, Float, Space

Factory = Callable[[Space, int, int, int], Propagator]  # (space, pop_size, worker, workers) -> propagator


def _ga(space: Space, pop_size: int, worker: int, workers: int) -> Propagator:
    """The GA with multi-scale mutation steps (``default_propagator``)."""
    return default_propagator(space, pop_size)


def _plain_ga(space: Space, pop_size: int, worker: int, workers: int) -> Propagator:
    """The same GA with one fixed step size, as in Propulate's operators."""
    return default_propagator(space, pop_size, sigma_min=None)


def _adaptive(space: Space, pop_size: int, worker: int, workers: int) -> Propagator:
    """The GA or its adaptive-step variant, picked by their recent success: more precise on smooth problems,
    worse on separable multimodal ones (schwefel, birastrigin), and 1.4x slower per step."""
    return Portfolio([default_propagator(space, pop_size), AdaptiveGA(space, pop_size)], decay=0.99)


def _guided(space: Space, pop_size: int, worker: int, workers: int) -> Propagator:
    """GA offspring and samples of the good configurations, screened by a density ratio (TPE's acquisition)."""
    return guided_propagator(space, pop_size)


def _random(space: Space, pop_size: int, worker: int, workers: int) -> Propagator:
    """Every configuration drawn at random."""
    return random_search(space)


def _cmaes(space: Space, pop_size: int, worker: int, workers: int) -> Propagator:
    """Asynchronous IPOP-CMA-ES on the numeric and ordered parameters (with margin for the discrete ones);
    unordered choices from the GA."""
    return CMAES(space, pop_size)


def _ga_cmaes(space: Space, pop_size: int, worker: int, workers: int) -> Propagator:
    """The GA and CMA-ES, each child from one of them, picked by their recent success; CMA-ES learns from
    every result, the GA's children included."""
    return Portfolio([default_propagator(space, pop_size), CMAES(space, pop_size)], decay=0.95)


def _auto(space: Space, pop_size: int, worker: int, workers: int) -> Propagator:
    """A rule on the space: ``cmaes`` when every parameter is a float; ``ga+cmaes`` screened (``Screened``: each
    child the likeliest among the good of 16 the portfolio makes) when every parameter is a choice; else
    ``ga+cmaes``. The screen's estimator takes parameters one by one, so it misleads CMA-ES where numbers
    interact (rotated problems, lr x optimizer): bench/results/quality-notes.md."""
    if continuous(space):
        return _cmaes(space, pop_size, worker, workers)
    portfolio = _ga_cmaes(space, pop_size, worker, workers)
    return Screened(space, portfolio, pop_size) if all_choices(space) else portfolio


def continuous(space: Space) -> bool:
    """Whether every parameter of ``space`` is a float (there is at least one)."""
    return len(space) > 0 and all(isinstance(p, Float) for p in space.values())


def all_choices(space: Space) -> bool:
    """Whether every parameter of ``space`` is a ``Choice`` (there is at least one)."""
    return len(space) > 0 and all(isinstance(p, Choice) for p in space.values())


def _pso(space: Space, pop_size: int, worker: int, workers: int) -> Propagator:
    """Particle swarm: each worker moves its own particles towards their bests and the island's best."""
    return ParticleSwarm(space, pop_size)


def _nelder_mead(space: Space, pop_size: int, worker: int, workers: int) -> Propagator:
    """Nelder-Mead, a simplex of each worker's own results (adaptive coefficients), restarted when it collapses."""
    return NelderMead(space, pop_size)


def _grid(space: Space, pop_size: int, worker: int, workers: int) -> Propagator:
    """Every grid point once (5 per numeric parameter; "grid:N" for N), the grid split across the workers (worker
    k takes every workers-th point); the search ends when all are evaluated, without a budget."""
    return grid_search(space).share(worker, workers)


STRATEGIES: dict[str, Factory] = {"ga": _ga, "plain-ga": _plain_ga, "adaptive": _adaptive, "guided": _guided,
                                  "cmaes": _cmaes, "ga+cmaes": _ga_cmaes, "pso": _pso, "nelder-mead": _nelder_mead,
                                  "auto": _auto, "random": _random, "grid": _grid}
DEFAULT = "auto"  # bench/results/quality-continuous.md and quality-tables.md: the numbers behind the rule


def grid_points(strategy: Any) -> int | None:
    """The values per numeric parameter of a grid strategy's name: 5 for "grid", N for "grid:N" (a positive
    integer); None for any other strategy."""
    if not isinstance(strategy, str) or not (strategy == "grid" or strategy.startswith("grid:")):
        return None
    if strategy == "grid":
        return 5
    n = strategy[len("grid:"):]
    if not (n.isascii() and n.isdigit() and int(n) > 0):
        raise ValueError(f"propagator={strategy!r}: after 'grid:' comes the number of values per numeric "
                         f"parameter, a positive integer, e.g. 'grid:10'")
    return int(n)


def ends_by_itself(strategy: Any) -> bool:
    """Whether ``strategy`` ends the search by itself (a grid search, by name or as a ``GridSearch``), so that
    the search needs no budget."""
    return isinstance(strategy, GridSearch) or grid_points(strategy) is not None


def make_propagator(strategy: str | Propagator | BreedFn | None, space: Space, pop_size: int, worker: int = 0,
                    workers: int = 1) -> Propagator:
    """The propagator of ``worker`` (of ``workers``): a strategy by name (None: ``DEFAULT``), or one given as a
    Propagator or a function ``prop(parents, rng) -> offspring``.

    "grid:N" is the grid search with N values per numeric parameter ("grid": 5). A grid, by name or given as a
    ``GridSearch``, is split among the workers by index: each takes its share (``GridSearch.share``).
    How the named strategies compare: bench/results/quality-notes.md.
    """
    if isinstance(strategy, GridSearch):
        if strategy.space != Space(space):
            raise ValueError(f"propagator={strategy!r} is a grid over another space: {strategy.space!r}, "
                             f"the search's is {Space(space)!r}")
        return strategy.share(worker, workers)
    if (points := grid_points(strategy)) is not None:
        return grid_search(Space(space), points).share(worker, workers)
    if strategy is None or isinstance(strategy, str):
        factory = STRATEGIES.get(DEFAULT if strategy is None else strategy)
        if factory is None:
            raise ValueError(f"propagator={strategy!r} must be one of {tuple(STRATEGIES)}, 'grid:N' or a callable")
        return factory(Space(space), pop_size, worker, workers)
    if not callable(strategy):
        raise ValueError(f"propagator={strategy!r} must be one of {tuple(STRATEGIES)}, 'grid:N' or a callable")
    return as_propagator(strategy)
