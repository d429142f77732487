"""Particle swarm optimization as a strategy of the asynchronous loop, on the unit cube of ``core.vector``.

Each worker keeps a few particles of its own and moves one per call, round-robin (Kennedy & Eberhart 1995,
with the constriction-equivalent inertia and acceleration of Clerc & Kennedy 2002)::

    v = w v + c1 r1 (pbest - x) + c2 r2 (gbest - x),   x = x + v

``gbest`` is the island's best (the first of the pool), so every result of the island, the peers' included,
pulls this worker's particles once it is in the pool; ``pbest`` is the particle's own best, updated only by
the results of its own children (a child is known by its configuration's key). Velocities are clamped to
``vmax`` per coordinate; a particle that leaves the cube is put on the wall and bounces back with half its
speed. Particles start at random points (their first calls). A child that never comes back (the evolver
dropped it as a duplicate) does not block its particle, which moves on at its next turn; after ``patience``
such children in a row it restarts at a random point. Unordered choices come from a GA child of the pool.

A few particles per worker work best at small budgets, since the island's best pulls them all: 4, 8 and 16
particles, one worker, 400 evaluations, median of 9 seeds: 5-D sphere 2.7e-5, 5.8e-4, 0.018; 2-D Ackley
4.0e-4, 9.1e-3, 0.29; 2-D Rastrigin 1.0, 1.0, 0.70; 2-D Rosenbrock 0.061, 0.014, 0.013.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .individual import Individual
from .propagators import Params, Propagator, default_propagator
from .space import Space
from .vector import Vectorizer


class ParticleSwarm(Propagator):
    """Particle swarm over the numeric and ordered parameters of ``space``; one particle moves per call.

    Args:
        pop_size: the GA's population size (for unordered choices, and every child when no parameter is
            numeric or ordered).
        particles: this worker's particles (default ``max(2, pop_size // 4)``).
        inertia: ``w`` of the velocity update.
        cognitive: ``c1``, the pull towards the particle's own best.
        social: ``c2``, the pull towards the island's best.
        vmax: the largest step per coordinate and call, on the unit cube.
        patience: children in a row that never came back before their particle restarts at a random point.
    """

    def __init__(self, space: Space, pop_size: int, particles: int | None = None, inertia: float = 0.729,
                 cognitive: float = 1.49445, social: float = 1.49445, vmax: float = 0.2, patience: int = 3) -> None:
        n = max(2, pop_size // 4) if particles is None else particles
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"particles={particles!r} must be a positive int")
        if not 0 < vmax <= 1:
            raise ValueError(f"vmax={vmax!r} must be in (0, 1]")
        if not (math.isfinite(inertia) and cognitive >= 0 and social >= 0):
            raise ValueError(f"need a finite inertia and cognitive, social >= 0, got {inertia=!r}, "
                             f"{cognitive=!r}, {social=!r}")
        if patience < 1:
            raise ValueError(f"patience={patience!r} must be >= 1")
        self.space, self.vec = Space(space), Vectorizer(space)
        self.breed = default_propagator(self.space, pop_size)
        self.inertia, self.cognitive, self.social = float(inertia), float(cognitive), float(social)
        self.vmax, self.patience, self.particles = float(vmax), int(patience), n
        d = self.vec.dims
        self.x, self.v = np.zeros((n, d)), np.zeros((n, d))
        self.best_x, self.best_loss = np.zeros((n, d)), np.full(n, math.inf)
        self.started = [False] * n
        self.misses = [0] * n  # children in a row that never came back
        self.cursor = 0  # the particle that moves next
        self._key: list[tuple | None] = [None] * n  # each particle's last child, until its result arrives
        self._owner: dict[tuple, int] = {}  # child key -> its particle
        self._gparams: Params | None = None  # the island's best at the last call, and its point
        self._gbest = np.zeros(d)

    def __call__(self, parents: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        if not self.vec.dims:
            return self.breed(parents, rng)
        i = self.cursor
        self.cursor = (i + 1) % self.particles
        if self._key[i] is not None:  # the last child never came back: dropped as a duplicate
            self._owner.pop(self._key[i], None)
            self._key[i] = None
            self.misses[i] += 1
        else:
            self.misses[i] = 0
        if not self.started[i] or self.misses[i] >= self.patience:
            self._start(i, rng)
        else:
            self._move(i, parents, rng)
        template = self.breed(parents, rng)[0] if self.vec.unordered else {}
        child = self.vec.decode(self.x[i], template)
        key = self.space.key(child)
        other = self._owner.get(key)
        if other is not None:  # two particles on one configuration: the result goes to the newer one
            self._key[other] = None
        self._owner[key], self._key[i] = i, key
        return [child]

    def _start(self, i: int, rng: np.random.Generator) -> None:
        d = self.vec.dims
        self.x[i] = rng.random(d)
        self.v[i] = rng.uniform(-self.vmax, self.vmax, d)
        self.started[i], self.misses[i] = True, 0

    def _move(self, i: int, parents: Sequence[Params], rng: np.random.Generator) -> None:
        x, d = self.x[i], self.vec.dims
        pbest = self.best_x[i] if math.isfinite(self.best_loss[i]) else x
        if parents:
            if parents[0] is not self._gparams:  # encode the island's best once, not at every call
                self._gparams, self._gbest = parents[0], self.vec.encode(parents[0])
            gbest = self._gbest
        else:  # no island best: this worker's best particle
            k = int(np.argmin(self.best_loss))
            gbest = self.best_x[k] if math.isfinite(self.best_loss[k]) else x
        v = (self.inertia * self.v[i] + self.cognitive * rng.random(d) * (pbest - x)
             + self.social * rng.random(d) * (gbest - x))
        v = np.minimum(np.maximum(v, -self.vmax), self.vmax)
        x = x + v
        out = (x < 0.0) | (x > 1.0)
        if out.any():  # on the wall, bouncing back at half the speed
            v[out] *= -0.5
            x = np.minimum(np.maximum(x, 0.0), 1.0)
        self.x[i], self.v[i] = x, v

    def observe(self, individual: Individual) -> None:
        if not self.vec.dims or not self._owner:
            return
        i = self._owner.pop(self.space.key(individual.params), None)
        if i is None:  # a peer's result: it reaches the particles through the pool's best
            return
        self._key[i] = None
        if individual.ok and individual.loss < self.best_loss[i]:
            self.best_loss[i] = float(individual.loss)
            self.best_x[i] = self.vec.encode(individual.params)

    # --- state ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if not self.vec.dims:
            return {}
        return {"x": self.x.tolist(), "v": self.v.tolist(), "cursor": self.cursor,
                "started": [int(s) for s in self.started], "misses": list(self.misses),
                "best": [[i, float(self.best_loss[i]), self.best_x[i].tolist()]
                         for i in range(self.particles) if math.isfinite(self.best_loss[i])],
                "pending": [[i, list(k)] for i, k in enumerate(self._key) if k is not None]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not self.vec.dims or not state:
            return
        shape = (self.particles, self.vec.dims)
        x, v = np.array(state["x"], dtype=float), np.array(state["v"], dtype=float)
        if x.shape != shape or v.shape != shape:
            raise ValueError(f"particle swarm state holds positions of shape {x.shape}, this swarm has {shape}")
        self.x, self.v = x, v
        self.cursor = int(state["cursor"]) % self.particles
        self.started = [bool(s) for s in state["started"]]
        self.misses = [int(m) for m in state["misses"]]
        self.best_x, self.best_loss = np.zeros(shape), np.full(self.particles, math.inf)
        for i, loss, bx in state["best"]:
            self.best_loss[i], self.best_x[i] = float(loss), bx
        self._key, self._owner = [None] * self.particles, {}
        for i, k in state["pending"]:
            self._key[i] = tuple(k)
            self._owner[tuple(k)] = i
