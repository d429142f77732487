"""Island order: every worker feeds its island's results to its model in one order, whatever order they arrive in;
CMA-ES in island order keeps one distribution on all workers."""

from __future__ import annotations

import heapq
import json
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evohpo.core.cma import CMAES
from evohpo.core.evolver import Evolver
from evohpo.core.individual import FAILED, OK, Individual
from evohpo.core.order import IslandOrder
from tests.test_cma import rotated_ellipsoid


def result(rank: int, n: int, end: float, status: str = OK) -> Individual:
    return Individual(id=f"{rank}-{n}", params={"x": float(n)}, loss=float(n), status=status, rank=rank, end=end)


def streams(draw_ends: list[list[float]]) -> list[list[Individual]]:
    """Each worker's results in the order they ended (ends made increasing per worker)."""
    out = []
    for rank, gaps in enumerate(draw_ends):
        ends = np.cumsum(gaps)
        out.append([result(rank, n, float(e)) for n, e in enumerate(ends)])
    return out


def key(ind: Individual) -> tuple:
    return (ind.end, ind.rank, ind.id)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.floats(0.01, 5.0), min_size=1, max_size=12), min_size=2, max_size=4),
       st.randoms(use_true_random=False))
def test_any_arrival_order_releases_a_prefix_of_the_one_order(gaps: list[list[float]], rnd) -> None:
    per_worker = streams(gaps)
    everything = sorted((i for s in per_worker for i in s), key=key)
    queues = [list(s) for s in per_worker]
    order = IslandOrder(range(len(per_worker)), max_held=1000)
    released: list[Individual] = []
    while any(queues):  # a random interleaving that keeps each worker's own order (as MPI does per sender)
        q = rnd.choice([q for q in queues if q])
        released += order.push(q.pop(0))
    assert [i.id for i in released] == [i.id for i in everything[: len(released)]]
    mark = min(s[-1].end for s in per_worker)
    assert len(released) == sum(i.end <= mark for i in everything)  # all that no worker can still precede


def test_failed_results_move_the_order_on_but_a_silent_worker_holds_it_until_max_held() -> None:
    order = IslandOrder([0, 1, 2], max_held=4)
    assert order.push(result(0, 0, 1.0)) == []
    assert order.push(result(1, 0, 2.0, FAILED)) == []  # a failure is a report too
    assert order.push(result(0, 1, 3.0)) == []  # worker 2 has not reported: it may still end first
    out = order.push(result(2, 0, 1.5))
    assert [i.id for i in out] == ["0-0", "2-0"]  # by end time, up to the earliest latest end (worker 2's 1.5)
    assert order.held == 2
    # workers 1 and 2 fall silent: once max_held results came without a word from them, they are not waited for
    released = [i.id for n in range(2, 8) for i in order.push(result(0, n, 3.0 + n))]
    assert released == ["1-0", "0-1", "0-2", "0-3", "0-4", "0-5", "0-6", "0-7"] and order.held == 0


def test_a_result_whose_place_was_passed_comes_out_at_once_and_held_ones_are_capped() -> None:
    order = IslandOrder([0, 1], max_held=3)
    pushed = [result(0, 0, 1.0), result(0, 1, 2.0), result(0, 2, 3.0), result(1, 0, 0.1), result(0, 3, 4.0)]
    out = [i.id for ind in pushed for i in order.push(ind)]
    # worker 1 keeps reporting results that ended long ago: worker 0's pile up, and past 3 the oldest go out
    assert out == ["1-0", "0-0"] and order.held == 3
    assert [i.id for i in order.push(result(1, 1, 0.5))] == ["1-1"]  # late: 0-0 (end 1.0) was passed


def test_the_order_round_trips_through_json() -> None:
    a = IslandOrder([0, 1, 2, 3], max_held=10)  # worker 3 has not reported yet
    for ind in [result(0, 0, 1.0), result(1, 0, 2.0), result(0, 1, 3.0), result(2, 0, 10.0)]:
        a.push(ind)
    b = IslandOrder([0, 1, 2, 3], max_held=10)
    b.load_state_dict(json.loads(json.dumps(a.state_dict(), allow_nan=False)))
    for ind in [result(1, 1, 4.0), result(2, 1, 11.0), result(3, 0, 5.0), result(0, 2, 6.0)]:
        assert [i.id for i in a.push(ind)] == [i.id for i in b.push(ind)]
    assert a.state_dict() == b.state_dict()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="ranks"):
        IslandOrder([], max_held=3)
    with pytest.raises(ValueError, match="max_held=0"):
        IslandOrder([0], max_held=0)


