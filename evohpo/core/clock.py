"""The time the search runs on: the wall clock, or a simulator's virtual clock (``evohpo.sim``).

Every timestamp and every interval of the worker loop (evaluation start and end, time limit, migration and
progress intervals, journal state) reads ``now()``, so that a simulation drives the same code in virtual time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

_now: Callable[[], float] = time.time


def now() -> float:
    """Seconds since the epoch, or the simulated worker's virtual time while a simulation runs."""
    return _now()


@contextlib.contextmanager
def using(clock: Callable[[], float]) -> Iterator[None]:
    """Read time from ``clock`` for the duration of the block (one simulation at a time per process)."""
    global _now
    previous, _now = _now, clock
    try:
        yield
    finally:
        _now = previous
