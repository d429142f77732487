"""Tests for evohpo.core.population: the incremental pool against a brute-force sort, archive, dedupe, seen()."""

from __future__ import annotations

import heapq
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evohpo.core.individual import FAILED, OK, PRUNED, Individual
from evohpo.core.population import Population
from evohpo.core.space import Space

SPACE = Space({"x": (0.0, 1.0), "n": (0, 1000)})


def ind(i: int, loss: float, status: str = OK, **kw) -> Individual:
    return Individual(id=f"r-{i}", params={"x": i / 1e6, "n": i % 1001}, loss=loss, status=status, **kw)


def order(i: Individual) -> tuple:
    """The reference ranking: trainings that ran to their end by loss, then pruned ones by step reached (higher
    first), then by loss; ties by id."""
    return (i.status != OK, -(i.step or 0) if i.status != OK else 0, i.loss, i.id)


class Model:
    """The brute-force reference: active ids with their ``order``, sorted in full on every query."""

    def __init__(self, pool_size: int) -> None:
        self.pool_size = pool_size
        self.archive: dict[str, Individual] = {}
        self.active: dict[str, tuple[float, int]] = {}
        self.seq = 0
        self.failed = 0

    def _activate(self, i: Individual) -> None:
        self.seq += 1
        self.active[i.id] = order(i)  # equal losses: by id, whatever the arrival order

    def add(self, i: Individual, active: bool) -> bool:
        if i.id in self.archive:
            return False
        self.archive[i.id] = i
        self.failed += i.status == FAILED
        if active and i.status in (OK, PRUNED) and math.isfinite(i.loss):
            self._activate(i)
        return True

    def activate(self, ind_id: str) -> bool:
        i = self.archive.get(ind_id)
        if i is None or ind_id in self.active or not i.breeds:
            return False
        self._activate(i)
        return True

    def deactivate(self, ind_id: str) -> bool:
        return self.active.pop(ind_id, None) is not None

    def pool(self) -> list[str]:
        # a full sort by (loss, id) would do; nsmallest is the same order, and cheaper for long runs
        return heapq.nsmallest(self.pool_size, self.active, key=lambda k: self.active[k])

    def worst(self) -> str | None:
        return max(self.active, key=lambda k: self.active[k]) if self.active else None


def check(pop: Population, model: Model, full: bool = True) -> None:
    pool = pop.pool()
    assert [i.id for i in pool] == model.pool()
    assert [order(i) for i in pool] == sorted(order(i) for i in pool)
    assert all(pop.is_active(i.id) and i.breeds for i in pool)
    expected_worst = model.worst()
    assert (pop.worst().id if pop.worst() else None) == expected_worst
    first = model.archive[model.pool()[0]] if model.active else None
    assert (pop.best().id if pop.best() else None) == (first.id if first is not None and first.ok else None)
    assert pop.n_active == len(model.active)
    assert len(pop) == len(model.archive)
    assert pop.n_failed == model.failed
    if full:
        assert {i.id for i in pop} == set(model.archive)


# operations: ("add", loss-code, status, active, step) | ("deactivate", pick) | ("activate", pick) | ("worst",)
LOSSES = st.one_of(st.integers(0, 12).map(float), st.floats(-1e6, 1e6), st.sampled_from([math.inf, math.nan]))
OPS = st.one_of(
    st.tuples(st.just("add"), LOSSES, st.sampled_from([OK, OK, OK, FAILED, PRUNED]), st.booleans(),
              st.sampled_from([None, 1, 3, 9])),
    st.tuples(st.just("readd"), st.integers(0, 10**6), LOSSES),
    st.tuples(st.just("deactivate"), st.integers(0, 10**6)),
    st.tuples(st.just("deactivate-pool"), st.integers(0, 10**6)),
    st.tuples(st.just("activate"), st.integers(0, 10**6)),
    st.tuples(st.just("activate-inactive"), st.integers(0, 10**6)),
    st.tuples(st.just("worst")),
)


