"""Tests for evohpo.optimize in one process (comm=None, no mpirun): results, faults, arguments, budgets."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import time

import pytest

import evohpo
from evohpo import Individual, Space

SPACE = {"x": (-2.0, 2.0), "y": (-2.0, 2.0), "act": ("relu", "tanh")}


def quad(p) -> float:
    return p["x"] ** 2 + (p["y"] - 1) ** 2 + (0.5 if p["act"] == "tanh" else 0.0)


def test_result_best_and_top_sorted() -> None:
    r = evohpo.optimize(quad, SPACE, generations=120, seed=1, comm=None, top_n=5)
    assert r.n_evaluations == 120 and r.n_failed == 0 and r.reason == "budget reached"
    assert len(r.archive) == 120 and all(isinstance(i, Individual) for i in r.archive)
    losses = sorted(i.loss for i in r.archive)
    assert r.best.loss == losses[0] and r.params == r.best.params
    assert [i.loss for i in r.top] == losses[:5]
    assert r.top[0] == r.best and len({i.id for i in r.top}) == 5
    assert r.islands == [r.best]
    assert all(i.loss == quad(i.params) and Space(SPACE).contains(i.params) for i in r.archive)
    assert r.elapsed > 0 and r.checkpoint is None


def test_top_n_larger_than_pop_size() -> None:
    r = evohpo.optimize(quad, SPACE, generations=60, seed=1, comm=None, top_n=20)
    assert [i.loss for i in r.top] == sorted(i.loss for i in r.archive)[:20]


class Boom(Exception):
    pass


def flaky(p) -> float:
    if p["x"] > 1.0:
        raise Boom(f"x={p['x']:.3f} is too large")
    if p["x"] < -1.0:
        return math.nan
    return quad(p)


def test_failures_are_recorded_and_the_search_goes_on() -> None:
    r = evohpo.optimize(flaky, SPACE, generations=150, seed=2, comm=None)
    assert r.n_evaluations == 150 and r.reason == "budget reached"
    raised = [i for i in r.archive if i.params["x"] > 1.0]
    nans = [i for i in r.archive if i.params["x"] < -1.0]
    assert raised and nans  # both kinds happened
    assert r.n_failed == len(raised) + len(nans) == sum(i.status == "failed" for i in r.archive)
    for i in raised:
        assert i.status == "failed" and i.loss == math.inf and not i.ok
        assert "Boom" in i.error and "is too large" in i.error and "Traceback" in i.error
    for i in nans:
        assert i.status == "failed" and i.loss == math.inf and "nan" in i.error
    assert r.best.ok and -1.0 <= r.best.params["x"] <= 1.0
    assert all(i.ok for i in r.top)


def test_non_numeric_loss_is_a_failure() -> None:
    r = evohpo.optimize(lambda p: "not a number", SPACE, generations=5, seed=3, comm=None)
    assert r.n_failed == 5 and r.best is None and r.top == []
    assert all("TypeError" in i.error and "of type str" in i.error for i in r.archive)


def test_on_error_raise_reraises_the_original_exception() -> None:
    raised = []

    def fn(p):
        if len(raised) == 0 and p["x"] > 0:
            raised.append(Boom("first positive x"))
            raise raised[0]
        return quad(p)

    with pytest.raises(Boom, match="first positive x") as info:
        evohpo.optimize(fn, SPACE, generations=200, seed=4, comm=None, on_error="raise")
    assert info.value is raised[0]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({}, r"budget.*None"),
        ({"generations": 0}, r"generations=0"),
        ({"generations": -3}, r"generations=-3"),
        ({"generations": 2.5}, r"generations=2\.5"),
        ({"max_evaluations": 0}, r"max_evaluations=0"),
        ({"time_limit": 0}, r"time_limit=0"),
        ({"time_limit": -1.0}, r"time_limit=-1\.0"),
        ({"generations": 5, "pop_size": 0}, r"pop_size=0"),
        ({"generations": 5, "top_n": 0}, r"top_n=0"),
        ({"generations": 5, "islands": 0}, r"islands=0"),
        ({"generations": 5, "islands": 2}, r"islands=2"),
        ({"generations": 5, "island_sizes": [2]}, r"island_sizes=\[2\]"),
        ({"generations": 5, "migration_prob": 2}, r"migration_prob=2"),
        ({"generations": 5, "migration_prob": -0.1}, r"migration_prob=-0\.1"),
        ({"generations": 5, "emigrants": 0}, r"emigrants=0"),
        ({"generations": 5, "emigrant_selection": "worst"}, r"emigrant_selection='worst'"),
        ({"generations": 5, "propagator": "bogus"}, r"propagator='bogus'"),
        ({"generations": 5, "propagator": 42}, r"propagator=42"),
        ({"generations": 5, "topology": "star"}, r"topology='star'"),
        ({"generations": 5, "topology": [[0.0, 1.0], [1.0, 0.0]]}, r"\(2, 2\)"),
        ({"generations": 5, "on_error": "ignore"}, r"on_error='ignore'"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_value(kwargs, pattern) -> None:
    calls = []
    with pytest.raises(ValueError, match=pattern):
        evohpo.optimize(lambda p: calls.append(p) or 0.0, SPACE, comm=None, **kwargs)
    assert calls == []  # nothing was evaluated


def test_bad_loss_fn_and_space() -> None:
    with pytest.raises(TypeError, match="loss_fn"):
        evohpo.optimize(42, SPACE, generations=1, comm=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'x'.*1\.0"):
        evohpo.optimize(quad, {"x": (1.0, 0.0)}, generations=1, comm=None)


def test_random_search_strategy() -> None:
    r = evohpo.optimize(quad, SPACE, generations=100, seed=5, comm=None, propagator="random")
    assert r.n_evaluations == 100
    assert len({Space(SPACE).key(i.params) for i in r.archive}) == 100


def test_grid_search_strategy_visits_the_grid_then_stops_when_the_space_is_exhausted() -> None:
    space = {"a": ("x", "y", "z"), "b": (0, 1)}  # 6 configurations
    r = evohpo.optimize(lambda p: float(p["b"]), space, generations=10, seed=6, comm=None, propagator="grid")
    assert r.reason.startswith("space exhausted")
    assert r.n_evaluations == 6
    assert sorted(Space(space).key(i.params) for i in r.archive) == sorted(Space(space).key(p)
                                                                           for p in Space(space).grid())
    # with a continuous parameter, the 5-point grid is walked in order, then the search ends
    grid = list(Space({"x": (0.0, 1.0)}).grid(5))
    r = evohpo.optimize(lambda p: p["x"], {"x": (0.0, 1.0)}, generations=8, seed=6, comm=None, propagator="grid")
    ordered = sorted(r.archive, key=lambda i: i.generation)
    assert [i.params for i in ordered] == grid
    assert r.n_evaluations == 5 and r.reason == "space exhausted: grid done: all 5 points evaluated"


def test_callable_propagator() -> None:
    calls = []

    def prop(parents, rng):
        calls.append(len(parents))
        return [{"x": float(rng.uniform(0, 0.1)), "y": 1.0, "act": "relu"}]

    r = evohpo.optimize(quad, SPACE, generations=20, seed=7, comm=None, propagator=prop)
    assert len(calls) >= 20 and all(i.params["x"] <= 0.1 for i in r.archive)


def test_max_evaluations_budget() -> None:
    r = evohpo.optimize(quad, SPACE, max_evaluations=13, seed=8, comm=None)
    assert r.n_evaluations == 13
    r = evohpo.optimize(quad, SPACE, max_evaluations=30, generations=7, seed=8, comm=None)
    assert r.n_evaluations == 7  # the tighter budget wins


def test_time_limit_stops_within_one_evaluation() -> None:
    """No evaluation starts after ``time_limit``, so the search ends at most one evaluation (50 ms) late.

    Bound: 0.3 s limit + 2 x 50 ms (the evaluation running when the limit passes, plus one more for sleep
    overshoot and the loop's own work between evaluations) + 0.4 s slack for what optimize() does outside the
    loop (communicator set-up, logging, the final allgather and termination drain) on a loaded test machine.
    A search that ignored the limit would run 200 x 50 ms = 10 s.
    """
    dt, limit = 0.05, 0.3

    def slow(p):
        time.sleep(dt)
        return quad(p)

    t0 = time.perf_counter()
    r = evohpo.optimize(slow, SPACE, time_limit=limit, generations=200, seed=9, comm=None)
    wall = time.perf_counter() - t0
    assert r.reason.startswith("time limit")
    assert wall < limit + 2 * dt + 0.4, wall
    assert r.elapsed < limit + 2 * dt + 0.4, r.elapsed
    assert 1 <= r.n_evaluations <= math.ceil(limit / dt) + 1  # each evaluation takes at least dt
    assert max(i.start for i in r.archive) - min(i.start for i in r.archive) < limit


def test_time_limit_alone_is_a_budget() -> None:
    r = evohpo.optimize(quad, SPACE, time_limit=0.2, seed=10, comm=None)
    assert r.reason.startswith("time limit") and r.n_evaluations > 10


def test_current_context_inside_loss_fn() -> None:
    seen = []

    def fn(p):
        ctx = evohpo.current()
        seen.append((ctx, dict(p)))
        return quad(p)

    assert evohpo.current() is None
    r = evohpo.optimize(fn, SPACE, generations=12, seed=11, comm=None)
    assert evohpo.current() is None  # reset after each evaluation
    assert len(seen) == 12
    by_id = {i.id: i for i in r.archive}
    for ctx, params in seen:
        assert isinstance(ctx, evohpo.EvalContext)
        assert (ctx.rank, ctx.island, ctx.island_rank, ctx.checkpoint) == (0, 0, 0, None)
        ind = by_id[ctx.id]
        assert ind.params == params and ind.generation == ctx.generation
    assert sorted(ctx.generation for ctx, _ in seen) == list(range(12))


def test_callbacks_see_every_result() -> None:
    got = []
    r = evohpo.optimize(flaky, SPACE, generations=30, seed=12, comm=None, callbacks=[got.append])
    assert sorted(i.id for i in got) == sorted(i.id for i in r.archive)


def run_python(code: str, timeout: float = 120) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_does_not_import_torch() -> None:
    out = run_python("""
        import json, sys
        import evohpo
        heavy = sorted(m for m in sys.modules
                       if m.split(".")[0] in {"torch", "lightning", "torchvision", "tensorboard", "sklearn"})
        print(json.dumps(heavy))
    """)
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_many_optimize_calls_in_one_process() -> None:
    out = run_python("""
        import logging
        import evohpo
        logging.getLogger("evohpo").addHandler(logging.NullHandler())
        for i in range(2100):
            evohpo.optimize(lambda p: p["x"], {"x": (0.0, 1.0)}, generations=1, comm=None)
        print("ok")
    """, timeout=300)
    assert out.strip() == "ok"


def test_a_checkpoint_directory_in_use_is_refused_and_left_alone(tmp_path) -> None:
    from evohpo.journal import directory as ck

    evohpo.optimize(quad, SPACE, generations=20, seed=5, comm=None, checkpoint=tmp_path)
    with ck.DirectoryLock(tmp_path):  # another search is running here
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
        for resume in (True, False):
            with pytest.raises(ck.CheckpointInUse, match="in use by another running search"):
                evohpo.optimize(quad, SPACE, generations=20, seed=5, comm=None, checkpoint=tmp_path, resume=resume)
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before  # nothing moved
    r = evohpo.optimize(quad, SPACE, generations=30, seed=5, comm=None, checkpoint=tmp_path)  # released: resumes
    assert r.resumed == 20 and r.n_evaluations == 10
