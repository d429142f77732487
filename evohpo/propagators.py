"""Small composable breeding operators; the rng is always passed in.

Every propagator maps a list of configurations to a list of configurations:
``prop(parents, rng) -> offspring``. The breeding pool handed to the first operator is
sorted best first, so selection needs no losses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .space import Choice, Space

Params = dict[str, Any]
Propagator = Callable[[Sequence[Params], np.random.Generator], list[Params]]


def distinct(rng: np.random.Generator, n: int, k: int) -> list[int]:
    """``k`` distinct indices below ``n`` (all of them when ``k >= n``), cheap for small ``k``."""
    if k >= n:
        return list(range(n))
    if 4 * k > n:
        return [int(i) for i in rng.permutation(n)[:k]]
    picked: dict[int, None] = {}
    while len(picked) < k:
        picked[int(rng.integers(n))] = None
    return list(picked)


def _check_prob(name: str, p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}={p!r} must be a probability in [0, 1]")
    return float(p)


def _check_count(name: str, k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{name}={k!r} must be a positive int")
    return k


# --- selection ----------------------------------------------------------------------------------------------


class SelectBest:
    """The ``k`` best of the pool."""

    def __init__(self, k: int) -> None:
        self.k = _check_count("k", k)

    def __call__(self, pool: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        return list(pool[: self.k])


class SelectUniform:
    """``k`` distinct members of the pool, uniformly at random (all of them when the pool is smaller)."""

    def __init__(self, k: int) -> None:
        self.k = _check_count("k", k)

    def __call__(self, pool: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        return [pool[i] for i in distinct(rng, len(pool), self.k)]


class SelectTournament:
    """``k`` winners of tournaments among ``size`` random members (the pool is sorted: lowest index wins)."""

    def __init__(self, k: int, size: int = 3) -> None:
        self.k, self.size = _check_count("k", k), _check_count("size", size)

    def __call__(self, pool: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        if not pool:
            return []
        return [pool[min(int(rng.integers(len(pool))) for _ in range(self.size))] for _ in range(self.k)]


# --- variation ----------------------------------------------------------------------------------------------


class CrossoverUniform:
    """With probability ``prob``, one child taking each parameter from either of two parents; else a copy."""

    def __init__(self, prob: float = 0.7) -> None:
        self.prob = _check_prob("prob", prob)

    def __call__(self, parents: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        if not parents:
            return []
        a = parents[0]
        if len(parents) < 2 or rng.random() >= self.prob:
            return [dict(a)]
        b = parents[1]
        return [{k: (a[k] if rng.random() < 0.5 else b[k]) for k in a}]


class PointMutation:
    """With probability ``prob``, resample ``points`` random parameters of each configuration."""

    def __init__(self, space: Space, points: int = 1, prob: float = 1.0) -> None:
        self.space, self.points, self.prob = Space(space), _check_count("points", points), _check_prob("prob", prob)
        self._names = list(self.space)

    def _mutate(self, name: str, value: Any, rng: np.random.Generator) -> Any:
        return self.space[name].sample(rng)

    def __call__(self, parents: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        out = []
        for p in parents:
            child = dict(p)
            if rng.random() < self.prob:
                for i in distinct(rng, len(self._names), self.points):
                    name = self._names[i]
                    child[name] = self._mutate(name, child[name], rng)
            out.append(child)
        return out


class IntervalMutationNormal(PointMutation):
    """Gaussian steps of ``sigma_factor`` x range (log space for log parameters; integers rounded).

    A ``Choice`` moves to a neighbour when its values are ordered numbers, else resamples another value.
    """

    def __init__(self, space: Space, sigma_factor: float = 0.05, points: int = 1, prob: float = 1.0) -> None:
        super().__init__(space, points, prob)
        if not sigma_factor > 0:
            raise ValueError(f"sigma_factor={sigma_factor!r} must be > 0")
        self.sigma_factor = float(sigma_factor)

    def _mutate(self, name: str, value: Any, rng: np.random.Generator) -> Any:
        param = self.space[name]
        if isinstance(param, Choice):
            return param.neighbour(value, rng)
        return param.from_unit(param.to_unit(value) + rng.normal(0.0, self.sigma_factor))


class RandomInit:
    """With probability ``prob``, replace each configuration (or, given none, make one) by a random draw."""

    def __init__(self, space: Space, prob: float = 1.0) -> None:
        self.space, self.prob = Space(space), _check_prob("prob", prob)

    def __call__(self, parents: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        if not parents:
            return [self.space.sample(rng)]
        return [self.space.sample(rng) if rng.random() < self.prob else dict(p) for p in parents]


class GridSearch:
    """Walks the grid of ``space`` in a fixed order; worker ``offset`` of ``stride`` takes every stride-th point."""

    def __init__(self, space: Space, points: int = 5, offset: int = 0, stride: int = 1) -> None:
        self.space, self.points = Space(space), _check_count("points", points)
        self.stride = _check_count("stride", stride)
        if not 0 <= offset < stride:
            raise ValueError(f"offset={offset!r} must be in [0, stride={stride})")
        self.size = self.space.grid_size(points)
        self._axes = [p.grid(points) for p in self.space.values()]
        self.cursor = offset

    def __call__(self, parents: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        if self.cursor >= self.size:  # exhausted: the evolver's dedupe falls back to random configurations
            return [self.space.sample(rng)]
        i, self.cursor = self.cursor, self.cursor + self.stride
        values = []
        for axis in reversed(self._axes):
            i, j = divmod(i, len(axis))
            values.append(axis[j])
        return [dict(zip(self.space, reversed(values)))]

    def state_dict(self) -> dict[str, Any]:
        return {"cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cursor = int(state["cursor"])


# --- combinators --------------------------------------------------------------------------------------------


class Compose:
    """Apply propagators one after another."""

    def __init__(self, *steps: Propagator) -> None:
        if not steps:
            raise ValueError("Compose needs at least one propagator")
        self.steps = steps

    def __call__(self, parents: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        out = list(parents)
        for step in self.steps:
            out = step(out, rng)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {str(i): s.state_dict() for i, s in enumerate(self.steps) if hasattr(s, "state_dict")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for i, s in enumerate(self.steps):
            if str(i) in state:
                s.load_state_dict(state[str(i)])  # type: ignore[attr-defined]


class Conditional:
    """``then`` once the pool holds ``pop_size`` configurations, ``otherwise`` before that."""

    def __init__(self, pop_size: int, then: Propagator, otherwise: Propagator) -> None:
        self.pop_size, self.then, self.otherwise = _check_count("pop_size", pop_size), then, otherwise

    def __call__(self, pool: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        return (self.then if len(pool) >= self.pop_size else self.otherwise)(pool, rng)

    def state_dict(self) -> dict[str, Any]:
        return {k: p.state_dict() for k, p in (("then", self.then), ("otherwise", self.otherwise))
                if hasattr(p, "state_dict")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, p in (("then", self.then), ("otherwise", self.otherwise)):
            if k in state:
                p.load_state_dict(state[k])  # type: ignore[attr-defined]


# --- strategies ---------------------------------------------------------------------------------------------


def default_propagator(space: Space, pop_size: int, crossover_prob: float = 0.7, mutation_prob: float = 0.4,
                       random_init_prob: float = 0.1, sigma_factor: float = 0.05) -> Propagator:
    """The genetic algorithm: random until ``pop_size`` individuals exist, then select, cross, mutate."""
    space = Space(space)
    breed = Compose(
        SelectUniform(2),
        CrossoverUniform(crossover_prob),
        PointMutation(space, points=1, prob=mutation_prob),
        IntervalMutationNormal(space, sigma_factor=sigma_factor, points=1, prob=mutation_prob),
        RandomInit(space, prob=random_init_prob),
    )
    return Conditional(pop_size, breed, RandomInit(space))


def random_search(space: Space) -> Propagator:
    """Every configuration drawn at random."""
    return RandomInit(space)


def grid_search(space: Space, points: int = 5, offset: int = 0, stride: int = 1) -> GridSearch:
    """Every grid point once (then random configurations)."""
    return GridSearch(space, points, offset, stride)
