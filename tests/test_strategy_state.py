"""Every named strategy's state goes through the journal and comes back as it was: a resumed search continues it."""

from __future__ import annotations

import json

import pytest

import evohpo
from evohpo import Choice, Float, Int
from evohpo.core.space import Space
from evohpo.core.strategies import STRATEGIES, make_propagator
from evohpo.journal.reader import read_records

SPACE = {"x": Float(-2.0, 2.0), "lr": Float(1e-4, 1e-1, log=True), "n": Int(1, 6), "b": Choice([16, 32, 64]),
         "act": Choice(["relu", "tanh"])}


def loss(p: dict) -> float:
    return p["x"] ** 2 + (p["n"] - 3) ** 2 / 10 + (p["b"] != 32) + (p["act"] == "tanh")


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_strategys_state_round_trips_through_the_journal(name: str, tmp_path) -> None:
    kw = {"propagator": name, "seed": 3, "comm": None, "checkpoint": tmp_path, "progress_interval": 1e9}
    evohpo.optimize(loss, SPACE, generations=40, **kw)
    states = [r for r in read_records(tmp_path) if r["ev"] == "state"]
    saved = states[-1].get("propagator", {})
    prop = make_propagator(name, Space(SPACE), 8)
    prop.load_state_dict(json.loads(json.dumps(saved)))
    assert json.loads(json.dumps(prop.state_dict())) == saved
    if name in ("auto", "cmaes", "ga+cmaes", "pso", "nelder-mead", "grid"):
        assert saved, f"{name} wrote no state"
    r = evohpo.optimize(loss, SPACE, generations=60, **kw)
    assert (r.resumed, r.n_evaluations, r.reason) == (40, 20, "budget reached")


def test_a_resumed_search_keeps_its_strategy_unless_told_otherwise(tmp_path) -> None:
    kw = {"seed": 1, "comm": None, "checkpoint": tmp_path, "progress_interval": 1e9}
    evohpo.optimize(loss, SPACE, generations=20, propagator="pso", **kw)
    evohpo.optimize(loss, SPACE, generations=30, **kw)  # no propagator given: the search's own
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["strategy"] == "pso"
    states = [r for r in read_records(tmp_path) if r["ev"] == "state"]
    assert set(states[-1]["propagator"]) == set(make_propagator("pso", Space(SPACE), 8).state_dict())
    evohpo.optimize(loss, SPACE, generations=40, propagator="random", **kw)  # told otherwise
    assert json.loads((tmp_path / "meta.json").read_text())["strategy"] == "random"
    fresh = tmp_path / "fresh"
    evohpo.optimize(loss, SPACE, generations=5, seed=1, comm=None, checkpoint=fresh)
    assert json.loads((fresh / "meta.json").read_text())["strategy"] == "auto"  # the default
