"""Early stopping as pure decisions: at which steps a training is judged (its rungs), and whether it goes on, from
the values its island saw at the same rung (``RungBoard``). No I/O: the worker shares rung values between the
workers of an island (``parallel.reports``) and asks the pruner.

- ``ASHA``: asynchronous successive halving (Li et al. 2020). Rungs at ``min_steps * eta**k`` below ``max_steps``;
  a training goes on past a rung when its value there is among the best ``1/eta`` of the island's values at that
  rung (its own included; ties at the cut go on).
- ``MedianStopping``: the median stopping rule (Golovin et al. 2017): it goes on when its value is no worse than
  the median of the others' values at that rung.
- ``NoPruning``: every training runs to its end (reports are still recorded).

Both rules judge nobody on too little data: with fewer than ``min_reports`` values at a rung (this training's
included, 6 by default) everyone goes on. Without that rule the second training to reach a rung is stopped whenever
it is worse than the first, a coin toss early in a search. Measured on four learning-curve tables at two budgets
(bench/results/pruning.md), min_reports 1, 3, 6 and 12 lie within noise of each other (mean ranks 2.19, 2.44, 2.75,
2.62, no pairwise difference significant); a rerun of the whole comparison with 3 as the default lost to DEHB on
one more table than with 6, again within noise. The default stays 6: the first cut is made on the best third of
six values, never on one or two. A larger value costs small searches most (the first few trainings run to the end):
pass ``ASHA(min_reports=3)`` there. Values are losses (lower is better); a NaN is the worst value.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

PRUNERS = ("asha", "median", "none")
DEFAULT_ETA = 3
DEFAULT_MIN_REPORTS = 6  # bench/results/pruning.md: 1, 3, 6, 12 within noise of each other; see above


class Pruner:
    """The interface: ``rungs(max_steps)`` says at which steps trainings are judged (the values there are shared
    with the island), ``keep(value, others)`` whether one goes on. Implement both for a pruner of your own."""

    def rungs(self, max_steps: int | None) -> list[int]:
        """The steps at which trainings are judged, ascending (none at or beyond ``max_steps``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement rungs(max_steps) -> list of steps")

    def keep(self, value: float, others: Sequence[float]) -> bool:
        """Whether a training whose value at a rung is ``value`` goes on, given the island's other values at that
        rung (``others``, sorted ascending)."""
        raise NotImplementedError(f"{type(self).__name__} must implement keep(value, others) -> bool")

    def describe(self) -> str:
        return type(self).__name__


def geometric_rungs(min_steps: int, eta: float, max_steps: int | None) -> list[int]:
    """``min_steps * eta**k`` (rounded) for k = 0, 1, ... below ``max_steps``; 16 rungs at most when there is none."""
    out: list[int] = []
    k = 0
    while True:
        step = round(min_steps * eta**k)
        if (max_steps is not None and step >= max_steps) or (max_steps is None and len(out) >= 16):
            return out
        if not out or step > out[-1]:
            out.append(step)
        k += 1


def _loss(v: float) -> float:
    return math.inf if v != v else v  # NaN: the worst


def top_fraction_keeps(value: float, others: Sequence[float], eta: float, min_reports: int) -> bool:
    """Successive halving's rule: ``value`` is among the best ``max(1, n // eta)`` of the ``n`` values at the rung
    (``others`` sorted ascending, plus ``value``); always True with fewer than ``min_reports`` values."""
    n = len(others) + 1
    if n < min_reports:
        return True
    value = _loss(value)
    k = max(1, int(n // eta))
    # the k-th smallest of others + [value]: value goes on iff fewer than k of the others are strictly better
    return bisect.bisect_left(others, value) < k


def median_keeps(value: float, others: Sequence[float], min_reports: int) -> bool:
    """The median stopping rule: ``value`` is no worse than the median of ``others`` (sorted ascending); always True
    with fewer than ``min_reports`` values at the rung (``value`` included)."""
    if len(others) + 1 < min_reports or not others:
        return True
    n = len(others)
    median = others[n // 2] if n % 2 else 0.5 * (others[n // 2 - 1] + others[n // 2])
    return _loss(value) <= median


def _count(name: str, v: Any, low: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{name}={v!r} must be an int >= {low}")
    return v


class ASHA(Pruner):
    """Asynchronous successive halving: rungs at ``min_steps * eta**k``, the best ``1/eta`` at each go on."""

    def __init__(self, min_steps: int = 1, eta: float = DEFAULT_ETA, min_reports: int = DEFAULT_MIN_REPORTS) -> None:
        self.min_steps = _count("min_steps", min_steps)
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not eta > 1 or not math.isfinite(eta):
            raise ValueError(f"eta={eta!r} must be a number > 1")
        self.eta = eta
        self.min_reports = _count("min_reports", min_reports)

    def rungs(self, max_steps: int | None) -> list[int]:
        return geometric_rungs(self.min_steps, self.eta, max_steps)

    def keep(self, value: float, others: Sequence[float]) -> bool:
        return top_fraction_keeps(value, others, self.eta, self.min_reports)

    def describe(self) -> str:
        return f"asha (min_steps={self.min_steps}, eta={self.eta:g}, min_reports={self.min_reports})"


class MedianStopping(Pruner):
    """The median stopping rule, judged at ``every`` steps from ``min_steps`` (default: the rungs of ``ASHA``)."""

    def __init__(self, min_steps: int = 1, every: int | None = None, eta: float = DEFAULT_ETA,
                 min_reports: int = DEFAULT_MIN_REPORTS) -> None:
        self.min_steps = _count("min_steps", min_steps)
        self.every = None if every is None else _count("every", every)
        self.eta = ASHA(min_steps, eta).eta
        self.min_reports = _count("min_reports", min_reports)

    def rungs(self, max_steps: int | None) -> list[int]:
        if self.every is None:
            return geometric_rungs(self.min_steps, self.eta, max_steps)
        end = max_steps if max_steps is not None else self.min_steps + 64 * self.every
        return list(range(self.min_steps, end, self.every))

    def keep(self, value: float, others: Sequence[float]) -> bool:
        return median_keeps(value, others, self.min_reports)

    def describe(self) -> str:
        how = f"every={self.every}" if self.every else f"eta={self.eta:g}"
        return f"median (min_steps={self.min_steps}, {how}, min_reports={self.min_reports})"


class NoPruning(Pruner):
    """Every training runs to its end; its reports are recorded."""

    def rungs(self, max_steps: int | None) -> list[int]:
        return []

    def keep(self, value: float, others: Sequence[float]) -> bool:
        return True

    def describe(self) -> str:
        return "none"


def make_pruner(pruner: str | Pruner | None, max_steps: int | None) -> Pruner:
    """The pruner ``optimize(pruner=...)`` asks for: a name of ``PRUNERS`` or an object with ``rungs`` and ``keep``;
    None (the default) is "asha" when ``max_steps`` is given, else "none" (reports are recorded, nothing pruned)."""
    if pruner is None:
        return ASHA() if max_steps is not None else NoPruning()
    if isinstance(pruner, str):
        name = pruner.lower()
        if name == "asha":
            return ASHA()
        if name == "median":
            return MedianStopping()
        if name == "none":
            return NoPruning()
        raise ValueError(f"pruner={pruner!r} must be one of {PRUNERS} or an object with rungs(max_steps) and "
                         "keep(value, others)")
    if not (callable(getattr(pruner, "rungs", None)) and callable(getattr(pruner, "keep", None))):
        raise TypeError(f"pruner={pruner!r} must be one of {PRUNERS} or an object with rungs(max_steps) and "
                        "keep(value, others)")
    rungs = pruner.rungs(max_steps)
    if any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rungs) or list(rungs) != sorted(set(rungs)):
        raise ValueError(f"pruner {pruner!r}: rungs(max_steps={max_steps}) returned {rungs!r}; it must be "
                         "increasing ints >= 1")
    return pruner


def describe(pruner: Any) -> str:
    """A pruner's name and settings, for meta.json and log lines (its class name when it has no ``describe``)."""
    text = getattr(pruner, "describe", None)
    return str(text()) if callable(text) else type(pruner).__name__


class RungBoard:
    """The values an island saw at each rung, one per training (by id), sorted: adding costs O(log n) to find the
    place, and the decision reads it without copying."""

    def __init__(self, rungs: Sequence[int]) -> None:
        self.rungs = list(rungs)
        self._values: dict[int, list[float]] = {r: [] for r in self.rungs}
        self._seen: dict[int, set[str]] = {r: set() for r in self.rungs}

    def add(self, ind_id: str, rung: int, value: float) -> bool:
        """``ind_id``'s value at ``rung``; False (and no change) when it was added before or ``rung`` is not one."""
        seen = self._seen.get(rung)
        if seen is None or ind_id in seen:
            return False
        seen.add(ind_id)
        bisect.insort(self._values[rung], _loss(value))
        return True

    def values(self, rung: int) -> list[float]:
        """Every value at ``rung``, sorted ascending (the board's own list: do not change it)."""
        return self._values.get(rung, [])


def crossed(rungs: Sequence[int], last: int | None, step: int) -> list[int]:
    """The rungs in (last, step]: those a report at ``step`` reaches, after one at ``last`` (None: the first)."""
    lo = bisect.bisect_right(rungs, 0 if last is None else last)
    hi = bisect.bisect_right(rungs, step)
    return list(rungs[lo:hi])


def rung_values(rungs: Sequence[int], curve: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """(rung, value) for every rung a curve reached: the value reported at the first step at or past the rung (what
    the training was judged on)."""
    out, last = [], None
    for step, value in curve:
        out.extend((r, value) for r in crossed(rungs, last, step))
        last = step
    return out
