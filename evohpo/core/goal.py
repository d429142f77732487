"""What a search optimizes as users see it: a direction and the name of the value (the metric).

Inside, the search always minimizes a signed loss, so journals, populations and strategies are the same either
way: the loss is the value itself when minimizing and minus the value when maximizing. ``Goal`` converts at
the surfaces users read (results, tables, plots, log lines).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .individual import Individual

MINIMIZE, MAXIMIZE = "minimize", "maximize"
DIRECTIONS = (MINIMIZE, MAXIMIZE)


def as_loss(value: Any) -> float | None:
    """``value`` as a float when it is a real number (int, float, numpy or torch scalar, 0-d array); None for
    anything else: a string, a bool, a sequence (``(1.0,)``), None."""
    if isinstance(value, (str, bytes, bool)) or value is None:
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if getattr(value, "shape", None) == () and "bool" not in str(getattr(value, "dtype", "bool")):
        try:  # a 0-d numpy array or torch tensor
            return float(value)
        except (TypeError, ValueError):
            return None
    return None


@dataclass(frozen=True)
class Goal:
    """``direction`` ("minimize" or "maximize") of the value called ``metric``."""

    direction: str = MINIMIZE
    metric: str = "loss"

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction={self.direction!r} must be 'minimize' or 'maximize'")
        if not isinstance(self.metric, str) or not self.metric.strip() or self.metric != self.metric.strip():
            raise ValueError(f"metric={self.metric!r} must be a non-empty name without surrounding spaces")

    @property
    def maximize(self) -> bool:
        return self.direction == MAXIMIZE

    @property
    def better(self) -> str:
        """"higher is better" or "lower is better"."""
        return "higher is better" if self.maximize else "lower is better"

    def __str__(self) -> str:
        return f"{self.direction} {self.metric}"

    def value(self, x: Individual | float | np.ndarray) -> float | np.ndarray:
        """The value as the objective returned it, from a signed loss (or an array of them) or an individual
        (nan unless ok)."""
        if isinstance(x, Individual):
            if not x.ok:
                return math.nan
            x = x.loss
        return 0.0 - x if self.maximize else x  # 0.0 - x: no "-0" for a value of 0

    def loss(self, value: float) -> float:
        """The signed loss the search minimizes for ``value`` (a non-finite value stays as it is, so that the
        error text of a failed evaluation quotes what the objective returned)."""
        return 0.0 - value if self.maximize and math.isfinite(value) else value

    def signed(self, fn: Callable[[dict[str, Any]], float]) -> Callable[[dict[str, Any]], float]:
        """``fn`` returning the signed loss (``fn`` itself when minimizing)."""
        if not self.maximize:
            return fn

        def signed_loss(params: dict[str, Any]) -> Any:
            value = fn(params)
            real = as_loss(value)
            return value if real is None else self.loss(real)  # not a number: left for the evaluation to reject

        signed_loss.__wrapped__ = fn  # type: ignore[attr-defined]
        return signed_loss

    def to_meta(self) -> dict[str, str]:
        return {"direction": self.direction, "metric": self.metric}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any] | None) -> Goal:
        """The goal recorded in meta.json; searches written before it was recorded minimized "loss"."""
        meta = meta or {}
        try:
            return cls(meta.get("direction") or MINIMIZE, meta.get("metric") or "loss")
        except ValueError as e:
            raise ValueError(f"meta.json: {e}") from None

    @classmethod
    def of(cls, loss_fn: Any, direction: str | None = None, metric: str | None = None) -> Goal:
        """The goal asked for; what is not given comes from the objective's own ``direction`` and ``metric``
        attributes when it has them (as ``hpo.objective.LightningObjective``), else "minimize" and "loss"."""
        own_direction, own_metric = getattr(loss_fn, "direction", None), getattr(loss_fn, "metric", None)
        if own_direction is not None and own_direction not in DIRECTIONS:
            raise ValueError(f"the objective's direction={own_direction!r} ({loss_fn!r}) must be 'minimize' or "
                             "'maximize'")
        if direction is not None and own_direction is not None and direction != own_direction:
            raise ValueError(f"direction={direction!r} contradicts the objective's own "
                             f"direction={own_direction!r} ({loss_fn!r})")
        if direction is None:
            direction = own_direction or MINIMIZE
        if metric is None:
            metric = own_metric if isinstance(own_metric, str) else "loss"
        return cls(direction, metric)


class GoalView:
    """``direction``, ``metric`` and ``value(ind)`` of an object's ``goal`` (results, callbacks' search info)."""

    goal: Goal

    @property
    def direction(self) -> str:
        """"minimize" or "maximize"."""
        return self.goal.direction

    @property
    def metric(self) -> str:
        """The name of the value the search optimizes."""
        return self.goal.metric

    def value(self, ind: Individual) -> float:
        """``ind``'s value as the objective returned it (``ind.loss`` is minus it when maximizing); nan unless ok."""
        return self.goal.value(ind)
