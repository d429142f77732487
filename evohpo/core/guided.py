"""Model-guided breeding: GA offspring and samples of the good configurations, screened by a density ratio.

The breeding pool (best first) is split into good (the best ``gamma`` share) and the rest. Per parameter,
a Parzen estimator is fit to each part (Gaussian kernels on the unit interval, log-aware; smoothed counts
for choices). Candidates come from the genetic operators and from sampling the good estimator; the one
with the highest ``log l(x) - log g(x)`` that is not already in the pool is returned (the acquisition of
TPE, Bergstra et al. 2011). The cost depends on the pool size and the number of candidates only, never on
the archive size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .propagators import Params, Propagator, RandomInit, default_propagator
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
        if not 0 < gamma < 1:
            raise ValueError(f"gamma={gamma!r} must be in (0, 1)")
        if n_candidates < 1:
            raise ValueError(f"n_candidates={n_candidates!r} must be >= 1")
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
        unit, index = enc.unit(pool), enc.index(pool)
        n_good = max(2, int(math.ceil(self.gamma * len(pool))))
        good = _Parzen(enc, unit[:n_good], index[:n_good])
        bad = _Parzen(enc, unit[n_good:], index[n_good:])
        n_sampled = int(round(self.sample_share * self.n_candidates))
        cands = good.sample(n_sampled, rng)
        cands += [self.breed(pool[: self.pop_size], rng)[0] for _ in range(self.n_candidates - n_sampled)]
        known = {self.space.key(c) for c in pool}
        cands = [c for c in cands if self.space.key(c) not in known] or cands
        cu, ci = enc.unit(cands), enc.index(cands)
        score = good.log_density(cu, ci) - bad.log_density(cu, ci)
        return [cands[int(np.argmax(score))]]


def guided_propagator(space: Space, pop_size: int, **kwargs: Any) -> ModelGuided:
    """The model-guided strategy with the genetic algorithm as its candidate generator."""
    return ModelGuided(space, pop_size, **kwargs)
