"""Model-guided breeding: candidates screened by a density ratio of the good configurations to the rest.

The breeding pool (best first) is split into good (the best ``gamma`` share) and the rest. Per parameter,
a Parzen estimator is fit to each part (Gaussian kernels on the unit interval, log-aware; smoothed counts
for choices). Of a few candidates, the one with the highest ``log l(x) - log g(x)`` that is not already in
the pool is returned (the acquisition of TPE, Bergstra et al. 2011). ``ModelGuided`` draws its candidates
from the genetic operators and from the good estimator; ``Screened`` asks another strategy for them (the
default on spaces of choices screens the GA + CMA-ES portfolio's children). The cost depends on
the pool size and the number of candidates only, never on the archive size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .propagators import BreedFn, Combinator, Params, Propagator, RandomInit, as_propagator, default_propagator
from .space import Encoding, Space


class _Parzen:
    """Per-parameter kernel densities of one set of encoded configurations (independent parameters)."""

    def __init__(self, enc: Encoding, unit: np.ndarray, index: np.ndarray, prior: float = 1.0) -> None:
        n = max(len(unit), 1)
        self.enc, self.unit, self.prior = enc, unit, prior
        spread = unit.std(axis=0) if len(unit) > 1 else np.full(unit.shape[1], 0.25)
        self.h = np.clip(1.06 * spread * n ** (-1 / 5), 0.01, 0.25)  # Scott's rule, never a spike
        self.probs = []
        for j, name in enumerate(enc.choices):
            param = enc.space[name]
            k = len(param.values)  # type: ignore[union-attr]
            counts = np.full(k, prior / k)
            if param.ordered and k > 1:  # type: ignore[union-attr]  # spread each count to the neighbours
                w = np.exp(-0.5 * ((np.arange(k)[None, :] - index[:, j, None]) / 0.75) ** 2)
                counts += (w / w.sum(axis=1, keepdims=True)).sum(axis=0)
            else:
                np.add.at(counts, index[:, j], 1.0)
            self.probs.append(counts / counts.sum())

    def log_density(self, unit: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Log density of each candidate row (sum over parameters)."""
        out = np.zeros(len(unit) if len(unit) else len(index))
        if self.unit.shape[1]:
            z = (unit[:, None, :] - self.unit[None, :, :]) / self.h
            kern = np.exp(-0.5 * z * z) / (self.h * math.sqrt(2 * math.pi))
            out += np.log((kern.sum(axis=1) + self.prior) / (len(self.unit) + self.prior)).sum(axis=1)
        for j, probs in enumerate(self.probs):
            out += np.log(probs[index[:, j]])
        return out

    def sample(self, m: int, rng: np.random.Generator) -> list[Params]:
        """``m`` draws: kernels around random members (numbers), smoothed counts (choices)."""
        space, enc = self.enc.space, self.enc
        rows = rng.integers(len(self.unit), size=m)
        u = self.unit[rows] + rng.normal(size=(m, len(enc.numeric))) * self.h
        out = []
        for i in range(m):
            c: Params = {name: space[name].from_unit(u[i, j]) for j, name in enumerate(enc.numeric)}
            for j, name in enumerate(enc.choices):
                values = space[name].values  # type: ignore[union-attr]
                c[name] = values[int(rng.choice(len(values), p=self.probs[j]))]
            out.append({name: c[name] for name in space})
        return out


def split_fit(enc: Encoding, pool: Sequence[Params], gamma: float) -> tuple[_Parzen, _Parzen]:
    """The estimators of the good (best ``gamma`` share of ``pool``, at least 2) and of the rest."""
    unit, index = enc.unit(pool), enc.index(pool)
    n_good = max(2, int(math.ceil(gamma * len(pool))))
    return _Parzen(enc, unit[:n_good], index[:n_good]), _Parzen(enc, unit[n_good:], index[n_good:])


def best_candidate(enc: Encoding, good: _Parzen, bad: _Parzen, pool: Sequence[Params],
                   cands: Sequence[Params]) -> Params:
    """The candidate not in ``pool`` (if any is not) with the highest ``log l(x) - log g(x)``."""
    known = {enc.space.key(c) for c in pool}
    fresh = [c for c in cands if enc.space.key(c) not in known] or list(cands)
    cu, ci = enc.unit(fresh), enc.index(fresh)
    return fresh[int(np.argmax(good.log_density(cu, ci) - bad.log_density(cu, ci)))]


def _check_screen(gamma: float, n_candidates: int) -> None:
    if not 0 < gamma < 1:
        raise ValueError(f"gamma={gamma!r} must be in (0, 1)")
    if n_candidates < 1:
        raise ValueError(f"n_candidates={n_candidates!r} must be >= 1")


