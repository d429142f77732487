"""Grid search: split across workers however it is passed, ends by itself when done, needs no budget,
resumes where it stopped; under MPI at 2 ranks every point is evaluated exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import evohpo
from evohpo.core.evolver import Evolver, SpaceExhausted
from evohpo.core.individual import Individual
from evohpo.core.propagators import GridSearch, grid_search
from evohpo.core.space import Space
from evohpo.core.strategies import ends_by_itself, make_propagator

SPACE = Space({"a": ("x", "y", "z"), "b": (0, 4), "c": (0.0, 1.0)})  # 3 x 3 x 3 points with points=3
KEYS = {SPACE.key(p) for p in SPACE.grid(3)}
HERE = Path(__file__).parent
MPIEXEC = Path(sys.executable).parent / "mpiexec"


def drain(ev: Evolver) -> list[dict]:
    """Ask and tell until the grid is done."""
    out = []
    while True:
        try:
            p = ev.ask()
        except SpaceExhausted:
            return out
        ev.tell(p, 0.0)
        out.append(p)


def test_a_used_up_grid_raises_space_exhausted_with_its_size() -> None:
    g, rng = GridSearch(SPACE, points=3), np.random.default_rng(0)
    points = [g([], rng)[0] for _ in range(27)]
    assert [SPACE.key(p) for p in points] == [SPACE.key(p) for p in SPACE.grid(3)]
    with pytest.raises(SpaceExhausted, match="grid done: all 27 points evaluated"):
        g([], rng)
    share = GridSearch(SPACE, points=3, offset=1, stride=2)
    for _ in range(13):
        share([], rng)
    with pytest.raises(SpaceExhausted, match=r"grid done: .*13 .*27"):
        share([], rng)


def test_a_grid_object_is_split_across_workers() -> None:
    grid = grid_search(SPACE, points=3)
    seen: Counter[tuple] = Counter()
    for worker in range(3):
        prop = make_propagator(grid, SPACE, 8, worker=worker, workers=3)
        assert isinstance(prop, GridSearch) and (prop.offset, prop.stride) == (worker, 3)
        seen.update(SPACE.key(p) for p in drain(Evolver(SPACE, prop, pop_size=4, seed=worker)))
    assert set(seen) == KEYS and set(seen.values()) == {1}
    part = GridSearch(SPACE, points=3, offset=1, stride=2)  # a share of its own is divided further
    halves = [make_propagator(part, SPACE, 8, worker=w, workers=2) for w in range(2)]
    assert [(h.offset, h.stride) for h in halves] == [(1, 4), (3, 4)]
    with pytest.raises(ValueError, match=r"GridSearch\(Space.*'z'.* is a grid over another space"):
        make_propagator(GridSearch(Space({"z": (0, 1)})), SPACE, 8)


def test_the_string_form_sets_the_points_and_is_validated() -> None:
    prop = make_propagator("grid:3", SPACE, 8, worker=1, workers=2)
    assert isinstance(prop, GridSearch) and prop.points == 3 and (prop.offset, prop.stride) == (1, 2)
    assert make_propagator("grid", SPACE, 8).points == 5
    for bad in ("grid:0", "grid:x", "grid:", "grid:-2", "grid:2.5", "grid:3:4"):
        with pytest.raises(ValueError, match=f"propagator={bad!r}.*'grid:10'"):
            make_propagator(bad, SPACE, 8)
    assert ends_by_itself("grid") and ends_by_itself("grid:7") and ends_by_itself(GridSearch(SPACE))
    assert not ends_by_itself("ga") and not ends_by_itself(None) and not ends_by_itself(lambda p, r: p)


def test_a_grid_with_a_float_ends_by_itself_without_a_budget() -> None:
    space = {"x": (0.0, 1.0), "k": ["p", "q"]}
    r = evohpo.optimize(lambda p: p["x"], space, comm=None, propagator="grid:4", seed=1)
    assert r.n_evaluations == 8 and r.reason.endswith("grid done: all 8 points evaluated")
    assert sorted(Space(space).key(i.params) for i in r.archive) == sorted(Space(space).key(p)
                                                                           for p in Space(space).grid(4))
    r = evohpo.optimize(lambda p: p["x"], space, comm=None, propagator=grid_search(space, points=3),
                        max_evaluations=100)  # a budget larger than the grid: the grid ends it
    assert r.n_evaluations == 6 and "grid done" in r.reason
    r = evohpo.optimize(lambda p: p["x"], space, comm=None, propagator="grid", max_evaluations=4)
    assert r.n_evaluations == 4 and r.reason == "budget reached"
    with pytest.raises(ValueError, match="give a budget"):
        evohpo.optimize(lambda p: p["x"], space, comm=None, propagator="random")


def test_a_resumed_grid_continues_with_the_points_left(tmp_path) -> None:
    kw = {"seed": 2, "comm": None, "checkpoint": tmp_path, "progress_interval": 1e9}
    first = evohpo.optimize(lambda p: p["c"], SPACE, propagator="grid:3", max_evaluations=10, **kw)
    assert first.n_evaluations == 10 and first.reason == "budget reached"
    r = evohpo.optimize(lambda p: p["c"], SPACE, propagator="grid:3", **kw)  # no budget: the rest of the grid
    assert (r.resumed, r.n_evaluations) == (10, 17) and "grid done: all 27 points" in r.reason
    assert Counter(SPACE.key(i.params) for i in r.archive) == Counter(KEYS)
    r = evohpo.optimize(lambda p: p["c"], SPACE, **kw)  # the stored strategy ("grid:3"): nothing left
    assert r.n_evaluations == 0 and "grid done" in r.reason


def test_the_grid_state_skips_points_its_island_evaluated() -> None:
    rng = np.random.default_rng(3)
    g = GridSearch(SPACE, points=3, offset=1, stride=2)
    head = [g([], rng)[0] for _ in range(3)]
    state = json.loads(json.dumps(g.state_dict()))
    h = GridSearch(SPACE, points=3, offset=1, stride=2)
    h.load_state_dict(state)
    assert h([], rng) == g([], rng)  # continues after the points handed out
    fresh = GridSearch(SPACE, points=3, offset=1, stride=2)
    for i, p in enumerate(head):  # a stale or foreign cursor: the island's results are skipped all the same
        fresh.observe(Individual(id=f"r-{i}", params=p, loss=0.0))
    fresh.load_state_dict({"cursor": 0, "offset": 0, "stride": 1})  # another split's cursor is not trusted
    assert fresh([], rng) not in head and fresh.cursor == 9
    assert fresh([], rng) == h([], rng)


@pytest.mark.mpi
@pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")
@pytest.mark.parametrize("form", ["name", "object", "resume"])
def test_under_mpi_every_grid_point_is_evaluated_exactly_once(form, tmp_path) -> None:
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, "-m", "mpi4py", str(HERE / "mpi_grid.py"), form, str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, proc.stdout[-2000:] + proc.stderr[-2000:]
    ranks = json.loads(line[0][len("RESULT "):])
    expected = {json.dumps(SPACE.key(p)) for p in SPACE.grid(3)}
    evaluated = Counter(k for r in ranks for k in r["own"])
    assert set(evaluated) == expected and set(evaluated.values()) == {1}
    assert all(len(r["own"]) in (13, 14) for r in ranks)  # split by index, not raced for
    assert all("grid done" in r["reason"] for r in ranks)
    assert {r["n_evaluations"] for r in ranks} == {17 if form == "resume" else 27}  # resumed: only the rest
