"""When failures end a search: the first evaluations all failed, or too many of the recent ones did."""

from __future__ import annotations

from collections import deque

from ..core.individual import FAILED, Individual


class FailureWatch:
    """Stops a search whose loss function is broken rather than unlucky (fed every result its island hears of).

    ``max_failures``: stop once this many evaluations failed before any succeeded (None: never);
    ``max_failure_rate``: stop once more than this share of the last ``window`` evaluations failed (None: never).
    """

    def __init__(self, max_failures: int | None = 10, max_failure_rate: float | None = None,
                 window: int = 50) -> None:
        if max_failures is not None and (not isinstance(max_failures, int) or isinstance(max_failures, bool)
                                         or max_failures < 1):
            raise ValueError(f"max_failures={max_failures!r} must be a positive int or None")
        if max_failure_rate is not None and (not isinstance(max_failure_rate, (int, float))
                                             or isinstance(max_failure_rate, bool)
                                             or not 0.0 < max_failure_rate < 1.0):
            raise ValueError(f"max_failure_rate={max_failure_rate!r} must be a share in (0, 1) or None")
        self.max_failures, self.max_failure_rate = max_failures, max_failure_rate
        self.any_ok = False
        self.failed = 0
        self.recent: deque[bool] = deque(maxlen=window)
        self.last_error = ""  # the last line of the latest failure's error text

    def add(self, ind: Individual) -> str | None:
        """Take one result; why the search should stop now, or None."""
        bad = ind.status == FAILED
        self.recent.append(bad)
        if not bad:
            self.any_ok = True
            return None
        self.failed += 1
        self.last_error = ((ind.error or "").strip().splitlines() or [""])[-1]
        if not self.any_ok and self.max_failures is not None and self.failed >= self.max_failures:
            return f"the first {self.failed} evaluations all failed (max_failures={self.max_failures}); " \
                   f"the last error: {self.last_error}"
        rate = sum(self.recent) / len(self.recent)
        if self.max_failure_rate is not None and len(self.recent) == self.recent.maxlen and \
                rate > self.max_failure_rate:
            return f"{sum(self.recent)} of the last {len(self.recent)} evaluations failed " \
                   f"(max_failure_rate={self.max_failure_rate:g}); the last error: {self.last_error}"
        return None