# --- CMA-ES in island order ---------------------------------------------------------------------------------
def asynchronous(space, loss, workers: int, n: int, seed: int, join: bool, spy=None) -> float:
    """``n`` evaluations on ``workers`` in-process workers of one island: each evaluation takes 1-3 time units, and
    each result reaches each peer 0-1.5 units later (in the order its sender sent them). ``spy(rank, cma)`` is
    called after each result a worker takes in."""
    rng = np.random.default_rng(seed)
    evs = []
    for r in range(workers):
        cma = CMAES(space, 8, popsize=8)  # one population with and without the order: its effect alone
        if join:
            cma.join(0, list(range(workers)))
        evs.append(Evolver(space, cma, pop_size=8, seed=[seed, r], name=str(r), rank=r))
    events: list[tuple[float, int, int, str, object]] = []  # (time, tie, worker, kind, payload)
    tie, sent, last_arrival = 0, 0, {}
    for r in range(workers):
        heapq.heappush(events, (0.0, tie := tie + 1, r, "free", None))
    while events:
        t, _, r, kind, payload = heapq.heappop(events)
        ev = evs[r]
        if kind == "free" and sent < n:
            sent += 1
            p = ev.ask()
            heapq.heappush(events, (t + rng.uniform(1, 3), tie := tie + 1, r, "done", (p, t)))
        elif kind == "done":
            p, start = payload
            ind = ev.tell(p, loss(p), start=start, end=t)
            if spy:
                spy(r, ev.propagator)
            for other in range(workers):
                if other != r:
                    at = max(t + rng.uniform(0, 1.5), last_arrival.get((r, other), 0.0))
                    last_arrival[(r, other)] = at
                    heapq.heappush(events, (at, tie := tie + 1, other, "result", ind))
            heapq.heappush(events, (t, tie := tie + 1, r, "free", None))
        elif kind == "result":
            ev.add(payload)
            if spy:
                spy(r, ev.propagator)
    return min(ev.best()[0].loss for ev in evs)


@pytest.mark.parametrize("join", [True, False])
def test_in_island_order_every_worker_has_the_same_distribution_after_each_update(join: bool) -> None:
    space, loss = rotated_ellipsoid(4, 0)
    means: dict[tuple[int, int], np.ndarray] = {}  # (update, worker) -> mean after it

    def spy(rank: int, cma: CMAES) -> None:
        inner = cma._inner()
        means.setdefault((inner.generation, rank), inner._mean.copy())

    asynchronous(space, loss, 3, 400, seed=1, join=join, spy=spy)
    updates = {g for g, _ in means}
    common = [g for g in sorted(updates) if all((g, r) in means for r in range(3))]
    assert len(common) > 30  # 400 results of a population of 8 (a few still held at the end)
    spread = max(float(np.max(np.abs(means[(g, r)] - means[(g, 0)]))) for g in common for r in range(3))
    if join:
        assert spread == 0.0, spread
    else:  # each worker batches the results as they arrive to it: the distributions drift apart
        assert spread > 1e-3, spread


def test_island_order_makes_asynchronous_workers_converge_as_one() -> None:
    # measured (3 workers, 4-D rotated ellipsoid, 600 evaluations, 15 seeds; deterministic; population 8 in both):
    # medians 0.077 in island order and 2.4 without it (one worker alone: 0.065 over 7 seeds, tests/test_cma.py)
    ordered, unordered = [], []
    for seed in range(15):
        space, loss = rotated_ellipsoid(4, seed)
        ordered.append(asynchronous(space, loss, 3, 600, seed, join=True))
        unordered.append(asynchronous(space, loss, 3, 600, seed, join=False))
    assert statistics.median(ordered) < 0.5 and statistics.median(unordered) > 5 * statistics.median(ordered), (
        ordered, unordered)


def test_a_cma_es_in_island_order_continues_from_its_state() -> None:
    space, loss = rotated_ellipsoid(3, 0)
    rng = np.random.default_rng(0)

    def joined() -> CMAES:
        cma = CMAES(space, 8)
        cma.join(0, [0, 1, 2])
        return cma

    def fed(cma: CMAES, n: int, first: int = 0) -> None:
        for k in range(first, first + n):  # three workers' results, ending in turn
            p = {f"x{i}": float(v) for i, v in enumerate(rng.uniform(-1, 1, 3))}
            cma.observe(Individual(id=f"{k % 3}-{k}", params=p, loss=loss(p), rank=k % 3, end=float(k)))

    a = joined()
    fed(a, 60)
    state = json.loads(json.dumps(a.state_dict(), allow_nan=False))
    assert state["order"]["held"]  # the results not yet released are part of the state
    b = joined()
    b.load_state_dict(state)
    rng_state = rng.bit_generator.state
    fed(a, 60, 60)
    rng.bit_generator.state = rng_state
    fed(b, 60, 60)
    assert a._inner().generation == b._inner().generation > 6
    assert np.array_equal(a._inner()._mean, b._inner()._mean)


def test_joining_an_island_of_several_enlarges_the_population_less_in_more_dimensions() -> None:
    space, _ = rotated_ellipsoid(5, 0)
    default = CMAES(space, 8).population_size
    for ranks, expected in (([0], default), ([0, 1, 2, 3], default + 3)):  # 0.75 per worker in 5-D
        cma = CMAES(space, 8)
        cma.join(0, ranks)
        assert cma.population_size == expected
    wide, _ = rotated_ellipsoid(20, 0)
    cma = CMAES(wide, 8)
    cma.join(0, [0, 1, 2, 3])
    assert cma.population_size == CMAES(wide, 8).population_size + 1  # 20-D: the covariance learns ~11x slower
    given = CMAES(space, 8, popsize=10)
    given.join(0, [0, 1, 2, 3])
    assert given.population_size == 10  # a population the user gave is kept
