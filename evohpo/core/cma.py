"""CMA-ES as a strategy of the asynchronous loop: the ``cmaes`` package's CMA (CMA with margin, CMAwM, when
the space has integers or ordered choices) on the unit cube of ``core.vector``, fed with every result of the
island, with IPOP restarts.

Asynchronous use: each worker keeps its own distribution and samples its children from it; every ok result
of the island (its own and its peers', in whatever order they arrive) goes into a buffer, and each time the
buffer holds a population's worth the distribution is updated with it. So all workers of an island learn
from the same results, a late result is still used, and the island makes one CMA-ES generation per
population of results, however many workers it has. A child's raw sample is remembered, so that the update
uses it (the discretized one for peers' children, whose raw samples this worker never saw). Unordered
choices come from a GA child of the pool (``default_propagator``).

Restarts: when the distribution stops (``cmaes``' termination criteria), a new one starts at a random point
with twice the population (IPOP-CMA-ES, Auger & Hansen 2005).

State: ``cmaes`` offers pickling only, and a journal is JSON and never unpickled, so ``state_dict`` writes
the distribution's arrays and numbers as JSON (``_plain``); the sampling stream is re-seeded from the
worker's rng after a restore.
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

MAX_REMEMBERED = 4096  # raw samples of children waiting for their result (a rejected duplicate never returns)


class CMAES(Propagator):
    """Asynchronous IPOP-CMA-ES over the numeric and ordered parameters of ``space``.

    Args:
        pop_size: the GA's pool size (for unordered choices, and the whole child when no parameter is numeric).
        sigma0: the initial step size on the unit cube.
        popsize: the first population size (default CMA-ES's 4 + 3 ln(dims)); doubled at each restart.
        max_restarts: restarts before the last distribution is kept for good.
    """

    def __init__(self, space: Space, pop_size: int, sigma0: float = 0.3, popsize: int | None = None,
                 max_restarts: int = 9) -> None:
        if not 0 < sigma0 <= 1:
            raise ValueError(f"sigma0={sigma0!r} must be in (0, 1]")
        self.space, self.vec = Space(space), Vectorizer(space)
        self.breed = default_propagator(self.space, pop_size)
        self.sigma0, self.max_restarts = float(sigma0), int(max_restarts)
        self.popsize = popsize
        self.restarts = 0
        self._buffer: list[tuple[np.ndarray, float]] = []
        self._raw: dict[tuple, np.ndarray] = {}  # child key -> the raw sample it came from
        self._reseed = True  # draw the sampling stream's seed from the worker's rng at the next call
        self._cma = self._new(np.full(self.vec.dims, 0.5)) if self.vec.dims else None

    def _new(self, mean: np.ndarray) -> Any:
        import cmaes

        bounds = np.tile([0.0, 1.0], (self.vec.dims, 1))
        if self.vec.steps.any():
            opt = cmaes.CMAwM(mean=mean, sigma=self.sigma0, bounds=bounds, steps=self.vec.steps,
                              population_size=self.popsize)
        else:
            opt = cmaes.CMA(mean=mean, sigma=self.sigma0, bounds=bounds, population_size=self.popsize)
        self.popsize = opt.population_size
        return opt

    @property
    def population_size(self) -> int | None:
        """The current distribution's population size (None: no numeric parameter)."""
        return self.popsize if self._cma is not None else None

    def __call__(self, parents: Sequence[Params], rng: np.random.Generator) -> list[Params]:
        if self._cma is None:
            return self.breed(parents, rng)
        if self._reseed:
            self._inner().reseed_rng(int(rng.integers(2**31)))
            self._reseed = False
        template = self.breed(parents, rng)[0] if self.vec.unordered else {}
        if self.vec.steps.any():
            x_eval, raw = self._cma.ask()
        else:
            x_eval = raw = self._cma.ask()
        child = self.vec.decode(x_eval, template)
        self._raw[self.space.key(child)] = raw
        while len(self._raw) > MAX_REMEMBERED:
            del self._raw[next(iter(self._raw))]
        return [child]

    def observe(self, individual: Individual) -> None:
        if self._cma is None or not individual.ok:
            return
        raw = self._raw.pop(self.space.key(individual.params), None)
        x = raw if raw is not None else self._injected(self.vec.encode(individual.params))
        self._buffer.append((x, float(individual.loss)))
        if len(self._buffer) >= self._cma.population_size:
            batch, self._buffer = self._buffer[: self.popsize], self._buffer[self.popsize:]
            self._cma.tell(batch)
            if self._cma.should_stop() and self.restarts < self.max_restarts:
                self._restart()

    def _injected(self, x: np.ndarray) -> np.ndarray:
        """A solution this distribution did not sample (a peer's), its step from the mean clipped to the length
        a sample of the distribution has (Hansen 2011, "Injecting external solutions into CMA-ES"): otherwise the
        step-size and covariance updates take far-off points for huge steps of their own."""
        inner = self._inner()
        B, D = inner._eigen_decomposition()
        y = (x - inner._mean) / inner._sigma
        norm = float(np.linalg.norm((B.T @ y) / D))
        n = self.vec.dims
        limit = math.sqrt(n) + 2 * n / (n + 2)
        return x if norm <= limit else inner._mean + inner._sigma * y * (limit / norm)

    def _restart(self) -> None:
        rng = np.random.default_rng([self.restarts, *self._inner()._rng.randint(2**31, size=2)])
        self.restarts += 1
        self.popsize = 2 * self.popsize
        self._buffer = []
        self._cma = self._new(rng.uniform(0.0, 1.0, self.vec.dims))
        self._reseed = True

    def _inner(self) -> Any:
        """The plain CMA inside (CMAwM wraps one)."""
        return getattr(self._cma, "_cma", self._cma)

    # --- state ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self._cma is None:
            return {}
        return {"restarts": self.restarts, "popsize": self.popsize, "cma": _plain(self._cma),
                "buffer": [[_plain(x), y] for x, y in self._buffer]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self._cma is None or not state:
            return
        self.restarts, self.popsize = int(state["restarts"]), int(state["popsize"])
        self._cma = self._new(np.full(self.vec.dims, 0.5))
        _restore(self._cma, state["cma"])
        self._buffer = [(_array(x), float(y)) for x, y in state["buffer"]]
        self._raw = {}
        self._reseed = True


# --- JSON state of a cmaes object -------------------------------------------------------------------------
def _plain(v: Any) -> Any:
    """``v`` as JSON: arrays as {"array": values, "dtype": ...}, non-finite floats as strings, objects by their
    attributes (the random stream left out)."""
    if isinstance(v, np.ndarray):
        return {"array": [_number(x) for x in v.ravel().tolist()], "shape": list(v.shape), "dtype": str(v.dtype)}
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return _number(float(v))
    if v is None or isinstance(v, str):
        return v
    if hasattr(v, "__dict__"):
        return {"object": {k: _plain(x) for k, x in vars(v).items() if k != "_rng"}}
    raise TypeError(f"cannot write {type(v).__name__} into a CMA-ES state")


def _number(x: Any) -> Any:
    return x if not isinstance(x, float) or math.isfinite(x) else repr(x)


def _array(d: Any) -> np.ndarray:
    values = [float(x) if isinstance(x, str) else x for x in d["array"]]
    return np.array(values, dtype=d["dtype"]).reshape(d["shape"])


def _restore(obj: Any, state: dict[str, Any]) -> None:
    """Set ``obj``'s attributes from ``_plain(obj)``'s output (into the nested objects it already has)."""
    for k, v in state["object"].items():
        if not hasattr(obj, k):
            raise ValueError(f"CMA-ES state has {k!r}, which this version of the cmaes package does not know")
        if isinstance(v, dict) and "object" in v:
            _restore(getattr(obj, k), v)
        elif isinstance(v, dict) and "array" in v:
            setattr(obj, k, _array(v))
        else:
            setattr(obj, k, float(v) if isinstance(v, str) else v)
