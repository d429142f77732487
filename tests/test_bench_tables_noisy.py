"""Single-run table problems (bench/tables/table.py ``Table.single_run``, bench/quality.py ``table1:NAME``):
one stored training per (benchmark seed, configuration), and the incumbent scored by its mean. No MPI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


sys.path.insert(0, str(ROOT / "bench"))
from qualitybench import methods, problems  # noqa: E402  (bench/quality.py's package)
from qualitybench import tasks as quality_tasks  # noqa: E402
from tables import table  # noqa: E402  (the module the quality bench itself uses)

NAMES = table.names()


def test_tables_present():
    assert {"cnn_digits", "svc_breast_cancer", "tree_digits"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_single_run_is_a_stored_seed_value_and_deterministic(name):
    t = table.load_table(name)
    fresh = table.load_table(name)
    for r in t.rows:
        per_seed = [t.lookup(r["params"], seed=i) for i in range(t.seeds)]
        for s in (0, 1, 7, 123456):
            v = t.single_run(r["params"], s)
            assert v == per_seed[t.seed_index(r["params"], s)]
            assert v in per_seed
            assert t.single_run(dict(r["params"]), s) == v  # repeat: same value
            assert fresh.single_run(r["params"], s) == v  # a fresh load: same value


@pytest.mark.parametrize("name", NAMES)
def test_seed_index_roughly_uniform_and_seed_dependent(name):
    t = table.load_table(name)
    for s in range(5):
        counts = Counter(t.seed_index(r["params"], s) for r in t.rows)
        assert set(counts) == set(range(t.seeds))
        for i in range(t.seeds):
            assert counts[i] >= 0.2 * t.size, (s, counts)
    # another benchmark seed draws again: the index changes for many configurations, the value for some
    moved = sum(t.seed_index(r["params"], 0) != t.seed_index(r["params"], 1) for r in t.rows)
    assert moved >= 0.4 * t.size
    differ = sum(len({t.single_run(r["params"], s) for s in range(5)}) > 1 for r in t.rows)
    assert differ > 0


def test_single_run_same_across_processes_and_value_types():
    """blake2b, not the per-process salted hash(): a process with another PYTHONHASHSEED agrees; 2 == 2.0 ==
    numpy scalars."""
    t = table.load_table("cnn_digits")
    configs = [r["params"] for r in t.rows[::37]]
    here = [[t.seed_index(p, s) for s in range(4)] for p in configs]
    code = ("import json, sys; sys.path.insert(0, '.'); from bench.tables.table import load_table\n"
            "t = load_table('cnn_digits'); configs = json.loads(sys.stdin.read())\n"
            "print(json.dumps([[t.seed_index(p, s) for s in range(4)] for p in configs]))")
    for hashseed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], input=json.dumps(configs), cwd=ROOT, text=True,
                             capture_output=True, check=True, env={**os.environ, "PYTHONHASHSEED": hashseed})
        assert json.loads(out.stdout) == here
    p = dict(t.rows[200]["params"])
    as_float = {k: float(v) if isinstance(v, int) else v for k, v in p.items()}
    as_numpy = {k: np.float64(v) if isinstance(v, (int, float)) else v for k, v in p.items()}
    for s in range(4):
        assert t.seed_index(as_float, s) == t.seed_index(as_numpy, s) == t.seed_index(p, s)


def test_single_run_rejects_off_grid():
    t = table.load_table("tree_digits")
    p = dict(t.best_params, max_depth=99)
    with pytest.raises(KeyError, match="not in the table"):
        t.single_run(p, 0)


# -- scoring in bench/quality.py ------------------------------------------------------------------------------

TINY = {"name": "tiny", "seeds": 3, "space": {"a": [0, 1, 2]}, "rows": [
    {"params": {"a": 0}, "val_error": [0.0, 0.0, 0.9], "mean": 0.3},  # lucky on seeds 0 and 1
    {"params": {"a": 1}, "val_error": [0.1, 0.1, 0.1], "mean": 0.1},  # the best mean
    {"params": {"a": 2}, "val_error": [0.0, 0.0, 0.6], "mean": 0.2},  # lucky on seeds 0 and 1
]}


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    single, mean = problems.make_problem(f"table1:{path}"), problems.make_problem(f"table:{path}")
    assert single.single_run and not mean.single_run
    # a benchmark seed at which a=0 and a=2 both show their lucky 0.0
    seed = next(s for s in range(1000) if single.table.seed_index({"a": 0}, s) != 2
                and single.table.seed_index({"a": 2}, s) != 2)
    return single, mean, seed


def _run(problem, seed, order):
    tracker = methods.Tracker(problem.loss_at(seed), lambda p: p, problem.space)
    for a in order:
        tracker({"a": a})
    return tracker


def test_incumbent_is_lowest_observed_first_on_ties_scored_by_mean(tiny):
    single, mean, seed = tiny
    for order, inc in (([2, 0, 1], 2), ([0, 2, 1], 0), ([1, 2, 0], 2)):
        rec = methods.result_line(seed, [_run(single, seed, order).stats(0.0)])
        assert rec["best"] == 0.0 and rec["best_params"] == {"a": inc}
        score = single.score(rec)
        assert score["incumbent_mean"] == TINY["rows"][inc]["mean"]
        assert score["regret"] == pytest.approx(TINY["rows"][inc]["mean"] - 0.1)
        assert score["regret"] > 0  # the noise-free table would give 0: a=1 was evaluated
        mrec = methods.result_line(seed, [_run(mean, seed, order).stats(0.0)])
        assert mrec["best_params"] == {"a": 1} and mean.score(mrec) == {"regret": 0.0}


def test_incumbent_across_ranks_is_the_earliest_of_equal_values(tiny):
    single, _, seed = tiny
    first = _run(single, seed, [1, 0])  # evaluates a=0 before the other rank evaluates a=2
    second = _run(single, seed, [2])
    for parts in ([first.stats(1.0), second.stats(2.0)], [second.stats(2.0), first.stats(1.0)]):
        rec = methods.result_line(seed, parts)
        assert rec["best_params"] == {"a": 0} and rec["n"] == 3 and rec["distinct"] == 3 and rec["wall"] == 2.0
        assert single.score(rec)["regret"] == pytest.approx(0.2)


@pytest.mark.parametrize("name", NAMES)
def test_random_search_single_run_regret_is_incumbent_mean(name):
    problem = problems.make_problem(f"table1:{name}")
    t = problem.table
    regrets = []
    for seed in range(5):
        rec = methods.random_search(problem, 100, seed)
        assert rec["best"] == t.single_run(rec["best_params"], seed)  # the observed value of the incumbent
        score = problem.score(rec)
        assert score["incumbent_mean"] == t.lookup(rec["best_params"])
        assert score["regret"] == pytest.approx(t.lookup(rec["best_params"]) - t.best)
        assert score["regret"] >= 0
        regrets.append(score["regret"])
    assert len(set(regrets)) > 1 or max(regrets) > 0


def test_tasks_and_labels():
    tasks = quality_tasks.default_tasks(False)
    mean = [(t.key.split(":", 1)[1], t.budget) for t in tasks if t.key.startswith("table:")]
    single = [(t.key.split(":", 1)[1], t.budget) for t in tasks if t.key.startswith("table1:")]
    assert mean and sorted(mean) == sorted(single)
    assert {b for _, b in mean} == set(quality_tasks.TABLE_BUDGETS)
    first_single = next(i for i, t in enumerate(tasks) if t.key.startswith("table1:"))
    assert all(not t.key.startswith("table1:") for t in tasks[:first_single])  # the old rows stay first, in order
    assert quality_tasks.Task("table1:cnn_digits", 100).label == "cnn_digits (single run)"
    assert quality_tasks.Task("table:cnn_digits", 100).label == "cnn_digits"
    assert [t.id for t in quality_tasks.select_tasks("table1:cnn_digits@100", False)] == ["table1:cnn_digits@100"]
    assert {t.key for t in quality_tasks.select_tasks("tables", False)} == {t.key for t in tasks if ":" in t.key}
