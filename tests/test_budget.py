"""The budget of a worker and its sharing protocol, in one process: three budgets on ThreadTransports, no MPI."""

from __future__ import annotations

from collections import Counter

import numpy as np

from evohpo.journal.restore import RankPlan
from evohpo.parallel.budget import Budget, search_total, share, worker_limit
from evohpo.parallel.transport import Tag, ThreadHub


def budgets(limits: list[int]) -> list[Budget]:
    transports = ThreadHub(len(limits)).transports()
    return [Budget(t, [p for p in range(len(limits)) if p != r], limit, share=True)
            for r, (t, limit) in enumerate(zip(transports, limits))]


def deliver(b: Budget) -> list[tuple[int, int, object]]:
    """What arrived at ``b``, handled the way the worker loop does for the budget's messages."""
    msgs = b.transport.poll()
    for src, tag, payload in msgs:
        if tag == Tag.GIFT:
            b.on_gift(src, *payload)
        elif tag == Tag.RETIRED:
            b.on_retired(src)
        elif tag == Tag.RESULT:
            b.heard(src, payload[2])
    return msgs


def test_a_gift_evens_out_giver_and_asker() -> None:
    b = budgets([10, 10, 10])
    b[1].done = 2  # 8 not started
    b[1].give(asker=0, left=2)
    [(src, tag, payload)] = b[0].transport.poll()
    assert (src, tag, payload) == (1, Tag.GIFT, (3, 5))  # ceil((8 - 2) / 2): 5 left here, 2 + 3 there
    assert b[1].limit == 7
    b[2].done = 10
    b[2].give(asker=0, left=0)
    assert b[0].transport.poll() == [(2, Tag.GIFT, (0, 0))]
    b[1].done = 5  # two not started (limit 7 after the first gift): an idle asker gets one
    b[1].give(asker=0, left=0)
    assert b[0].transport.poll() == [(1, Tag.GIFT, (1, 1))]
    b[1].give(asker=0, left=0)  # its last one it keeps: two idle workers must not pass it back and forth
    assert b[0].transport.poll() == [(1, Tag.GIFT, (0, 1))]
    b[2].limit, b[2].done = 12, 10  # two not started, the asker still runs its last: it gets one of them
    b[2].give(asker=0, left=1)
    assert b[0].transport.poll() == [(2, Tag.GIFT, (1, 1))]


def test_the_richest_peer_is_asked_alone_and_everyone_only_when_none_is_known() -> None:
    b = budgets([10, 10, 10])
    a = b[0]
    a.done = 8
    a.spare = {1: 7, 2: 2}
    a.ask()
    assert a.asked == {1} and a.transport.sent.tolist() == [0, 1, 0]
    assert [m[:3] for m in b[1].transport.poll()] == [(0, Tag.ASK, 2)]
    a.on_gift(1, 0, 0)  # 1 had none left after all
    assert not a.asked and not a.nobody_has_more and a.spare[1] == 0
    a.ask()  # 2 left and nobody known to hold more than that: no ask
    assert not a.asked
    a.done = 10
    a.spare = {1: 0, 2: 0}
    a.ask()  # out, nobody known to hold any: ask everyone still working, and believe their answers
    assert a.asked == {1, 2}
    a.on_gift(1, 0, 0)
    assert not a.nobody_has_more
    a.on_gift(2, 0, 0)
    assert a.nobody_has_more


def test_results_carry_the_unstarted_count_and_retired_peers_count_as_answers() -> None:
    b = budgets([10, 10, 10])
    b[1].done = 3
    b[1].transport.send_all([0], Tag.RESULT, (None, {"x": 0.5}, b[1].unstarted(starting=True)))
    deliver(b[0])
    assert b[0].spare[1] == 6
    b[0].done = 10
    b[0].spare = {}
    b[0].ask()  # peers not heard from are assumed to hold a first share (10 > 0)
    assert len(b[0].asked) == 1
    b[2].transport.send_all([0, 1], Tag.RETIRED, None)
    deliver(b[0])
    assert 2 in b[0].retired
    assert np.array_equal(b[0].transport.received, [0, 1, 1])


def test_waiting_for_more_returns_once_a_gift_came_or_nobody_has_any() -> None:
    b = budgets([4, 4])
    b[0].done = 4
    calls = []

    def wait(until):  # the peer answers every ASK: first with two evaluations, then with none
        while not until():
            for src, tag, left in b[1].transport.poll():
                assert tag == Tag.ASK
                b[1].give(src, left)
            deliver(b[0])
        calls.append(b[0].limit)

    assert b[0].wait_for_more(wait) and b[0].limit == 6 and b[1].limit == 2  # 4 unstarted there: 2 given
    b[0].done, b[1].done = 6, 2
    assert not b[0].wait_for_more(wait) and b[0].nobody_has_more
    assert not Budget(b[0].transport, [1], 4, share=False).wait_for_more(wait)  # per-worker budgets: no sharing


def test_unstarted_counts_the_restored_evaluations_still_to_run() -> None:
    b = Budget(ThreadHub(1).transports()[0], [], 10, done=3, requeued=[{}, {}])
    assert b.unstarted() == 5 and b.unstarted(starting=True) == 4 and b.left() == 7 and not b.spent()
    b.done = 10
    assert b.spent() and b.unstarted() == 0 and b.left() == 0
    assert Budget(b.transport, [], None).unstarted() == 0 and not Budget(b.transport, [], None).spent()


def test_limits_split_a_total_evenly_on_top_of_what_each_rank_re_runs() -> None:
    assert [share(10, 4, i) for i in range(4)] == [3, 3, 2, 2] and [share(-3, 2, i) for i in range(2)] == [0, 0]
    assert worker_limit(1, 4, generations=5, max_evaluations=None) == (5, 0)
    assert worker_limit(3, 4, generations=None, max_evaluations=10) == (2, 0)
    assert worker_limit(0, 4, generations=None, max_evaluations=None) == (None, 0)
    assert search_total(5, None, 4) == 20 and search_total(5, 30, 4) == 30 and search_total(None, None, 4) is None
    # resumed: 6 of 20 done (2 by rank 0), 3 unfinished (2 for rank 0): 11 left, split 3, 3, 3, 2
    assert worker_limit(0, 4, None, 20, resumed(done=2, total_done=6, queued={0: 2, 1: 1})) == (2 + 2 + 3, 2)
    assert worker_limit(3, 4, None, 20, resumed(done=0, total_done=6, queued={0: 2, 1: 1})) == (2, 0)
    assert worker_limit(0, 4, 3, 20, resumed(done=2, total_done=6, queued={0: 2})) == (3, 2)  # the smaller budget


def test_a_step_budget_is_split_after_the_steps_every_journal_reported() -> None:
    plan = resumed(done=2, total_done=6, queued={0: 2})
    plan.steps, plan.total_steps = 40, 100
    assert worker_limit(0, 4, None, None, None, step_budget=10) == (3, 0)
    assert worker_limit(0, 4, None, None, plan, step_budget=300) == (40 + 50, 40)  # 200 left: 50 each
    assert worker_limit(1, 4, None, None, plan, step_budget=50) == (40, 40)  # used up already: nothing new


def resumed(done: int, total_done: int, queued: dict[int, int]) -> RankPlan:
    return RankPlan(members=[], in_flight=[], hops={}, state=None, next_generation=0, requeued=[], done=done,
                    total_done=total_done, queued=Counter(queued))
