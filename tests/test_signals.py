"""Stop signals in one process: the grace period, and alarms that are not evohpo's."""

from __future__ import annotations

import os
import signal
import time

import pytest

import evohpo
from evohpo.parallel.transport import local_transport

SPACE = {"x": (-1.0, 1.0)}


def test_a_stop_during_an_evaluation_interrupts_it_after_the_grace_period() -> None:
    def loss(p):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(2.0)  # longer than the grace period
        return 0.0

    pytest.importorskip("cmaes")  # imported before the clock starts: the default strategy's import is slow
    t0 = time.monotonic()
    r = evohpo.optimize(loss, SPACE, generations=5, comm=local_transport(), grace_period=0.1)
    assert r.n_interrupted == 1 and r.n_evaluations == 0 and r.reason == "received SIGTERM"
    assert time.monotonic() - t0 < 1.5
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_callers_alarm_and_timer_are_left_alone() -> None:
    fired: list[int] = []
    before = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 5.0)
        evohpo.optimize(lambda p: p["x"] ** 2, SPACE, generations=5, comm=local_transport())
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 4.0  # still running
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        r = evohpo.optimize(lambda p: (time.sleep(0.5), 0.0)[1], SPACE, generations=1, comm=local_transport())
        assert r.n_interrupted == 0 and r.n_evaluations == 1  # not taken for the end of a grace period...
        assert fired == [1]  # ...but handed to the handler that was there before
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
