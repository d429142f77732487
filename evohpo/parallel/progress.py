"""Rank 0's report of the whole search: a tqdm bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

log = logging.getLogger("evohpo")


class Progress:
    """Evaluations done of the budget, best loss, evaluations per second and time left."""

    def __init__(self, total: int | None, time_limit: float | None, tty: bool | None = None) -> None:
        self.total, self.time_limit = total, time_limit
        self.bar: Any = None
        if tty if tty is not None else sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, unit="eval", dynamic_ncols=True, desc="evohpo")

    def left(self, done: int, rate: float, elapsed: float) -> float | None:
        """Seconds until the budget or the time limit, whichever comes first; None when unknown."""
        options = []
        if self.total and rate > 0:
            options.append(max(self.total - done, 0) / rate)
        if self.time_limit is not None:
            options.append(max(self.time_limit - elapsed, 0.0))
        return min(options) if options else None

    def update(self, done: int, best: float, rate: float, elapsed: float) -> None:
        left = self.left(done, rate, elapsed)
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix(best=f"{best:.4g}", refresh=False)
            self.bar.refresh()
            return
        of = f"/{self.total}" if self.total else ""
        eta = "" if left is None else f", ~{left:.0f} s left"
        shown = f"{best:.6g}" if math.isfinite(best) else "none yet"
        log.info("evaluations %d%s, best loss %s, %.1f evaluations/s%s", done, of, shown, rate, eta)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
