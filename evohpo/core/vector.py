"""Configurations as points of the unit cube, for strategies that move in a vector space (CMA-ES, PSO,
Nelder-Mead): numeric parameters log-aware on [0, 1], ordered choices by their index on [0, 1]; unordered
choices stay out of the vector (the strategies take them from a GA child)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .space import Choice, Int, Space


class Vectorizer:
    """``encode`` a configuration to a point of [0, 1]^dims, ``decode`` a point back (rounded where discrete)."""

    def __init__(self, space: Space) -> None:
        self.space = Space(space)
        self.names = [n for n, p in self.space.items() if not isinstance(p, Choice) or p.ordered]
        self.unordered = [n for n in self.space if n not in self.names]
        steps = []
        for n in self.names:
            p = self.space[n]
            if isinstance(p, Choice):
                steps.append(1.0 / (len(p.values) - 1) if len(p.values) > 1 else 0.0)
            elif isinstance(p, Int) and not p.log and p.high > p.low:
                steps.append(1.0 / (p.high - p.low))
            else:  # floats, and log-scaled integers (rounded after decoding)
                steps.append(0.0)
        self.steps = np.array(steps, dtype=float)  # the unit distance between two neighbouring values (0: none)

    @property
    def dims(self) -> int:
        return len(self.names)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """The point of ``params``."""
        out = np.empty(self.dims)
        for j, n in enumerate(self.names):
            p = self.space[n]
            if isinstance(p, Choice):
                out[j] = p.index(params[n]) * self.steps[j]
            else:
                out[j] = p.to_unit(params[n])
        return out

    def decode(self, x: np.ndarray, template: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration at point ``x`` (clipped to the cube), unordered choices taken from ``template``."""
        x = np.clip(x, 0.0, 1.0)
        out = dict(template)
        for j, n in enumerate(self.names):
            p = self.space[n]
            if isinstance(p, Choice):
                out[n] = p.values[int(round(x[j] / self.steps[j]))] if self.steps[j] else p.values[0]
            else:
                out[n] = p.from_unit(float(x[j]))
        return {n: out[n] for n in self.space}
