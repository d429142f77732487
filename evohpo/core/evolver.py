"""The pure ask/tell core for one island worker: no MPI, no torch, no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import clock
from .individual import FAILED, OK, PRUNED, Individual
from .population import Population, rank_key
from .propagators import BreedFn, Propagator, RandomInit, as_propagator, default_propagator
from .space import Choice, Space, SpaceExhausted


def _below(rng: np.random.Generator, n: int) -> int:
    """A uniform integer in [0, n), also for n beyond 64 bits (a finite space can be that large)."""
    if n < 2**62:
        return int(rng.integers(n))
    return int.from_bytes(rng.bytes(n.bit_length() // 8 + 8), "little") % n


class Evolver:
    """Breeds configurations from an island's population; ``ask`` a candidate, ``tell`` its loss.

    Args:
        propagator: the breeding strategy (default: the GA, ``default_propagator``; ``optimize`` picks its own
            default from ``core.strategies``).
        pop_size: size of the breeding population (the best of the island).
        pool_size: how many of the best are handed to the propagator (default: what the propagator asks for,
            ``Propagator.pool_size``, else pop_size; never fewer than pop_size).
        name: prefix of the ids this evolver hands out (unique per worker, e.g. the MPI rank).
        max_tries: breeding attempts before a duplicate child is replaced by a random configuration.
    """

    def __init__(self, space: Mapping[str, Any], propagator: Propagator | BreedFn | None = None, pop_size: int = 16,
                 seed: int | np.random.SeedSequence = 0, name: str = "0", island: int = 0, rank: int = 0,
                 max_tries: int = 32, pool_size: int | None = None) -> None:
        self.space = Space(space)
        self.pop_size = pop_size
        self.propagator = as_propagator(propagator if propagator is not None else
                                        default_propagator(self.space, pop_size))
        self.pool_size = max(pool_size or self.propagator.pool_size or pop_size, pop_size)
        self.population = Population(self.space, pool_size=self.pool_size)
        self.rng = np.random.default_rng(seed)
        self.name, self.island, self.rank, self.max_tries = name, island, rank, max_tries
        self.generation = 0
        self._pending: dict[tuple, tuple[str, int, float]] = {}  # key -> (id, generation, ask time)
        self.promoting: set[tuple] = set()  # keys of pruned configurations asked again, to train to their end
        self.promoted = 0  # how many were asked again (``ask_or_promote``)
        self._random = RandomInit(self.space)

    # --- ask / tell -----------------------------------------------------------------------------------
    def ask(self) -> dict[str, Any]:
        """A configuration never evaluated nor in flight on this island."""
        pool = [ind.params for ind in self.population.pool()]
        for attempt in range(2 * self.max_tries):
            breed = self.propagator if attempt < self.max_tries else self._random
            children = breed(pool, self.rng)
            if not children:
                raise ValueError(f"propagator {breed!r} returned no configuration for a pool of {len(pool)}")
            child = children[0]
            if not self.population.seen(child):
                break
        else:
            child = self._any_unseen()
        return self._reserve(child)

    def _reserve(self, params: dict[str, Any], ind_id: str | None = None) -> dict[str, Any]:
        self.population.reserve(params)
        ind_id = ind_id or f"{self.name}-{self.generation}"
        self._pending[self.space.key(params)] = (ind_id, self.generation, clock.now())
        self.generation += 1
        return params

    def _any_unseen(self) -> dict[str, Any]:
        """An unseen configuration of a finite space, walking all of them in an order of this worker's own (from
        its rng): workers that all fall back here at once rarely pick the same one."""
        if not self.space.finite:
            raise SpaceExhausted("no unseen configuration found after repeated random draws")
        # every value of every axis (a grid of log-spaced Int points would skip integers)
        axes = [p.values if isinstance(p, Choice) else range(p.low, p.high + 1) for p in self.space.values()]
        total = math.prod(len(a) for a in axes)
        start, step = _below(self.rng, total), 1 + _below(self.rng, total - 1) if total > 1 else 1
        while math.gcd(step, total) != 1:  # a step coprime with the size visits every index once
            step = 1 + _below(self.rng, total - 1)
        for k in range(total):
            i, values = (start + k * step) % total, []
            for axis in reversed(axes):
                i, j = divmod(i, len(axis))
                values.append(axis[j])
            params = dict(zip(self.space, reversed(values)))
            if not self.population.seen(params):
                return params
        raise SpaceExhausted(f"all {total} configurations of the space were evaluated or are being evaluated")

    def promote(self) -> dict[str, Any]:
        """Once a finite space is used up: the best pruned configuration of the island (the highest step reached,
        then the lowest loss) that no training ran to its end nor is running, asked again to be trained to its end
        (its key in ``promoting``: the worker does not let the pruner stop it); SpaceExhausted when none is left."""
        key = self.space.key
        ended = {key(i.params) for i in self.population if i.status != PRUNED}
        best = min((i for i in self.population if i.status == PRUNED and key(i.params) not in ended
                    and not self.population.in_flight(i.params)), key=rank_key, default=None)
        if best is None:
            raise SpaceExhausted("no pruned training is left to train to its end")
        params = dict(best.params)
        self.promoting.add(key(params))
        return self._reserve(params)

    def ask_or_promote(self) -> dict[str, Any]:
        """``ask``; once a finite space is used up, ``promote``: the budget left goes to the trainings that were most
        promising when they were stopped. SpaceExhausted (saying how many were promoted) when neither is left."""
        try:
            return self.ask()
        except SpaceExhausted as e:
            used_up = str(e)
        try:
            params = self.promote()
        except SpaceExhausted:
            raise SpaceExhausted(used_up if not self.promoted else
                                 f"{used_up}; then {self.promoted} pruned ones were trained to their end") from None
        self.promoted += 1
        return params

    def withdraw(self, params: Mapping[str, Any]) -> None:
        """Take back the configuration asked last, unevaluated (a peer started the same one meanwhile)."""
        ind_id, generation, _ = self._pending.pop(self.space.key(params))
        self.population.release(params)
        if self.space.key(params) in self.promoting:
            self.promoting.discard(self.space.key(params))
            self.promoted -= 1
        if generation == self.generation - 1:
            self.generation -= 1  # its id is handed out again

    def pending_id(self, params: Mapping[str, Any]) -> tuple[str, int]:
        """The id and generation the individual of an asked configuration will have."""
        ind_id, generation, _ = self._pending[self.space.key(params)]
        return ind_id, generation

    def requeue(self, params: Mapping[str, Any], ind_id: str, promoted: bool = False) -> dict[str, Any]:
        """Take on a configuration that keeps its id (one left unfinished before a restart; ``promoted``: a pruned one
        that was being trained again to its end)."""
        params = self._reserve(self.space.validate(params), ind_id)
        if promoted:
            self.promoting.add(self.space.key(params))
        return params

    def tell(self, params: Mapping[str, Any], loss: float, error: str | None = None, status: str | None = None,
             start: float | None = None, end: float | None = None, step: int | None = None) -> Individual:
        """Record the loss of an asked configuration; a non-finite loss or an error makes it ``failed``. A ``pruned``
        one keeps its last reported loss; ``step`` is the highest step it reported."""
        key = self.space.key(params)
        if key not in self._pending:
            raise ValueError(f"tell() for a configuration that was not asked: {dict(params)!r}")
        loss = float(loss)  # a bad loss raises here, before the configuration stops being pending
        ind_id, generation, asked = self._pending.pop(key)
        self.population.release(params)
        self.promoting.discard(key)
        if status is None:
            status = OK if error is None and math.isfinite(loss) else FAILED
        if status == FAILED and error is None:
            error = f"loss is {loss!r}"
        if status != OK and not (status == PRUNED and math.isfinite(loss)):
            loss = math.inf
        ind = Individual(id=ind_id, params=dict(params), loss=loss, status=status,
                         island=self.island, rank=self.rank, generation=generation,
                         start=asked if start is None else start, end=clock.now() if end is None else end,
                         error=error, step=step)
        # did the child make it into the breeding population? (a pruned one never counts as a success: a strategy
        # is credited for children that ran to their end, not for filling the pool early in a pruned search)
        self.propagator.feedback(ind.params, ind.ok and rank_key(ind) < self.population.kth_key(self.pop_size))
        self.population.add(ind)
        self.propagator.observe(ind)
        return ind

    def add(self, ind: Individual, active: bool = True) -> bool:
        """Add an individual evaluated elsewhere (a peer, or restored); False if already known."""
        if not self.population.add(ind, active=active):
            return False
        self.propagator.observe(ind)
        return True

    def best(self, n: int = 1) -> list[Individual]:
        """The ``n`` best active individuals that ran to their end."""
        return [ind for ind in self.population.pool()[:n] if ind.ok]

    # --- state ----------------------------------------------------------------------------------------
    def state_dict(self, population: bool = True) -> dict[str, Any]:
        """JSON-ready state: rng, counter, propagator state and (optionally) every individual."""
        state: dict[str, Any] = {"rng": self.rng.bit_generator.state, "generation": self.generation}
        if propagator := self.propagator.state_dict():
            state["propagator"] = propagator
        if population:
            state["individuals"] = [ind.to_dict() for ind in self.population]
            state["inactive"] = [i.id for i in self.population if i.breeds and not self.population.is_active(i.id)]
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.generation = int(state["generation"])
        if "propagator" in state:
            self.propagator.load_state_dict(state["propagator"])
        if "individuals" in state:
            inactive = set(state.get("inactive", ()))
            self.population = Population(self.space, pool_size=self.pool_size)
            for d in state["individuals"]:
                self.population.add(Individual.from_dict(d), active=d["id"] not in inactive)
