"""The stop listener: a peer's STOP during an evaluation starts the grace period; nothing is lost or reordered."""

from __future__ import annotations

import time

from evohpo.parallel.listener import StopListener
from evohpo.parallel.signals import StopSignals
from evohpo.parallel.transport import Tag, ThreadHub


class Armed(StopSignals):
    """Records ``arm`` instead of setting a timer."""

    def __init__(self) -> None:
        super().__init__(0.5)
        self.armed = 0

    def arm(self) -> None:
        self.armed += 1


def until(cond, timeout: float = 5.0) -> bool:
    deadline = time.time() + timeout
    while not cond() and time.time() < deadline:
        time.sleep(0.01)
    return cond()


def test_a_peers_stop_during_an_evaluation_arms_the_grace_period_and_stays_for_the_next_poll() -> None:
    me, peer = ThreadHub(2).transports()
    signals, asked = Armed(), []
    listener = StopListener(me, signals, lambda reason, broadcast: asked.append(reason), period=0.02).start()
    try:
        peer.send(0, Tag.RESULT, "first")
        peer.send(0, Tag.STOP, "received SIGTERM")
        time.sleep(0.15)
        assert signals.armed == 0  # between evaluations the worker's poll hears it, not the listener
        assert me.hub.boxes[0].qsize() == 2
        with listener.evaluating():
            assert until(lambda: signals.armed > 0)
        assert [(tag, payload) for _, tag, payload in me.poll()] == [(Tag.RESULT, "first"),
                                                                     (Tag.STOP, "received SIGTERM")]
        assert me.poll() == [] and me.received.tolist() == [0, 2]
        assert asked == []  # no signal here: nothing to pass on
    finally:
        listener.close()


def test_a_signal_here_during_an_evaluation_is_passed_on_at_once() -> None:
    me, _ = ThreadHub(2).transports()
    signals, asked = Armed(), []
    listener = StopListener(me, signals, lambda *a: asked.append(a), period=0.02).start()
    try:
        with listener.evaluating():
            signals.reason = "received SIGUSR1"  # what the handler sets
            assert until(lambda: bool(asked))
        assert asked[0] == ("received SIGUSR1", True) and signals.armed == 0
    finally:
        listener.close()


def test_a_signal_here_is_not_passed_on_when_a_peers_stop_came_first() -> None:
    """Every rank signalled at once (SLURM): the first STOP reached everyone, so the others send none of theirs."""
    me, peer = ThreadHub(2).transports()
    signals, asked = Armed(), []
    listener = StopListener(me, signals, lambda *a: asked.append(a), period=0.02).start()
    try:
        peer.send(0, Tag.STOP, "received SIGUSR1")
        with listener.evaluating():
            signals.reason = "received SIGUSR1"
            assert until(lambda: bool(asked))
        assert asked == [("received SIGUSR1", False)] and signals.armed == 1
        assert [tag for _, tag, _ in me.poll()] == [Tag.STOP]  # still there for the worker's next poll
    finally:
        listener.close()


def test_an_evaluation_shorter_than_the_period_is_left_alone() -> None:
    me, peer = ThreadHub(2).transports()
    signals = Armed()
    listener = StopListener(me, signals, lambda reason, broadcast: None, period=0.5).start()
    try:
        peer.send(0, Tag.STOP, "x")
        for _ in range(20):
            with listener.evaluating():
                time.sleep(0.01)
        assert signals.armed == 0 and me.hub.boxes[0].qsize() == 1
    finally:
        listener.close()
