"""Progress of the whole search, shown by rank 0: every worker sends its counts there now and then
(``ProgressReport``); rank 0 shows them as a tqdm bar on a terminal, as periodic log lines otherwise
(``ProgressBar``).

After a resume the count shown is the evaluations restored from the checkpoint (the whole search's, whatever
the number of ranks now) plus those run in this session by every worker; the rate counts only the latter.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

from ..core import clock
from ..core.goal import Goal
from ..core.population import Population
from .transport import Tag, Transport

log = logging.getLogger("evohpo")


class ProgressBar:
    """Evaluations done of the budget, best value (of the goal's metric), evaluations per second and time left.

    ``initial``: evaluations done before this session (restored): the tqdm bar starts there, so that its rate
    counts only this session's.
    """

    def __init__(self, total: int | None, time_limit: float | None, tty: bool | None = None,
                 goal: Goal | None = None, initial: int = 0) -> None:
        self.total, self.time_limit = total, time_limit
        self.goal = goal or Goal()
        self.bar: Any = None
        if tty if tty is not None else sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, unit="eval", dynamic_ncols=True, desc="evohpo", initial=initial)

    def left(self, done: int, rate: float, elapsed: float) -> float | None:
        """Seconds until the budget or the time limit, whichever comes first; None when unknown."""
        options = []
        if self.total and rate > 0:
            options.append(max(self.total - done, 0) / rate)
        if self.time_limit is not None:
            options.append(max(self.time_limit - elapsed, 0.0))
        return min(options) if options else None

    def update(self, done: int, best: float, rate: float, elapsed: float) -> None:
        """Show the counts; ``done`` includes restored evaluations, ``rate`` counts this session's only;
        ``best`` is the best signed loss (inf before the first ok evaluation)."""
        left = self.left(done, rate, elapsed)
        value = self.goal.value(best)
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix({f"best {self.goal.metric}": f"{value:.4g}" if math.isfinite(best) else "-"},
                                 refresh=False)
            self.bar.refresh()
            return
        of = f"/{self.total}" if self.total else ""
        eta = "" if left is None else f", ~{left:.0f} s left"
        shown = f"{value:.6g}" if math.isfinite(best) else "none yet"
        log.info("evaluations %d%s, best %s %s, %.1f evaluations/s%s", done, of, self.goal.metric, shown, rate, eta)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class ProgressReport:
    """Every ``interval`` seconds: a worker's (evaluations run in this session, best loss) goes to rank 0, which
    shows ``resumed`` (evaluations of the whole search restored from the checkpoint) plus the sum of the runs."""

    def __init__(self, transport: Transport, population: Population, interval: float, total: int | None,
                 time_limit: float | None, goal: Goal | None = None, resumed: int = 0) -> None:
        self.transport, self.population, self.interval, self.resumed = transport, population, interval, resumed
        self.bar = ProgressBar(total, time_limit, goal=goal, initial=resumed) if transport.rank == 0 else None
        self._workers: dict[int, tuple[int, float]] = {}  # rank -> its last (run, best loss)
        self._t0 = self._last = clock.now()

    def start(self) -> None:
        """The search (and its rate) starts now."""
        self._t0 = self._last = clock.now()

    def tick(self, run: int) -> None:
        """After an evaluation: ``run`` evaluations finished by this worker in this session (what is sent and
        summed: the restored ones are counted once, in ``resumed``)."""
        now = clock.now()
        if now - self._last < self.interval:
            return
        self._last = now
        leader = self.population.best()
        best = leader.loss if leader is not None else math.inf
        if self.bar is None:
            self.transport.send(0, Tag.PROGRESS, (run, best))
            return
        self._workers[0] = (run, best)
        ran = sum(n for n, _ in self._workers.values())
        best_loss = min(b for _, b in self._workers.values())
        elapsed = now - self._t0
        self.bar.update(self.resumed + ran, best_loss, ran / max(elapsed, 1e-9), elapsed)

    def on_message(self, src: int, payload: tuple[int, float]) -> None:
        """A worker's counts (rank 0): its evaluations run in this session and its best loss."""
        self._workers[src] = payload

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
