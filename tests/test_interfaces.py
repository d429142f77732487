"""The explicit interfaces: Propagator (hooks with no-op defaults), the strategies registry, Callback, the
record kinds, the checkpoint directory's lock, and what ``import`` loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import evohpo
from evohpo import Callback, Choice, Evolver, Float, Int, Propagator, SearchInfo
from evohpo.core.cma import CMAES
from evohpo.core.guided import ModelGuided
from evohpo.core.propagators import Compose, Conditional, GridSearch, Portfolio, RandomInit, as_propagator
from evohpo.core.space import Space
from evohpo.core.strategies import STRATEGIES, make_propagator
from evohpo.journal import records
from evohpo.journal.directory import CheckpointInUse, DirectoryLock
from evohpo.journal.records import Event
from evohpo.journal.restore import restore
from evohpo.journal.writer import Journal

SPACE = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})


def loss(p: dict) -> float:
    return (p["x"] - 0.3) ** 2 + (p["y"] - 0.7) ** 2


class Counting(Propagator):
    """Only ``__call__``: every hook keeps its default."""

    def __call__(self, parents, rng):
        return [SPACE.sample(rng)]


class Remembering(Propagator):
    """Feedback and state of its own."""

    def __init__(self) -> None:
        self.feedback_seen: list[bool] = []
        self.calls = 0

    def __call__(self, parents, rng):
        self.calls += 1
        return [SPACE.sample(rng)]

    def feedback(self, params, success) -> None:
        self.feedback_seen.append(success)

    def state_dict(self) -> dict[str, Any]:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.calls = state["calls"]


# --- Propagator ---------------------------------------------------------------------------------------------
def test_a_propagator_needs_only_call_and_its_hooks_are_called_without_probing() -> None:
    ev = Evolver(SPACE, Counting(), pop_size=4, seed=0)
    for _ in range(10):
        p = ev.ask()
        ev.tell(p, loss(p))
    assert "propagator" not in ev.state_dict()  # no state: nothing written
    rem = Remembering()
    ev = Evolver(SPACE, rem, pop_size=4, seed=0)
    for _ in range(10):
        p = ev.ask()
        ev.tell(p, loss(p))
    assert len(rem.feedback_seen) == 10 and any(rem.feedback_seen)
    state = ev.state_dict(population=False)
    assert state["propagator"] == {"calls": rem.calls}
    again = Evolver(SPACE, Remembering(), pop_size=4, seed=1)
    again.load_state_dict(state)
    assert again.propagator.calls == rem.calls


def test_a_function_is_a_propagator_and_anything_else_is_refused() -> None:
    def breed(parents, rng):
        return [dict(parents[0]) if parents else SPACE.sample(rng)]

    prop = as_propagator(breed)
    assert isinstance(prop, Propagator) and prop.state_dict() == {} and as_propagator(prop) is prop
    with pytest.raises(TypeError, match="propagator=3"):
        as_propagator(3)  # type: ignore[arg-type]


def test_combinators_forward_feedback_and_keep_the_state_of_their_parts() -> None:
    inner = Remembering()
    grid = GridSearch(SPACE, points=3)
    comp = Conditional(1, Compose(grid, inner), RandomInit(SPACE))
    rng = np.random.default_rng(0)
    for _ in range(4):
        comp([{"x": 0.5, "y": 0.5}], rng)
    comp.feedback({"x": 0.5, "y": 0.5}, True)
    assert inner.feedback_seen == [True]
    state = comp.state_dict()
    assert state == {"then": {"0": {"cursor": 4, "offset": 0, "stride": 1}, "1": {"calls": 4}}}
    fresh_inner, fresh_grid = Remembering(), GridSearch(SPACE, points=3)
    Conditional(1, Compose(fresh_grid, fresh_inner), RandomInit(SPACE)).load_state_dict(state)
    assert fresh_grid.cursor == 4 and fresh_inner.calls == 4
    port = Portfolio([Remembering(), GridSearch(SPACE, points=3)])
    port([], rng)
    assert set(port.state_dict()) == {"rates", "strategies"}
    port.load_state_dict({"rates": [0.5, 0.5]})  # a 0.1.0 state (rates only) still loads


def test_the_pool_a_propagator_asks_for_is_what_the_evolver_hands_it() -> None:
    assert Evolver(SPACE, Counting(), pop_size=8).pool_size == 8
    assert Evolver(SPACE, ModelGuided(SPACE, 8), pop_size=8).pool_size == 64
    assert Evolver(SPACE, ModelGuided(SPACE, 8, pool_size=4), pop_size=8).pool_size == 8  # never below pop_size
    assert Evolver(SPACE, Compose(ModelGuided(SPACE, 8)), pop_size=8).pool_size == 64  # asked for by a part


def test_every_named_strategy_builds_and_unknown_names_are_listed() -> None:
    rng = np.random.default_rng(0)
    for name in STRATEGIES:
        prop = make_propagator(name, SPACE, 8, worker=1, workers=3)
        assert isinstance(prop, Propagator) and prop([], rng)
    assert make_propagator("grid", SPACE, 8, worker=1, workers=3).cursor == 1  # the grid is split by worker
    # the default, a rule on the space: CMA-ES where every parameter is a float, else the GA and CMA-ES
    assert isinstance(make_propagator(None, SPACE, 8), CMAES)
    for other in ({**SPACE, "n": Int(1, 4)}, {**SPACE, "act": Choice(["relu", "tanh"])}, {"n": Int(1, 4)}):
        default = make_propagator(None, Space(other), 8)
        assert isinstance(default, Portfolio), other
        assert [type(s).__name__ for s in default.strategies] == ["Conditional", "CMAES"]
    with pytest.raises(ValueError, match=r"propagator='gaa' must be one of \('ga', 'plain-ga'"):
        make_propagator("gaa", SPACE, 8)


# --- Callback -----------------------------------------------------------------------------------------------
class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[Any] = []

    def on_start(self, search: SearchInfo) -> None:
        self.events.append(("start", search))

    def on_result(self, individual) -> None:
        self.events.append(("result", individual.id))

    def on_end(self, result) -> None:
        self.events.append(("end", result))


def test_callbacks_get_start_every_result_and_the_end() -> None:
    rec, seen = Recorder(), []
    r = evohpo.optimize(loss, SPACE, generations=12, seed=0, comm=None, callbacks=[rec, seen.append])
    kinds = [e[0] for e in rec.events]
    assert kinds == ["start"] + ["result"] * 12 + ["end"]
    info = rec.events[0][1]
    assert (info.rank, info.size, info.island, info.island_rank, info.checkpoint) == (0, 1, 0, 0, None)
    assert rec.events[-1][1] is r and [i.id for i in seen] == [e[1] for e in rec.events[1:-1]]


def test_on_end_is_told_when_the_search_fails() -> None:
    rec = Recorder()

    def broken(p):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        evohpo.optimize(broken, SPACE, generations=5, comm=None, on_error="raise", callbacks=[rec])
    assert [e[0] for e in rec.events] == ["start", "end"] and rec.events[-1][1] is None


@pytest.mark.parametrize("callbacks, pattern", [([1], r"callbacks\[0\]=1"), (["x"], r"callbacks\[0\]='x'"),
                                                (Recorder(), "must be a list")])
def test_a_bad_callback_is_refused_before_any_evaluation(callbacks, pattern) -> None:
    calls = []
    with pytest.raises(ValueError, match=pattern):
        evohpo.optimize(lambda p: calls.append(p) or 0.0, SPACE, generations=5, comm=None, callbacks=callbacks)
    assert calls == []


# --- records and the directory ------------------------------------------------------------------------------
def test_every_record_kind_is_built_in_one_place_and_read_back(tmp_path: Path) -> None:
    ev = Evolver(SPACE, pop_size=4, seed=0, name="0")
    p = ev.ask()
    ind_id, gen = ev.pending_id(p)
    ind = ev.tell(p, 0.25)
    with Journal(tmp_path, 0) as j:
        j.write(records.start(ind_id, p, 0, gen, 1.0))
        j.write(records.end(ind))
        j.write(records.state(0, 1, ev.state_dict(population=False), 2.0))
        j.write(records.migrate(ind_id, 0, 1, 1, "migrate", 3.0))
        j.write(records.done("budget reached", 1, 4.0))
    kinds = [line.split('"ev":"')[1].split('"')[0] for line in (tmp_path / "journal-r0000.jsonl").read_text()
             .splitlines()]
    assert kinds == [Event.START, Event.END, Event.STATE, Event.MIGRATE, Event.DONE]
    r = restore(tmp_path)
    assert [(i.id, i.loss, i.island, i.params) for i in r.individuals] == [(ind_id, 0.25, 1, p)]
    assert r.hops == {ind_id: 1} and r.ran_on == {ind_id: 0}
    assert records.evolver_state(r.states[0]) == ev.state_dict(population=False)


def test_the_directory_stays_locked_for_the_whole_search(tmp_path: Path) -> None:
    tried: list[bool] = []

    def probe(ind) -> None:  # another search trying the directory while this one runs
        with pytest.raises(CheckpointInUse):
            DirectoryLock(tmp_path).acquire()
        tried.append(True)

    evohpo.optimize(loss, SPACE, generations=3, comm=None, checkpoint=tmp_path, callbacks=[probe])
    assert tried == [True] * 3
    with DirectoryLock(tmp_path):  # free again after the search
        pass


def test_imports_stay_light() -> None:
    code = ("import sys, evohpo, evohpo.journal.finished, evohpo.testing.functions as f; "
            "heavy = [m for m in ('torch', 'mpi4py', 'evohpo.api') if m in sys.modules]; "
            "import evohpo.journal.finished as g; print(heavy, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] True"  # numpy for the test functions only
    code = "import sys, evohpo.journal.finished; print(sorted(m for m in sys.modules if m in ('numpy', 'mpi4py')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_propagator_observes_every_result_of_its_island_once() -> None:
    class Observing(Counting):
        def __init__(self) -> None:
            self.seen: list[str] = []

        def observe(self, individual) -> None:
            self.seen.append(individual.id)

    prop = Observing()
    ev = Evolver(SPACE, prop, pop_size=4, seed=0, name="0")
    p = ev.ask()
    ev.tell(p, loss(p))
    peer = evohpo.Individual(id="1-0", params={"x": 0.1, "y": 0.2}, loss=0.5)
    assert ev.add(peer) and not ev.add(peer)  # a peer's result, then the same again (not observed twice)
    assert prop.seen == ["0-0", "1-0"]
    comp = Compose(Observing(), Observing())
    Evolver(SPACE, Conditional(1, comp, RandomInit(SPACE)), pop_size=4).add(peer)
    assert [s.seen for s in comp.steps] == [["1-0"], ["1-0"]]  # combinators pass it on
