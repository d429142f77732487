"""Small composable breeding operators; the rng is always passed in.

Every propagator maps a list of configurations to a list of configurations:
``prop(parents, rng) -> offspring``. The breeding pool handed to the first operator is
sorted best first, so selection needs no losses. ``Propagator`` is the interface: subclasses implement
``__call__`` and override the hooks they need; a plain function becomes one with ``as_propagator``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .individual import INTERRUPTED, Individual
from .space import Choice, Encoding, Space, SpaceExhausted

Params = dict[str, Any]
BreedFn = Callable[[Sequence[Params], np.random.Generator], list[Params]]


class Propagator:
    """A breeding strategy: ``prop(parents, rng) -> offspring``, with hooks that do nothing by default.

    Attributes:
        pool_size: how many of the island's best the evolver hands over (None: its ``pop_size``); a
            strategy that models good and bad configurations wants more than it breeds from.
    """

    pool_size: int | None = None

    def __call__(self, parents: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(parents, rng) -> offspring")

    def feedback(self, params: Params, success: bool) -> None:
        """Told for each child of this propagator whether it entered the breeding population."""

    def join(self, island: int, ranks: Sequence[int]) -> None:
        """Told once, before the search: the worker's island and the ranks of its workers (``ranks``)."""

    def observe(self, individual: Individual) -> None:
        """Told of every result of the island: this worker's, and its peers' as they arrive (in any order)."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state that a resumed search must continue from (none by default)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()``'s output."""


