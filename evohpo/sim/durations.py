"""How long simulated evaluations take, and which fail: fixed, uniform or heavy-tailed lognormal times, with
occasional failures and stragglers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DISTRIBUTIONS = ("fixed", "uniform", "lognormal")


@dataclass(frozen=True)
class Durations:
    """Evaluation times around ``median`` seconds.

    ``spread``: for "uniform" the half width as a share of the median (times in median * [1 - s, 1 + s]); for
    "lognormal" the standard deviation of the log (1.0 is a heavy tail: the slowest of 100 takes ~10x the median).
    ``failures``: the share of evaluations that fail (after their time); ``stragglers``: the share that take
    ``straggler_factor`` times longer.
    """

    distribution: str = "lognormal"
    median: float = 60.0
    spread: float = 0.5
    failures: float = 0.0
    stragglers: float = 0.0
    straggler_factor: float = 10.0

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution={self.distribution!r} must be one of {DISTRIBUTIONS}")
        for name in ("median", "spread", "failures", "stragglers", "straggler_factor"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name}={v!r} must be a finite number >= 0")
        if self.median <= 0:
            raise ValueError(f"median={self.median!r} must be > 0 seconds")
        if self.distribution == "uniform" and self.spread > 1:
            raise ValueError(f"spread={self.spread!r} must be <= 1 for uniform times (they would go negative)")
        for name in ("failures", "stragglers"):
            if getattr(self, name) > 1:
                raise ValueError(f"{name}={getattr(self, name)!r} is a share: it must be between 0 and 1")

    @classmethod
    def parse(cls, text: str) -> Durations:
        """``"lognormal:60:1.0"``, ``"uniform:10:0.5"``, ``"fixed:0.05"``: distribution, median, spread."""
        parts = text.split(":")
        try:
            numbers = [float(p) for p in parts[1:]]
        except ValueError:
            numbers = []
        if not 2 <= len(parts) <= 3 or len(numbers) != len(parts) - 1:
            raise ValueError(f"durations {text!r}: expected DISTRIBUTION:MEDIAN[:SPREAD], e.g. lognormal:60:1")
        return cls(parts[0], numbers[0], numbers[1] if len(numbers) > 1 else (0.0 if parts[0] == "fixed" else 0.5))

    def draw(self, rng: np.random.Generator) -> tuple[float, bool]:
        """One evaluation's time in seconds, and whether it fails."""
        if self.distribution == "fixed":
            t = self.median
        elif self.distribution == "uniform":
            t = self.median * (1.0 + self.spread * (2.0 * rng.random() - 1.0))
        else:
            t = self.median * math.exp(self.spread * rng.standard_normal())
        if self.stragglers and rng.random() < self.stragglers:
            t *= self.straggler_factor
        return t, bool(self.failures and rng.random() < self.failures)

    def describe(self) -> str:
        extra = "".join([f", {self.failures:.0%} fail" if self.failures else "",
                         f", {self.stragglers:.0%} x{self.straggler_factor:g}" if self.stragglers else ""])
        spread = "" if self.distribution == "fixed" else f" ({self.spread:g})"
        return f"{self.distribution}{spread} median {self.median:g} s{extra}"