def apply(pop: Population, model: Model, op: tuple, counter: list[int], full: bool = True) -> None:
    kind = op[0]
    ids = list(model.archive)
    if kind == "add":
        _, loss, status, active, step = op
        counter[0] += 1
        i = ind(counter[0], loss, status, step=step)
        assert pop.add(i, active=active) == model.add(i, active)
    elif kind == "readd" and ids:  # a duplicate id (a peer's message seen twice): ignored, even with a new loss
        _, pick, loss = op
        old = model.archive[ids[pick % len(ids)]]
        dup = Individual(id=old.id, params=old.params, loss=loss)
        assert pop.add(dup) is False and model.add(dup, True) is False
        assert pop.get(old.id) is old
    elif kind in ("deactivate", "activate") and ids:
        target = ids[op[1] % len(ids)]
        assert getattr(pop, kind)(target) == getattr(model, kind)(target)
    elif kind == "deactivate-pool" and model.active:  # churn where it matters: the pool itself
        pool = model.pool()
        target = pool[op[1] % len(pool)]
        assert pop.deactivate(target) and model.deactivate(target)
    elif kind == "activate-inactive":  # bring back one that left (an emigrant returning)
        inactive = [k for k, i in model.archive.items() if i.breeds and k not in model.active]
        if inactive:
            target = inactive[op[1] % len(inactive)]
            assert pop.activate(target) and model.activate(target)
    elif kind == "worst":
        pop.worst()  # queries pop stale heap entries; must not change the answer
    check(pop, model, full)


@settings(max_examples=200, deadline=None)
@given(pool_size=st.integers(1, 6), ops=st.lists(OPS, max_size=80))
def test_pool_matches_brute_force(pool_size, ops) -> None:
    pop, model, counter = Population(SPACE, pool_size), Model(pool_size), [0]
    check(pop, model)
    for op in ops:
        apply(pop, model, op, counter)


@pytest.mark.parametrize("seed", range(3))
def test_pool_matches_brute_force_long_random_sequences(seed) -> None:
    """Long seeded sequences (thousands of steps, many stale heap entries) with heavy churn."""
    rnd = random.Random(seed)
    pool_size = rnd.choice([1, 3, 8, 16])
    pop, model, counter = Population(SPACE, pool_size), Model(pool_size), [0]
    for step in range(2000):
        r = rnd.random()
        if r < 0.45:
            op = ("add", float(rnd.randint(0, 50)) if rnd.random() < 0.5 else rnd.gauss(0, 10),
                  rnd.choice([FAILED, PRUNED, PRUNED, OK, OK, OK, OK, OK]), rnd.random() < 0.9,
                  rnd.choice([None, 1, 3]))
        elif r < 0.55:
            op = ("deactivate", rnd.randrange(10**6))
        elif r < 0.7:
            op = ("deactivate-pool", rnd.randrange(10**6))
        elif r < 0.8:
            op = ("activate", rnd.randrange(10**6))
        elif r < 0.9:
            op = ("activate-inactive", rnd.randrange(10**6))
        elif r < 0.95:
            op = ("readd", rnd.randrange(10**6), 0.0)
        else:
            op = ("worst",)
        apply(pop, model, op, counter, full=step % 100 == 0)
    assert len(model.archive) > 700


def test_reactivated_individual_is_not_pulled_twice_from_stale_entries() -> None:
    """Leave and come back while outside the pool, then empty the pool: the stale entry must not count."""
    pop = Population(SPACE, pool_size=2)
    for i, loss in enumerate([1.0, 2.0, 3.0, 3.0, 9.0]):
        pop.add(ind(i, loss))
    assert pop.deactivate("r-2") and pop.activate("r-2")  # r-2 now arrived after r-3 (same loss): still first
    assert pop.deactivate("r-0")
    assert [i.id for i in pop.pool()] == ["r-1", "r-2"]
    assert pop.deactivate("r-1")
    assert [i.id for i in pop.pool()] == ["r-2", "r-3"]
    assert pop.deactivate("r-2")
    assert [i.id for i in pop.pool()] == ["r-3", "r-4"]
    assert pop.n_active == 2