class FunctionPropagator(Propagator):
    """A plain ``fn(parents, rng) -> offspring`` as a stateless Propagator."""

    def __init__(self, fn: BreedFn) -> None:
        self.fn = fn

    def __call__(self, parents: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        return self.fn(parents, rng)

    def __repr__(self) -> str:
        return f"FunctionPropagator({self.fn!r})"


def as_propagator(prop: Propagator | BreedFn) -> Propagator:
    """``prop`` itself if it is a Propagator, a wrapped function otherwise; a TypeError for anything else."""
    if isinstance(prop, Propagator):
        return prop
    if not callable(prop):
        raise TypeError(f"propagator={prop!r} must be a Propagator or a callable prop(parents, rng) -> offspring")
    return FunctionPropagator(prop)


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


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _check_prob(name: str, p: float) -> float:
    if not _is_real(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}={p!r} must be a probability in [0, 1]")
    return float(p)


def _check_count(name: str, k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name}={k!r} must be a positive int")
    return int(k)


def _check_positive(name: str, v: float) -> float:
    if not _is_real(v) or not 0 < v < math.inf:
        raise ValueError(f"{name}={v!r} must be a finite number > 0")
    return float(v)


# --- selection ----------------------------------------------------------------------------------------------


class SelectBest(Propagator):
    """The ``k`` best of the pool."""

    def __init__(self, k: int) -> None:
        self.k = _check_count("k", k)

    def __call__(self, pool: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        return list(pool[: self.k])


class SelectUniform(Propagator):
    """``k`` distinct members of the pool, uniformly at random (all of them when the pool is smaller)."""

    def __init__(self, k: int) -> None:
        self.k = _check_count("k", k)

    def __call__(self, pool: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        return [pool[i] for i in distinct(rng, len(pool), self.k)]


class SelectTournament(Propagator):
    """``k`` winners of tournaments among ``size`` random members (the pool is sorted: lowest index wins)."""

    def __init__(self, k: int, size: int = 3) -> None:
        self.k, self.size = _check_count("k", k), _check_count("size", size)

    def __call__(self, pool: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        if not pool:
            return []
        winners = rng.integers(len(pool), size=(self.k, self.size)).min(axis=1)  # one draw for all tournaments
        return [pool[i] for i in winners.tolist()]


# --- variation ----------------------------------------------------------------------------------------------


class CrossoverUniform(Propagator):
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


class PointMutation(Propagator):
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

    With ``sigma_min``, a share ``fine_prob`` of the steps draws its sigma log-uniformly from
    [``sigma_min``, ``sigma_factor``] instead (multi-scale steps). A ``Choice`` moves to a neighbour when its
    values are ordered numbers, else resamples another value.
    """

    def __init__(self, space: Space, sigma_factor: float = 0.05, points: int = 1, prob: float = 1.0,
                 sigma_min: float | None = None, fine_prob: float = 1.0) -> None:
        super().__init__(space, points, prob)
        self.fine_prob = _check_prob("fine_prob", fine_prob)
        self.sigma_factor = _check_positive("sigma_factor", sigma_factor)
        if sigma_min is not None and not (_is_real(sigma_min) and 0 < sigma_min <= sigma_factor):
            raise ValueError(f"sigma_min={sigma_min!r} must be None or in (0, sigma_factor={sigma_factor!r}]")
        self._log_span = None if sigma_min is None else (math.log(sigma_min), math.log(sigma_factor))

    def _sigma(self, rng: np.random.Generator) -> float:
        if self._log_span is None or (self.fine_prob < 1.0 and rng.random() >= self.fine_prob):
            return self.sigma_factor
        return math.exp(rng.uniform(*self._log_span))

    def _mutate(self, name: str, value: Any, rng: np.random.Generator) -> Any:
        param = self.space[name]
        if isinstance(param, Choice):
            return param.neighbour(value, rng)
        return param.from_unit(param.to_unit(value) + rng.normal(0.0, self._sigma(rng)))


class RandomInit(Propagator):
    """With probability ``prob``, replace each configuration (or, given none, make one) by a random draw.

    With ``prob=1`` the parents carry nothing: one draw, however many there are, so that what the random stream
    gives next does not depend on the size of the pool (which depends on when peers' results arrived).
    """

    def __init__(self, space: Space, prob: float = 1.0) -> None:
        self.space, self.prob = Space(space), _check_prob("prob", prob)

    def __call__(self, parents: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        if not parents or self.prob == 1.0:
            return [self.space.sample(rng)]
        return [self.space.sample(rng) if rng.random() < self.prob else dict(p) for p in parents]


class GridSearch(Propagator):
    """Every point of the grid of ``space`` once, in a fixed order; then ``SpaceExhausted`` ends the worker.

    Args:
        points: values per numeric parameter, evenly spaced from low to high (log-spaced with ``log=True``; an
            ``Int`` range with fewer integers gives each of them once); a ``Choice`` gives all its values.
        offset: the first grid index this propagator takes; then ``offset + stride``, ...
        stride: the step between its grid indices; ``share`` divides them among workers (``optimize`` does so
            with every grid it is given).

    Points the island evaluated already (told by ``observe``, restored results included) are passed over, so
    that a resumed search goes on with the points left, whatever the cursor it restored.
    """

    def __init__(self, space: Space, points: int = 5, offset: int = 0, stride: int = 1) -> None:
        self.space, self.points = Space(space), _check_count("points", points)
        self.stride = _check_count("stride", stride)
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or not 0 <= offset < stride:
            raise ValueError(f"offset={offset!r} must be an int in [0, stride={stride})")
        self.offset = self.cursor = int(offset)
        self._axes = [p.grid(points) for p in self.space.values()]
        self._where = [{v: j for j, v in enumerate(axis)} for axis in self._axes]
        self.size = math.prod(len(axis) for axis in self._axes)
        self._evaluated: set[int] = set()  # grid indices of the island's results

    def share(self, worker: int, workers: int) -> GridSearch:
        """The part of this grid that worker ``worker`` of ``workers`` takes: every ``workers``-th of its points."""
        workers = _check_count("workers", workers)
        if isinstance(worker, bool) or not isinstance(worker, (int, np.integer)) or not 0 <= worker < workers:
            raise ValueError(f"worker={worker!r} must be an int in [0, workers={workers})")
        return GridSearch(self.space, self.points, self.offset + int(worker) * self.stride, self.stride * workers)

    def point(self, i: int) -> Params:
        """The configuration at grid index ``i`` (the order of ``Space.grid``)."""
        values = []
        for axis in reversed(self._axes):
            i, j = divmod(i, len(axis))
            values.append(axis[j])
        return dict(zip(self.space, reversed(values)))

    def index(self, params: Params) -> int | None:
        """The grid index of ``params``, None when it is no grid point."""
        i = 0
        for name, axis, where in zip(self.space, self._axes, self._where):
            j = where.get(params.get(name))
            if j is None:
                return None
            i = i * len(axis) + j
        return i

    def __call__(self, parents: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        while self.cursor < self.size:
            i, self.cursor = self.cursor, self.cursor + self.stride
            if i not in self._evaluated:
                return [self.point(i)]
        raise SpaceExhausted(self._done())

    def _done(self) -> str:
        if self.stride == 1 or len(self._evaluated) >= self.size:
            return f"grid done: all {self.size} points evaluated"
        share = len(range(self.offset, self.size, self.stride))
        return (f"grid done: all {share} points of this worker's share evaluated (the grid has {self.size}; this "
                f"worker takes indices {self.offset}, {self.offset + self.stride}, ...)")

    def observe(self, individual: Individual) -> None:
        if individual.status != INTERRUPTED and (i := self.index(individual.params)) is not None:
            self._evaluated.add(i)

    def state_dict(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "offset": self.offset, "stride": self.stride}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from the cursor of the same share; another share's cursor (the workers changed) is ignored:
        the points the island evaluated are passed over all the same."""
        if (state.get("offset", self.offset), state.get("stride", self.stride)) == (self.offset, self.stride):
            self.cursor = int(state["cursor"])

    def __repr__(self) -> str:
        return f"GridSearch({self.space!r}, points={self.points}, offset={self.offset}, stride={self.stride})"


# --- combinators --------------------------------------------------------------------------------------------


class Combinator(Propagator):
    """A propagator made of others (``parts``): every hook reaches every part, the state is the parts' states by
    key, and the pool is the largest any part asks for."""

    def parts(self) -> dict[str, Propagator]:
        raise NotImplementedError(f"{type(self).__name__} must implement parts()")

    @property
    def pool_size(self) -> int | None:  # type: ignore[override]
        sizes = [p.pool_size for p in self.parts().values() if p.pool_size is not None]
        return max(sizes) if sizes else None

    def feedback(self, params: Params, success: bool) -> None:
        for part in self.parts().values():
            part.feedback(params, success)

    def join(self, island: int, ranks: Sequence[int]) -> None:
        for part in self.parts().values():
            part.join(island, ranks)

    def observe(self, individual: Individual) -> None:
        for part in self.parts().values():
            part.observe(individual)

    def state_dict(self) -> dict[str, Any]:
        return {k: st for k, p in self.parts().items() if (st := p.state_dict())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, p in self.parts().items():
            if k in state:
                p.load_state_dict(state[k])


class Compose(Combinator):
    """Apply propagators one after another."""

    def __init__(self, *steps: Propagator | BreedFn) -> None:
        if not steps:
            raise ValueError("Compose needs at least one propagator")
        self.steps = tuple(as_propagator(s) for s in steps)

    def __call__(self, parents: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        out = list(parents)
        for step in self.steps:
            out = step(out, rng)
        return out

    def parts(self) -> dict[str, Propagator]:
        return {str(i): s for i, s in enumerate(self.steps)}


class Conditional(Combinator):
    """``then`` once the pool holds ``pop_size`` configurations, ``otherwise`` before that."""

    def __init__(self, pop_size: int, then: Propagator | BreedFn, otherwise: Propagator | BreedFn) -> None:
        self.pop_size = _check_count("pop_size", pop_size)
        self.then, self.otherwise = as_propagator(then), as_propagator(otherwise)

    def __call__(self, pool: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        return (self.then if len(pool) >= self.pop_size else self.otherwise)(pool, rng)

    def parts(self) -> dict[str, Propagator]:
        return {"then": self.then, "otherwise": self.otherwise}


# --- strategies ---------------------------------------------------------------------------------------------


def default_propagator(space: Space, pop_size: int, crossover_prob: float = 0.7, mutation_prob: float = 0.4,
                       random_init_prob: float = 0.1, sigma_factor: float = 0.05,
                       tournament_size: int = 3, sigma_min: float | None = 5e-4,
                       fine_prob: float = 0.5) -> Propagator:
    """The genetic algorithm: random until ``pop_size`` individuals exist, then select, cross, mutate.

    Parents are the winners of tournaments among ``tournament_size`` of the best ``pop_size`` (1: uniform
    among them, as in Propulate). Measured in one process, median of 9 seeds on 17 benchmark problems:
    size 3 beat uniform selection on 12, tied on 1, lost on 4 (rosenbrock-5d, bisphere-10d, mixed-6d x 2).

    Gaussian mutation is multi-scale: half of the steps have ``sigma_factor`` x range, the other half a
    sigma drawn log-uniformly from [``sigma_min``, ``sigma_factor``], so that the search can also settle
    into narrow valleys (bench/quality.py, 20 seeds: bukin 2.9 -> 1.0, himmelblau 5e-3 -> 1e-4, schwefel
    16 -> 13; worse on quartic-10d and step-10d). ``sigma_min=None`` is the plain GA (one fixed sigma).
    """
    space = Space(space)
    _check_count("pop_size", pop_size)
    for name, p in (("crossover_prob", crossover_prob), ("mutation_prob", mutation_prob),
                    ("random_init_prob", random_init_prob), ("fine_prob", fine_prob)):
        _check_prob(name, p)
    _check_count("tournament_size", tournament_size)
    breed = Compose(
        SelectTournament(2, tournament_size) if tournament_size > 1 else SelectUniform(2),
        CrossoverUniform(crossover_prob),
        PointMutation(space, points=1, prob=mutation_prob),
        IntervalMutationNormal(space, sigma_factor=sigma_factor, points=1, prob=mutation_prob, sigma_min=sigma_min,
                               fine_prob=fine_prob),
        RandomInit(space, prob=random_init_prob),
    )
    return Conditional(pop_size, breed, RandomInit(space))


def random_search(space: Space) -> Propagator:
    """Every configuration drawn at random."""
    return RandomInit(space)


def grid_search(space: Space, points: int = 5, offset: int = 0, stride: int = 1) -> GridSearch:
    """Every point of the grid once, ``points`` values per numeric parameter; then the search ends by itself
    (``GridSearch``). ``optimize`` splits it among the workers by index."""
    return GridSearch(space, points, offset, stride)


class AdaptiveGA(Propagator):
    """A genetic algorithm whose mutation steps follow the spread of the breeding population.

    Two parents from the best ``pop_size`` (uniform), uniform crossover with ``crossover_prob``, then every
    numeric parameter takes a Gaussian step of ``scale`` x the population's standard deviation along it (on
    the unit interval, log-aware), so steps shrink as the population converges and widen when it spreads;
    each choice moves (a neighbour if ordered, another value if not) with probability 1 / parameters. With
    ``random_init_prob`` a child is drawn at random instead.
    """

    def __init__(self, space: Space, pop_size: int, crossover_prob: float = 0.7, scale: float = 1.0,
                 min_sigma: float = 1e-3, max_sigma: float = 0.3, random_init_prob: float = 0.05) -> None:
        self.space, self.pop_size = Space(space), _check_count("pop_size", pop_size)
        self.crossover = CrossoverUniform(_check_prob("crossover_prob", crossover_prob))
        self.random_init_prob = _check_prob("random_init_prob", random_init_prob)
        self.scale = _check_positive("scale", scale)
        if not (_is_real(min_sigma) and _is_real(max_sigma) and 0 < min_sigma <= max_sigma):
            raise ValueError(f"need 0 < min_sigma <= max_sigma, got {min_sigma=!r}, {max_sigma=!r}")
        self.min_sigma, self.max_sigma = float(min_sigma), float(max_sigma)
        self.enc = Encoding(self.space)
        self.choice_prob = 1.0 / len(self.space)
        self._parents: list[Params] = []  # the population the cached step sizes belong to
        self._sigma = np.empty(0)

    def _steps(self, parents: Sequence[Params]) -> np.ndarray:
        """Step sizes per numeric parameter; recomputed only when the breeding population changed."""
        if len(parents) != len(self._parents) or any(a is not b for a, b in zip(parents, self._parents)):
            self._parents = list(parents)
            self._sigma = np.clip(self.scale * self.enc.unit(parents).std(axis=0), self.min_sigma, self.max_sigma)
        return self._sigma

    def __call__(self, pool: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        if len(pool) < self.pop_size or rng.random() < self.random_init_prob:
            return [self.space.sample(rng)]
        parents = pool[: self.pop_size]
        sigma = self._steps(parents)
        child = self.crossover([parents[i] for i in distinct(rng, len(parents), 2)], rng)[0]
        u = self.enc.unit([child])[0] + rng.normal(size=len(sigma)) * sigma
        for j, name in enumerate(self.enc.numeric):
            child[name] = self.space[name].from_unit(u[j])
        for name in self.enc.choices:
            if rng.random() < self.choice_prob:
                child[name] = self.space[name].neighbour(child[name], rng)  # type: ignore[union-attr]
        return [child]


class Portfolio(Combinator):
    """Several breeding strategies, each picked with a probability that follows its recent success.

    A child succeeds when it enters the breeding population (``feedback`` from the evolver). Probabilities
    are matched to exponentially averaged success rates (``decay``), never below ``min_prob``. Children
    still waiting for feedback are remembered up to ``memory`` of them (the oldest are forgotten: a child
    the evolver dropped as a duplicate never gets feedback).
    """

    def __init__(self, strategies: Sequence[Propagator | BreedFn], min_prob: float = 0.1, decay: float = 0.95,
                 memory: int = 1024) -> None:
        if not strategies:
            raise ValueError("Portfolio needs at least one strategy")
        if not 0 <= min_prob * len(strategies) <= 1:
            raise ValueError(f"min_prob={min_prob!r} x {len(strategies)} strategies must be <= 1")
        if not 0 <= decay < 1:
            raise ValueError(f"decay={decay!r} must be in [0, 1)")
        self.strategies = [as_propagator(p) for p in strategies]
        self.min_prob, self.decay = float(min_prob), float(decay)
        self.memory = _check_count("memory", memory)
        self.rates = [0.5] * len(strategies)
        self._made: dict[tuple, int] = {}  # child key -> strategy, until its feedback arrives

    def probs(self) -> list[float]:
        """The probability of picking each strategy now."""
        total, n = sum(self.rates), len(self.rates)
        if total <= 0:
            return [1.0 / n] * n
        free = 1.0 - self.min_prob * n
        return [self.min_prob + free * r / total for r in self.rates]

    def __call__(self, pool: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        u = rng.random()
        k = next((i for i, c in enumerate(itertools.accumulate(self.probs())) if u < c), len(self.strategies) - 1)
        children = self.strategies[k](pool, rng)
        for c in children:
            self._made[tuple(c.values())] = k
        while len(self._made) > self.memory:
            del self._made[next(iter(self._made))]
        return children

    def feedback(self, params: Params, success: bool) -> None:
        """Credit the strategy that made ``params`` (unknown configurations are ignored)."""
        k = self._made.pop(tuple(params.values()), None)
        if k is not None:
            self.rates[k] = self.decay * self.rates[k] + (1 - self.decay) * float(success)
        super().feedback(params, success)

    def parts(self) -> dict[str, Propagator]:
        return {str(i): s for i, s in enumerate(self.strategies)}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"rates": list(self.rates)}
        if parts := super().state_dict():
            state["strategies"] = parts
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        rates = [float(r) for r in state["rates"]]
        if len(rates) != len(self.strategies):
            raise ValueError(f"rates={rates!r} must hold one rate per strategy ({len(self.strategies)})")
        self.rates = rates
        super().load_state_dict(state.get("strategies", {}))
