"""Edge cases of the space and of the propagator factories' arguments: boolean choices, reversed ranges,
every argument validated under its own name."""

from __future__ import annotations

import json

import numpy as np
import pytest

import evohpo
from evohpo.core.evolver import Evolver, SpaceExhausted
from evohpo.core.propagators import AdaptiveGA, GridSearch, default_propagator, grid_search
from evohpo.core.space import Choice, Float, Int, Space, as_param
from evohpo.journal.reader import read_records

# --- booleans as categorical values ---------------------------------------------------------------------------


def test_a_choice_of_bools_holds_bools_and_tells_them_from_ints() -> None:
    c = Choice([True, np.bool_(False)])
    assert c.values == (True, False) and all(type(v) is bool for v in c.values)
    assert not c.ordered
    assert c.contains(True) and c.contains(False) and c.contains(np.bool_(True))
    assert not c.contains(1) and not c.contains(0) and not c.contains("True")
    rng = np.random.default_rng(0)
    assert {type(c.sample(rng)) for _ in range(20)} == {bool}
    assert c.neighbour(True, rng) is False
    assert c.clip(True) is True
    with pytest.raises(ValueError, match="1"):
        c.clip(1)
    assert Choice([0, 1]) != Choice([False, True]) and Choice([1, 2]).contains(1) and not Choice([1, 2]).contains(True)
    assert as_param((True, False)) == as_param([True, False]) == c
    assert Space({"a": [True, False]}) != Space({"a": [1, 0]}) and Space({"a": (True, False)}) == Space({"a": c})


@pytest.mark.parametrize("values,words", [
    ([1, True], ["True", "1", "bool", "int"]),
    ([True, 0.5], ["True", "bool", "float"]),
    ([True, "yes"], ["True", "bool", "str"]),
    ([True, True], ["distinct", "True"]),
])
def test_bools_mixed_with_other_values_are_refused(values, words) -> None:
    with pytest.raises((TypeError, ValueError)) as e:
        Choice(values)
    for w in words:
        assert w in str(e.value)


def test_bool_choices_round_trip_through_the_description_and_the_journal(tmp_path) -> None:
    space = Space({"flag": [True, False], "n": [0, 1], "x": (0.0, 1.0)})
    desc = json.loads(json.dumps(space.describe()))
    assert desc["flag"]["values"] == [True, False]
    back = Space.from_description(desc)
    assert back == space and all(type(v) is bool for v in back["flag"].values)

    def loss(p):
        assert type(p["flag"]) is bool and type(p["n"]) is int
        return p["x"] + p["flag"]

    kw = {"propagator": "random", "seed": 1, "comm": None, "checkpoint": tmp_path, "progress_interval": 1e9}
    evohpo.optimize(loss, space, generations=12, **kw)
    starts = [r for r in read_records(tmp_path) if r["ev"] == "start"]  # JSON true / false
    assert len(starts) == 12 and all(type(r["params"]["flag"]) is bool for r in starts)
    r = evohpo.optimize(loss, space, generations=20, **kw)  # resumed: the restored values are bools again
    assert r.resumed == 12 and r.n_evaluations == 8
    assert all(type(i.params["flag"]) is bool for i in r.archive)


def test_bool_and_int_choices_do_not_collide_in_the_evolver() -> None:
    space = Space({"flag": [False, True], "n": [0, 1]})  # 4 configurations: False == 0 must not merge them
    assert len(list(space.grid())) == space.grid_size() == 4
    ev = Evolver(space, pop_size=2, seed=3)
    seen = []
    for _ in range(4):
        p = ev.ask()
        seen.append((p["flag"], p["n"]))
        ev.tell(p, 0.0)
    assert len(set(seen)) == 4 and {type(f) for f, _ in seen} == {bool}
    with pytest.raises(SpaceExhausted):
        ev.ask()


# --- reversed ranges ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec,hint", [((0.01, 0.0001), "write (0.0001, 0.01)"), ((10, 1), "write (1, 10)")])
def test_a_reversed_propulate_range_says_how_to_write_it(spec, hint) -> None:
    with pytest.raises(ValueError) as e:
        Space({"lr": spec})
    assert "'lr'" in str(e.value) and hint in str(e.value)


def test_a_reversed_float_or_int_names_its_bounds() -> None:
    with pytest.raises(ValueError, match=r"write Float\(0.0001, 0.01\)"):
        Float(0.01, 0.0001)
    with pytest.raises(ValueError, match=r"write Int\(1, 10, log=True\)"):
        Int(10, 1, log=True)
    with pytest.raises(ValueError, match="low < high"):
        Float(1.0, 1.0)


# --- every argument under its own name ------------------------------------------------------------------------

SPACE = Space({"x": (0.0, 1.0), "c": ["a", "b"]})


@pytest.mark.parametrize("kwargs,name", [
    ({"crossover_prob": 2.0}, "crossover_prob=2.0"),
    ({"mutation_prob": -0.1}, "mutation_prob=-0.1"),
    ({"random_init_prob": 1.5}, "random_init_prob=1.5"),
    ({"crossover_prob": "0.5"}, "crossover_prob='0.5'"),
    ({"mutation_prob": float("nan")}, "mutation_prob=nan"),
    ({"tournament_size": 0}, "tournament_size=0"),
    ({"tournament_size": 2.5}, "tournament_size=2.5"),
    ({"sigma_factor": 0.0}, "sigma_factor=0.0"),
    ({"sigma_min": 1.0}, "sigma_min=1.0"),
    ({"fine_prob": 3}, "fine_prob=3"),
    ({"pop_size": 0}, "pop_size=0"),
])
def test_default_propagator_names_the_bad_argument(kwargs, name) -> None:
    kw = {"pop_size": 4, **kwargs}
    with pytest.raises((TypeError, ValueError)) as e:
        default_propagator(SPACE, **kw)
    assert name in str(e.value)


@pytest.mark.parametrize("make,name", [
    (lambda: AdaptiveGA(SPACE, 4, crossover_prob=2.0), "crossover_prob=2.0"),
    (lambda: AdaptiveGA(SPACE, 4, scale=0.0), "scale=0.0"),
    (lambda: AdaptiveGA(SPACE, 4, scale=float("inf")), "scale=inf"),
    (lambda: grid_search(SPACE, points=0), "points=0"),
    (lambda: grid_search(SPACE, offset=1.0, stride=2), "offset=1.0"),
    (lambda: GridSearch(SPACE, stride=True), "stride=True"),
])
def test_other_factories_name_the_bad_argument(make, name) -> None:
    with pytest.raises((TypeError, ValueError)) as e:
        make()
    assert name in str(e.value)
