"""Tests for evohpo.core.evolver: the ask/tell core of one island, without MPI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from evohpo.core.evolver import Evolver, SpaceExhausted
from evohpo.core.individual import FAILED, OK, PRUNED, Individual
from evohpo.core.propagators import GridSearch
from evohpo.core.space import Choice, Float, Int, Space

CONT = {"x": (-5.0, 5.0), "y": (-5.0, 5.0), "lr": Float(1e-4, 1.0, log=True)}
SMALL = {"a": ("u", "v", "w"), "b": (0, 3), "c": Choice([1, 2, 4, 8, 16])}  # 3 x 4 x 5 = 60 configurations


def sphere(p) -> float:
    return float(p["x"] ** 2 + p["y"] ** 2 + math.log10(p["lr"]) ** 2)


def loss_small(p) -> float:
    return "uvw".index(p["a"]) + abs(p["b"] - 2) + abs(math.log2(p["c"]) - 3)


def run(ev: Evolver, n: int, fn=sphere) -> list[dict]:
    asked = []
    for _ in range(n):
        p = ev.ask()
        asked.append(dict(p))
        ev.tell(p, fn(p))
    return asked


def test_ask_tell_loop() -> None:
    ev = Evolver(CONT, pop_size=8, seed=0, name="w3", island=2, rank=3)
    space = Space(CONT)
    losses = []
    for g in range(300):
        p = ev.ask()
        assert space.contains(p)
        assert ev.pending_id(p) == (f"w3-{g}", g)
        ind = ev.tell(p, sphere(p))
        losses.append(ind.loss)
        assert (ind.id, ind.generation, ind.status, ind.island, ind.rank) == (f"w3-{g}", g, OK, 2, 3)
        assert ind.params == p and ind.error is None and ind.start <= ind.end
    assert ev.generation == 300 and len(ev.population) == 300
    assert ev.best()[0].loss == min(losses)
    assert [i.loss for i in ev.best(8)] == sorted(losses)[:8]
    # it does optimize: the best of the last 100 beats the best of the first 8 (random) ones by far
    assert min(losses[200:]) < 0.1 * min(losses[:8])


def test_discrete_space_is_exhausted_without_repeats() -> None:
    ev = Evolver(SMALL, pop_size=4, seed=1)
    asked = run(ev, 60, loss_small)
    keys = {Space(SMALL).key(p) for p in asked}
    assert len(keys) == 60 == len(list(Space(SMALL).grid()))
    with pytest.raises(SpaceExhausted, match="60"):
        ev.ask()


def test_in_flight_configurations_count_as_seen() -> None:
    ev = Evolver(SMALL, pop_size=4, seed=2)
    asked = [ev.ask() for _ in range(60)]  # none told yet
    assert len({Space(SMALL).key(p) for p in asked}) == 60
    with pytest.raises(SpaceExhausted):
        ev.ask()
    ev.tell(asked[7], 1.0)  # telling does not free a configuration for another ask
    with pytest.raises(SpaceExhausted):
        ev.ask()


def test_log_int_space_is_fully_enumerated() -> None:
    """A log Int of 100 values: every integer is asked once before SpaceExhausted (not a log grid of them)."""
    ev = Evolver({"n": Int(1, 100, log=True)}, pop_size=4, seed=0)
    asked = run(ev, 100, lambda p: float(p["n"]))
    assert sorted(p["n"] for p in asked) == list(range(1, 101))
    with pytest.raises(SpaceExhausted):
        ev.ask()


def test_continuous_space_never_repeats() -> None:
    ev = Evolver(CONT, pop_size=8, seed=3)
    asked = run(ev, 2000)
    assert len({Space(CONT).key(p) for p in asked}) == 2000


def test_repeats_are_avoided_when_breeding_produces_duplicates() -> None:
    """Low-resolution discrete space with strong selection: the GA proposes many duplicates; none is asked."""
    space = {"a": (0, 9), "b": (0, 9)}
    ev = Evolver(space, pop_size=2, seed=4)
    asked = run(ev, 100, lambda p: float(p["a"] + p["b"]))
    assert len({(p["a"], p["b"]) for p in asked}) == 100


def test_tell_of_a_config_not_asked_raises() -> None:
    ev = Evolver(CONT, seed=5)
    with pytest.raises(ValueError, match="not asked"):
        ev.tell({"x": 0.0, "y": 0.0, "lr": 0.1}, 1.0)
    p = ev.ask()
    ev.tell(p, 1.0)
    with pytest.raises(ValueError, match="not asked"):
        ev.tell(p, 1.0)  # twice
    assert len(ev.population) == 1


def test_tell_with_a_loss_that_is_not_a_number_keeps_the_configuration_pending() -> None:
    ev = Evolver(CONT, seed=13)
    p = ev.ask()
    with pytest.raises((TypeError, ValueError)):
        ev.tell(p, None)  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError)):
        ev.tell(p, "abc")  # type: ignore[arg-type]
    assert ev.population.seen(p) and len(ev.population) == 0
    assert ev.tell(p, 2.0).loss == 2.0  # the caller can still report it


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_loss_fails(bad) -> None:
    ev = Evolver(CONT, seed=6)
    p = ev.ask()
    ind = ev.tell(p, bad)
    assert ind.status == FAILED and ind.loss == math.inf and not ind.ok
    assert repr(bad) in ind.error
    assert ev.population.n_failed == 1 and ev.best() == []
    assert ev.population.seen(p)  # not retried


def test_error_fails_and_keeps_text() -> None:
    ev = Evolver(CONT, seed=7)
    p = ev.ask()
    text = "Traceback ...\nRuntimeError: CUDA out of memory"
    ind = ev.tell(p, 0.5, error=text)
    assert ind.status == FAILED and ind.loss == math.inf and ind.error == text
    assert ev.population.get(ind.id).error == text
    q = ev.ask()
    pruned = ev.tell(q, 0.2, status=PRUNED, step=3)
    # a pruned training keeps its last value and may breed, but is never the best (it did not run to its end)
    assert pruned.status == PRUNED and pruned.loss == 0.2 and pruned.step == 3 and ev.best() == []
    assert [i.id for i in ev.population.pool()] == [pruned.id]
    assert ev.population.n_failed == 1


def test_same_seed_same_asks() -> None:
    a = run(Evolver(CONT, pop_size=6, seed=11), 200)
    b = run(Evolver(CONT, pop_size=6, seed=11), 200)
    c = run(Evolver(CONT, pop_size=6, seed=12), 200)
    assert a == b
    assert a != c
    d = run(Evolver(CONT, pop_size=6, seed=np.random.SeedSequence([11, 0])), 50)
    e = run(Evolver(CONT, pop_size=6, seed=np.random.SeedSequence([11, 0])), 50)
    assert d == e


@pytest.mark.parametrize("with_grid", [False, True])
def test_state_dict_round_trip_continues_identically(with_grid) -> None:
    def make(seed):
        prop = GridSearch(Space(SMALL), stride=1) if with_grid else None  # 60 points: never used up here
        return Evolver(SMALL if with_grid else CONT, propagator=prop, pop_size=5, seed=seed, name="r1")

    fn = loss_small if with_grid else sphere
    a = make(21)
    run(a, 17, fn)
    p = a.ask()  # one failed evaluation and one inactive individual are in the state too
    a.tell(p, math.nan)
    a.population.deactivate(a.best()[0].id)
    state = a.state_dict()
    text = json.dumps(state)  # JSON-ready
    b = make(999)
    b.load_state_dict(json.loads(text))
    assert b.generation == a.generation
    assert [i.id for i in b.population] == [i.id for i in a.population]
    assert [i.id for i in b.best(5)] == [i.id for i in a.best(5)]
    assert b.population.n_failed == a.population.n_failed == 1
    assert b.population.n_active == a.population.n_active
    ids_a, ids_b = [], []
    for _ in range(20):
        pa, pb = a.ask(), b.ask()
        assert pa == pb
        ids_a.append(a.tell(pa, fn(pa)).id)
        ids_b.append(b.tell(pb, fn(pb)).id)
    assert ids_a == ids_b


def test_state_dict_without_population() -> None:
    a = Evolver(CONT, seed=8)
    run(a, 10)
    state = a.state_dict(population=False)
    assert "individuals" not in state and json.dumps(state)
    b = Evolver(CONT, seed=0)
    b.load_state_dict(state)
    assert b.generation == 10 and len(b.population) == 0


def test_peers_individuals_enter_the_pool_and_steer_breeding() -> None:
    space = Space({f"x{i}": (0.0, 1.0) for i in range(3)})
    ev = Evolver(space, pop_size=4, seed=9)
    peers = [Individual(id=f"peer-{i}", params={k: 0.9 + 0.01 * i for k in space}, loss=-1.0 - i, rank=5)
             for i in range(4)]
    for ind in peers:
        assert ev.add(ind)
    assert not ev.add(peers[0])  # already known
    assert [i.id for i in ev.best(4)] == ["peer-3", "peer-2", "peer-1", "peer-0"]
    assert ev.add(Individual(id="peer-x", params={k: 0.5 for k in space}, loss=-100.0), active=False)
    assert ev.best()[0].id == "peer-3"  # an inactive individual is archived, not bred from
    # the pool is full of peers near 0.9: children are bred from them (random search would give a median of 0.5)
    xs = [ev.ask()["x0"] for _ in range(100)]
    assert np.median(xs) > 0.85


def test_peers_configurations_are_never_asked() -> None:
    ev = Evolver(SMALL, pop_size=4, seed=10)
    grid = list(Space(SMALL).grid())
    for i, p in enumerate(grid[:-1]):  # a peer evaluated all but the last configuration
        ev.add(Individual(id=f"peer-{i}", params=p, loss=float(i)))
    assert ev.ask() == grid[-1]
    with pytest.raises(SpaceExhausted):
        ev.ask()


def test_requeue_keeps_the_id() -> None:
    ev = Evolver(CONT, seed=12)
    p = {"x": 1.0, "y": 2.0, "lr": 0.01}
    ev.requeue(p, "7-42")
    assert ev.pending_id(p) == ("7-42", 0)
    assert ev.tell(p, 3.0).id == "7-42"
    with pytest.raises(ValueError, match="'x'"):
        ev.requeue({"x": 99.0, "y": 0.0, "lr": 0.01}, "7-43")


def test_ask_or_promote_gives_the_best_pruned_configuration_once_the_space_is_used_up() -> None:
    """Pure: after every configuration of a finite space was told (two pruned), ``ask_or_promote`` asks the pruned one
    that went furthest again, then the other, then raises SpaceExhausted saying how many; a withdrawn one is not
    counted."""
    ev = Evolver({"k": ["a", "b", "c"]}, pop_size=4, seed=0)
    for _ in range(3):
        p = ev.ask()
        step, status = {"a": (None, None), "b": (1, PRUNED), "c": (2, PRUNED)}[p["k"]]
        ev.tell(p, {"a": 0.5, "b": 0.1, "c": 0.9}[p["k"]], status=status, step=step)
    first = ev.ask_or_promote()
    assert first == {"k": "c"} and ev.promoted == 1  # step 2 beats step 1, whatever the loss
    ev.withdraw(first)
    assert ev.promoted == 0 and ev.ask_or_promote() == {"k": "c"}
    ev.tell({"k": "c"}, 0.3)
    assert ev.ask_or_promote() == {"k": "b"}
    ev.tell({"k": "b"}, 0.2)
    with pytest.raises(SpaceExhausted, match="then 2 pruned ones were trained to their end"):
        ev.ask_or_promote()