def test_deactivating_pool_members_refills_from_the_rest() -> None:
    pop = Population(SPACE, pool_size=3)
    for i, loss in enumerate([5.0, 1.0, 4.0, 2.0, 3.0]):
        pop.add(ind(i, loss))
    assert [i.loss for i in pop.pool()] == [1.0, 2.0, 3.0]
    assert pop.deactivate("r-1") and not pop.deactivate("r-1")
    assert [i.loss for i in pop.pool()] == [2.0, 3.0, 4.0]
    assert pop.activate("r-1") and not pop.activate("r-1")
    assert [i.loss for i in pop.pool()] == [1.0, 2.0, 3.0]
    assert pop.worst().loss == 5.0
    assert pop.deactivate("r-0")
    assert pop.worst().loss == 4.0
    assert not pop.activate("nope") and not pop.deactivate("nope")


def test_failed_individuals_are_archived_and_counted_but_never_in_the_pool() -> None:
    pop = Population(SPACE, pool_size=10)
    bad = [ind(1, math.inf, FAILED, error="boom"), ind(2, math.nan, FAILED), ind(3, math.inf, FAILED)]
    for b in bad:
        assert pop.add(b)
    pop.add(ind(4, 7.0))
    pop.add(ind(5, math.nan))  # status ok but a NaN loss: not usable for breeding either
    pop.add(ind(6, math.inf))
    assert pop.n_failed == 3 and len(pop) == 6
    assert [i.id for i in pop.pool()] == ["r-4"]
    assert pop.worst().id == "r-4" and pop.best().id == "r-4"
    assert pop.get("r-1").error == "boom" and "r-1" in pop
    assert not any(pop.activate(f"r-{k}") for k in (1, 2, 3, 5, 6))
    assert [i.id for i in pop.pool()] == ["r-4"]


def test_inactive_add_is_archived_only() -> None:
    pop = Population(SPACE, pool_size=4)
    pop.add(ind(1, 1.0), active=False)
    assert pop.pool() == [] and pop.best() is None and pop.worst() is None and len(pop) == 1
    assert not pop.is_active("r-1") and pop.activate("r-1")
    assert [i.id for i in pop.pool()] == ["r-1"]


def test_duplicates_by_id_are_ignored() -> None:
    pop = Population(SPACE, pool_size=4)
    first = ind(1, 3.0)
    assert pop.add(first)
    assert not pop.add(Individual(id="r-1", params={"x": 0.9, "n": 9}, loss=0.0))
    assert not pop.add(Individual(id="r-1", params=first.params, loss=math.inf, status=FAILED))
    assert len(pop) == 1 and pop.n_failed == 0 and pop.n_active == 1
    assert pop.get("r-1") is first and [i.loss for i in pop.pool()] == [3.0]
    assert not pop.seen({"x": 0.9, "n": 9})  # the ignored duplicate's configuration was not recorded


def test_seen_covers_evaluated_reserved_and_failed() -> None:
    pop = Population(SPACE, pool_size=2)
    a, b, c = {"x": 0.1, "n": 1}, {"x": 0.2, "n": 2}, {"x": 0.3, "n": 3}
    assert not pop.seen(a)
    pop.reserve(a)  # in flight on this worker
    assert pop.seen(a) and pop.seen({"n": 1, "x": 0.1})
    pop.release(a)
    assert not pop.seen(a)
    pop.reserve(b)
    pop.add(Individual(id="w-1", params=b, loss=1.0))
    pop.release(b)
    assert pop.seen(b)  # evaluated stays seen after release
    pop.add(Individual(id="w-2", params=c, loss=math.inf, status=FAILED))
    assert pop.seen(c)  # a failed configuration is not retried
    pop.add(Individual(id="peer-9", params={"x": 0.4, "n": 4}, loss=0.5), active=False)
    assert pop.seen({"x": 0.4, "n": 4})
    pop.release({"x": 0.5, "n": 5})  # releasing an unknown configuration is harmless
    assert not pop.seen({"x": 0.5, "n": 5})


def test_pool_size_validated() -> None:
    with pytest.raises(ValueError, match="pool_size=0"):
        Population(SPACE, pool_size=0)