class ModelGuided(Propagator):
    """Screen candidates by how much likelier they are among the good configurations than among the rest.

    Args:
        pop_size: how many of the best the genetic operators breed from.
        gamma: share of the pool counted as good.
        n_candidates: candidates screened per child; ``sample_share`` of them drawn from the good estimator.
        n_startup: random configurations until the pool holds this many.
        pool_size: how many of the island's best it models (more than the ``pop_size`` it breeds from).
    """

    def __init__(self, space: Space, pop_size: int, gamma: float = 0.25, n_candidates: int = 24,
                 sample_share: float = 0.5, n_startup: int | None = None, breed: Propagator | None = None,
                 pool_size: int = 64) -> None:
        _check_screen(gamma, n_candidates)
        if not 0 <= sample_share <= 1:
            raise ValueError(f"sample_share={sample_share!r} must be in [0, 1]")
        self.space, self.pop_size, self.gamma = Space(space), pop_size, gamma
        self.pool_size = pool_size
        self.n_candidates, self.sample_share = n_candidates, sample_share
        self.n_startup = n_startup if n_startup is not None else max(pop_size, 10)
        self.breed = breed if breed is not None else default_propagator(self.space, pop_size)
        self.random = RandomInit(self.space)
        self.enc = Encoding(self.space)

    def __call__(self, pool: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        if len(pool) < self.n_startup:
            return self.random(pool, rng)
        enc = self.enc
        good, bad = split_fit(enc, pool, self.gamma)
        n_sampled = int(round(self.sample_share * self.n_candidates))
        cands = good.sample(n_sampled, rng)
        cands += [self.breed(pool[: self.pop_size], rng)[0] for _ in range(self.n_candidates - n_sampled)]
        return [best_candidate(enc, good, bad, pool, cands)]


class Screened(Combinator):
    """Another strategy's children, screened: ``n_candidates`` of them, the likeliest among the good returned.

    The strategy breeds from the best ``pop_size`` as it would alone, and learns from every result
    (``observe``, ``feedback``) as it would alone; its state is this propagator's state. Until the pool holds
    ``n_startup`` configurations its first child passes unscreened. Measured on the table problems of
    bench/quality.py (bench/results/quality-notes.md): at 40 and 60 evaluations 16 candidates turned the GA +
    CMA-ES portfolio from behind Optuna's TPE to ahead of it (2, 4 and 8 helped less), at 100 and 240 it is
    level with the unscreened portfolio; on spaces with numbers that interact it misleads CMA-ES. A step costs
    about the strategy's ``n_candidates`` times (16 x 0.1 ms for the portfolio on eight choices).

    Args:
        strategy: what makes the candidates.
        pop_size: how many of the best ``strategy`` breeds from.
        gamma: share of the pool counted as good.
        n_candidates: candidates screened per child.
        n_startup: pool size from which children are screened.
        pool_size: how many of the island's best the screen models.
    """

    def __init__(self, space: Space, strategy: Propagator | BreedFn, pop_size: int, gamma: float = 0.25,
                 n_candidates: int = 16, n_startup: int = 10, pool_size: int = 64) -> None:
        _check_screen(gamma, n_candidates)
        for name, v in (("pop_size", pop_size), ("n_startup", n_startup), ("pool_size", pool_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} must be an integer >= 1")
        self.space, self.strategy, self.pop_size = Space(space), as_propagator(strategy), pop_size
        self.gamma, self.n_candidates, self.n_startup = gamma, n_candidates, n_startup
        self._pool_size = pool_size
        self.enc = Encoding(self.space)

    @property
    def pool_size(self) -> int:  # type: ignore[override]
        return max(self._pool_size, self.strategy.pool_size or 0)

    def __call__(self, pool: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        parents = pool[: self.pop_size]
        if len(pool) < self.n_startup or self.n_candidates == 1:
            return self.strategy(parents, rng)
        cands = [self.strategy(parents, rng)[0] for _ in range(self.n_candidates)]
        good, bad = split_fit(self.enc, pool, self.gamma)
        return [best_candidate(self.enc, good, bad, pool, cands)]

    def parts(self) -> dict[str, Propagator]:
        return {"strategy": self.strategy}

    def state_dict(self) -> dict[str, Any]:  # the strategy's own, unnested: the shape a journal of it has
        return self.strategy.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.strategy.load_state_dict(state)

    def __repr__(self) -> str:
        return f"Screened({self.strategy!r}, n_candidates={self.n_candidates})"


def guided_propagator(space: Space, pop_size: int, **kwargs: Any) -> ModelGuided:
    """The model-guided strategy with the genetic algorithm as its candidate generator."""
    return ModelGuided(space, pop_size, **kwargs)
