"""The budget-sharing protocol of the worker, in one process: three workers on ThreadTransports, no MPI."""

from __future__ import annotations

import numpy as np

from evohpo.core.evolver import Evolver
from evohpo.core.migration import IslandLayout, MigrationPolicy, topology_matrix
from evohpo.core.space import Space
from evohpo.parallel.transport import Tag, ThreadHub
from evohpo.parallel.worker import Worker

SPACE = Space({"x": (0.0, 1.0)})


def workers(budgets: list[int]) -> list[Worker]:
    hub = ThreadHub(len(budgets))
    layout = IslandLayout.make(len(budgets))
    policy = MigrationPolicy(topology_matrix("complete", 1))
    return [Worker(lambda p: p["x"], Evolver(SPACE, pop_size=4, seed=r), t, layout, policy, budget=b,
                   share_budget=True, progress_interval=1e9) for r, (t, b) in enumerate(zip(hub.transports(), budgets))]


def deliver(w: Worker) -> list[tuple[int, int, object]]:
    msgs = w.transport.poll()
    w._handle(msgs)
    return msgs


def test_a_gift_evens_out_giver_and_asker() -> None:
    w = workers([10, 10, 10])
    w[1].n_done = 2  # 8 not started
    w[1]._give(asker=0, left=2)
    [(src, tag, payload)] = w[0].transport.poll()
    assert (src, tag, payload) == (1, Tag.GIFT, (3, 5))  # ceil((8 - 2) / 2): 5 left here, 2 + 3 there
    assert w[1].budget == 7
    w[2].n_done = 10
    w[2]._give(asker=0, left=0)
    assert w[0].transport.poll() == [(2, Tag.GIFT, (0, 0))]
    w[1].n_done = 5  # two not started (budget 7 after the first gift): an idle asker gets one
    w[1]._give(asker=0, left=0)
    assert w[0].transport.poll() == [(1, Tag.GIFT, (1, 1))]
    w[1]._give(asker=0, left=0)  # its last one it keeps: two idle workers must not pass it back and forth
    assert w[0].transport.poll() == [(1, Tag.GIFT, (0, 1))]
    w[2].budget, w[2].n_done = 12, 10  # two not started, the asker still runs its last: it gets one of them
    w[2]._give(asker=0, left=1)
    assert w[0].transport.poll() == [(2, Tag.GIFT, (1, 1))]


def test_the_richest_peer_is_asked_alone_and_everyone_only_when_none_is_known() -> None:
    w = workers([10, 10, 10])
    a = w[0]
    a.n_done = 8
    a._spare = {1: 7, 2: 2}
    a._ask()
    assert a._asked == {1} and a.transport.sent.tolist() == [0, 1, 0]
    assert [m[:3] for m in w[1].transport.poll()] == [(0, Tag.ASK, 2)]
    a._answered(1, 0, 0)  # 1 had none left after all
    assert not a._asked and not a._dry and a._spare[1] == 0
    a._ask()  # 2 left and nobody known to hold more than that: no ask
    assert not a._asked
    a.n_done = 10
    a._spare = {1: 0, 2: 0}
    a._ask()  # out, nobody known to hold any: ask everyone still working, and believe their answers
    assert a._asked == {1, 2}
    a._answered(1, 0, 0)
    assert not a._dry
    a._answered(2, 0, 0)
    assert a._dry


def test_results_carry_the_unstarted_count_and_retired_peers_count_as_answers() -> None:
    w = workers([10, 10, 10])
    w[1].n_done = 3
    w[1]._share(None, {"x": 0.5})  # starting one more: 6 not started
    deliver(w[0])
    assert w[0]._spare[1] == 6
    w[0].n_done = 10
    w[0]._spare = {}
    w[0]._ask()  # peers not heard from are assumed to hold a first share (10 > 0)
    assert len(w[0]._asked) == 1
    w[2].transport.send_all([0, 1], Tag.RETIRED, None)
    deliver(w[0])
    assert 2 in w[0]._retired
    assert np.array_equal(w[0].transport.received, [0, 1, 1])
