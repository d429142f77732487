"""CMA-ES as a strategy of the asynchronous loop: the ``cmaes`` package's CMA (CMA with margin, CMAwM, when
the space has integers or ordered choices) on the unit cube of ``core.vector``, fed with every result of the
island, with IPOP restarts.

Asynchronous use: each worker keeps its own distribution and samples its children from it; every ok result
of the island (its own and its peers') goes into a buffer, and each time the buffer holds a population's worth
the distribution is updated with it. The results enter in one order on every worker of the island
(``core.order.IslandOrder``: by end time, once every worker has passed it), so the workers' distributions stay
the same and a peer's sample is as good as one's own; the island makes one CMA-ES generation per population of
results, however many workers it has. Points that are not samples of the distribution now (an older one's, a
GA child's) are clipped to a sample's length, or left out when far off (``_injected``). With integers or
ordered choices, a child's raw sample is remembered, so that the update uses it (the discretized one for
peers' children, whose raw samples this worker never saw). Unordered choices come from a GA child of the pool
(``default_propagator``).

Why the order: without it every worker updates with its own batches of the same results, the distributions
drift apart, and each treats three quarters of its results as foreign; bench/results/quality-notes.md has the
numbers with and without it.

Restarts: when the distribution stops (``cmaes``' termination criteria), a new one starts at a random point
with twice the population (IPOP-CMA-ES, Auger & Hansen 2005); the point's random draw is seeded by the old
distribution's mean, so that workers in island order restart alike.

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
from .order import IslandOrder
from .propagators import Params, Propagator, default_propagator
from .space import Space
from .vector import Vectorizer

MAX_REMEMBERED = 4096  # raw samples of children waiting for their result (a rejected duplicate never returns)
FAR = 1.5  # points told whose step is over FAR x a sample's length are left out (``_injected``)
HELD_PER_WORKER = 2  # island order: results held back (and a silent worker's wait) per worker of the island
# population added per worker of an island in 5-D, and less in more dimensions, in proportion to how fast the
# covariance learns (its rate c1 ~ 2 / (n + 1.3)^2), as a stale sample misleads a fast learner more. Measured with 4
# in-process workers (tests/test_order.py's model; 8 seeds, median regrets). 5-D at 1,000 evaluations, ellipsoid /
# discus / rotated ellipsoid: population 8 (the default) 1.6 / 0.58 / 1.1; 12: 0.24 / 0.0028 / 0.36; 14: 0.081 /
# 0.00025 / 0.28; 16: 0.014 / 0.0004 / 0.18; 24: 0.88 / 0.015 / 0.41. At 500, sphere / Ackley: 12: 1.9e-4 / 0.29;
# 14: 2.6e-4 / 0.34; 16: 3.7e-4 / 0.79; 2-D Himmelblau: 10: 3.8e-8, 12: 9e-7, 14: 2.8e-6. 20-D at 2,000: bent
# cigar 2.9 with the default 12, 25 with 16, 206 with 20; sharp ridge 0.84 (12), 2.7 (16); rotated ellipsoid 5,250
# (12), 3,900 (16). More helps long searches on ill-conditioned problems, less short ones. Over the 30 continuous
# problems of bench/quality.py, in evohpo.sim (4 workers, durations uniform +-30%, 20 seeds; better / tie / worse
# medians than serial IPOP-CMA-ES): 0 per worker 13/1/16, 0.75: 16/1/13, 1.5: 13/1/16 (held 3 per worker), and
# with 0.75, held 1 / 2 / 3 per worker: 16/1/13 each, mean rank 4.02 / 4.05 / 4.35 among 8 columns. On 4 MPI ranks
# (bench/quality.py, 2 ms per evaluation, 10 seeds), mean rank among 7 columns: 1.5 and held 3: 2.83 (IPOP-CMA-ES
# 2.67); 0.75 and held 3: 2.67 (2.73); 0.75 and held 2: 2.60 (2.77).
EXTRA_PER_WORKER = 0.75


class CMAES(Propagator):
    """Asynchronous IPOP-CMA-ES over the numeric and ordered parameters of ``space``.

    Args:
        pop_size: the GA's pool size (for unordered choices, and the whole child when no parameter is numeric).
        sigma0: the initial step size on the unit cube.
        popsize: the first population size (default CMA-ES's 4 + 3 ln(dims), larger on an island of several
            workers: ``join``, ``extra_population``); doubled at each restart.
        max_restarts: restarts before the last distribution is kept for good.
    """

    def __init__(self, space: Space, pop_size: int, sigma0: float = 0.3, popsize: int | None = None,
                 max_restarts: int = 9) -> None:
        if not 0 < sigma0 <= 1:
            raise ValueError(f"sigma0={sigma0!r} must be in (0, 1]")
        self.space, self.vec = Space(space), Vectorizer(space)
        self.breed = default_propagator(self.space, pop_size)
        self.sigma0, self.max_restarts = float(sigma0), int(max_restarts)
        self.popsize, self._popsize_given = popsize, popsize is not None
        self.restarts = 0
        self._buffer: list[tuple[np.ndarray, float]] = []
        self._raw: dict[tuple, np.ndarray] = {}  # child key -> the raw sample it came from
        self._reseed = True  # draw the sampling stream's seed from the worker's rng at the next call
        self._order: IslandOrder | None = None  # set by join(): the island's results in one order
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

    def join(self, island: int, ranks: Sequence[int]) -> None:
        if self._cma is None or len(ranks) < 2:
            return
        self._order = IslandOrder(ranks, max_held=HELD_PER_WORKER * len(ranks))
        if not self._popsize_given:  # samples come back a few evaluations late: a larger population bears it
            self.popsize += extra_population(len(ranks), self.vec.dims)
            self._cma = self._new(np.full(self.vec.dims, 0.5))

    def observe(self, individual: Individual) -> None:
        if self._cma is None:
            return
        for ind in self._order.push(individual) if self._order is not None else [individual]:
            if ind.ok:
                self._take(ind)

    def _take(self, individual: Individual) -> None:
        """Buffer one ok result; update the distribution when the buffer holds a population."""
        raw = self._raw.pop(self.space.key(individual.params), None)
        if self._order is not None and not self.vec.steps.any():
            raw = None  # in island order every worker tells the same point for a result: its encoding
        if raw is not None and self._order is None:
            x = raw  # this worker's own sample, told as it was drawn
        else:
            x = self._injected(raw if raw is not None else self.vec.encode(individual.params))
            if x is None:
                return
        self._buffer.append((x, float(individual.loss)))
        if len(self._buffer) >= self._cma.population_size:
            batch, self._buffer = self._buffer[: self.popsize], self._buffer[self.popsize:]
            self._cma.tell(batch)
            if self._cma.should_stop() and self.restarts < self.max_restarts:
                self._restart()

    def _injected(self, x: np.ndarray) -> np.ndarray | None:
        """A point told to the distribution that may not be a sample of its own now (a peer's, an older one, a
        GA child): its step from the mean clipped to the length a sample has (Hansen 2011, "Injecting external
        solutions into CMA-ES"), or None, left out, when the step is over ``FAR`` times that length. Otherwise
        the step-size and covariance updates take far-off points for huge steps of their own; and a good point
        far off (a GA child from another basin), even clipped, drags the mean and inflates the step size."""
        inner = self._inner()
        B, D = inner._eigen_decomposition()
        y = (x - inner._mean) / inner._sigma
        norm = float(np.linalg.norm((B.T @ y) / D))
        n = self.vec.dims
        limit = math.sqrt(n) + 2 * n / (n + 2)
        if norm > FAR * limit:
            return None
        return x if norm <= limit else inner._mean + inner._sigma * y * (limit / norm)

    def _restart(self) -> None:
        # the new mean depends on the distribution alone, so that workers in island order restart alike
        rng = np.random.default_rng([self.restarts, *np.frombuffer(self._inner()._mean.tobytes(), np.uint32)])
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
        state = {"restarts": self.restarts, "popsize": self.popsize, "cma": _plain(self._cma),
                 "buffer": [[_plain(x), y] for x, y in self._buffer]}
        if self._order is not None:
            state["order"] = self._order.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self._cma is None or not state:
            return
        self.restarts, self.popsize = int(state["restarts"]), int(state["popsize"])
        self._cma = self._new(np.full(self.vec.dims, 0.5))
        _restore(self._cma, state["cma"])
        self._buffer = [(_array(x), float(y)) for x, y in state["buffer"]]
        if self._order is not None and "order" in state:
            self._order.load_state_dict(state["order"])
        self._raw = {}
        self._reseed = True


def extra_population(workers: int, dims: int) -> int:
    """How much larger the first population is on an island of ``workers`` (``EXTRA_PER_WORKER`` each in 5-D,
    scaled by the covariance's learning rate in ``dims`` dimensions against 5-D's, at most that)."""
    if workers < 2:
        return 0
    return math.ceil(EXTRA_PER_WORKER * workers * min(1.0, (5 + 1.3) ** 2 / (dims + 1.3) ** 2))


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
