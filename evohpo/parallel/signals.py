"""Stop signals: SIGTERM/SIGUSR1 (how SLURM warns before a time limit) and SIGINT (Ctrl-C) stop new
evaluations; a running one gets a grace period, then is interrupted. A second SIGINT ends the process at once."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence
from typing import Any


class EvaluationInterrupted(BaseException):
    """Raised inside a running evaluation when the grace period after a stop signal ran out."""


class StopSignals:
    """SIGTERM/SIGUSR1/SIGINT stop new evaluations; a running one gets ``grace`` seconds, then is interrupted.

    A context manager, entered as early as possible so that a signal during start-up is not fatal either.
    The grace period is an interval timer (SIGALRM) set only once a stop signal came during an evaluation; any
    other alarm goes to the handler that was installed before (e.g. pytest-timeout's), and a timer the caller
    had set keeps running.
    """

    def __init__(self, grace: float | None,
                 signals: Sequence[int] = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)) -> None:
        self.grace, self.signals = grace, tuple(signals)
        self.reason: str | None = None  # set by the handler; acted on by the worker loop
        self.evaluating = False
        self._previous: dict[int, Any] = {}
        self._armed = False  # the timer running is the grace period's
        self.armed_at: float | None = None  # when the grace period started (the worker's followers follow it)

    def _on_stop(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.reason == "received SIGINT":
            raise KeyboardInterrupt  # Ctrl-C twice: the user wants out now
        self.reason = f"received {signal.Signals(signum).name}"
        self.arm()

    def arm(self) -> None:
        """Start the grace period if an evaluation runs (a stop signal here, or a peer's STOP heard by the
        ``listener``, from its thread); only where the handlers are installed (the alarm would be fatal else)."""
        if self._previous and self.evaluating and self.grace is not None and not self._armed:
            self._armed = True
            self.armed_at = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, max(self.grace, 1e-3))

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if self._armed:  # the grace period ran out
            self._armed = False
            if self.evaluating:
                raise EvaluationInterrupted()
            return
        previous = self._previous.get(signal.SIGALRM)
        if callable(previous):
            previous(signum, frame)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._on_stop) for s in self.signals}
            self._previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._on_alarm)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous:
            if self._armed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                self._armed = False
            for s, h in self._previous.items():
                signal.signal(s, h)
            self._previous = {}
