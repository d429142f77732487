"""Learning-curve tables (bench/curves/curves.py, built by bench/curves/make_*.py): every shipped table is the full
grid, curves have length R with values in [0, 1], ``value`` agrees with ``curve``, single runs are deterministic
and spread over the stored seeds, and bad params / steps raise errors that name them. Pure Python + json, fast."""

from __future__ import annotations

import itertools
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from curves import curves  # noqa: E402

# per table: parameters in grid order with orderedness, the number of configurations, R
EXPECTED = {
    "cnn_digits_curves": ({"layers": True, "channels": True, "activation": False, "optimizer": False, "lr": True,
                           "dropout": True}, 336, 27),
    "mlp_digits_curves": ({"hidden": True, "learning_rate_init": True, "alpha": True, "batch_size": True,
                           "solver": False, "activation": False}, 288, 40),
    "sgd_digits_curves": ({"scaler": False, "loss": False, "alpha": True, "learning_rate": False, "eta0": True,
                           "average": False}, 486, 40),
    "hgb_digits_curves": ({"learning_rate": True, "max_leaf_nodes": True, "max_features": True,
                           "min_samples_leaf": True}, 90, 30),
}
NAMES = list(EXPECTED)
_CACHE: dict[str, curves.CurveTable] = {}


def table(name: str) -> curves.CurveTable:
    if name not in _CACHE:
        _CACHE[name] = curves.load_curves(name)
    return _CACHE[name]


def test_shipped_tables():
    assert set(NAMES) <= set(curves.names())


@pytest.mark.parametrize("name", NAMES)
def test_full_grid_and_curve_shape(name):
    ordered, size, r = EXPECTED[name]
    t = table(name)
    assert t.name == name and t.seeds == 3 and t.max_steps == r and t.description
    assert list(t.levels) == list(ordered) and t.ordered == ordered
    assert t.size == len(t.rows) == len(t) == size == math.prod(len(v) for v in t.levels.values())
    # every grid point is present, each with `seeds` curves of length R in [0, 1]
    for combo in itertools.product(*t.levels.values()):
        p = dict(zip(t.levels, combo))
        for s in range(t.seeds):
            c = t.curve(p, seed=s)
            assert len(c) == r and all(0.0 <= v <= 1.0 for v in c), (p, s)
    space = t.space
    assert list(space) == list(ordered)
    assert {k: c.ordered for k, c in space.items()} == ordered
    assert all(list(space[k].values) == t.levels[k] for k in space)


@pytest.mark.parametrize("name", NAMES)
def test_value_matches_curve_and_landscape(name):
    t = table(name)
    r = t.max_steps
    finals = []
    for row in t.rows:
        p = row["params"]
        mean = t.curve(p)
        per_seed = [t.curve(p, seed=s) for s in range(t.seeds)]
        assert per_seed == [[float(v) for v in c] for c in row["curves"]]
        for step in (1, 2, r // 2, r):
            assert t.value(p, step) == mean[step - 1] == pytest.approx(np.mean([c[step - 1] for c in per_seed]))
            assert [t.value(p, step, seed=s) for s in range(t.seeds)] == [c[step - 1] for c in per_seed]
        assert t.final(p) == mean[-1] == t(p, r)
        assert t.final(p, seed=1) == per_seed[1][-1]
        secs = t.train_seconds(p)
        assert secs is not None and secs >= 0
        finals.append(mean[-1])
    assert t.best == min(finals) == t.final(t.best_params) == t.best_at(r)
    assert t.regret(t.best) == 0 and t.rank(t.best) == 0
    assert t.regret(max(finals)) == pytest.approx(max(finals) - t.best)
    assert t.best_at(1) == min(t.value(row["params"], 1) for row in t.rows)
    assert t.median == pytest.approx(float(np.median(finals)))


@pytest.mark.parametrize("name", NAMES)
def test_single_run_deterministic_and_spread(name):
    t = table(name)
    fresh = curves.load_curves(str(ROOT / "bench" / "curves" / f"{name}.json"))  # by path: a fresh load
    for b in (0, 1, 7, 123456):
        counts = Counter()
        for row in t.rows:
            p = row["params"]
            i = t.seed_index(p, b)
            counts[i] += 1
            c = t.single_run_curve(p, b)
            assert c == t.curve(p, seed=i)
            assert t.single_run_curve(dict(p), b) == c == fresh.single_run_curve(p, b)
            assert t.single_run(p, b) == c[-1] and t.single_run(p, b, step=1) == c[0]
        assert set(counts) == set(range(t.seeds))
        assert all(counts[i] >= 0.2 * t.size for i in range(t.seeds)), (b, counts)
    # another benchmark seed draws again
    moved = sum(t.seed_index(row["params"], 0) != t.seed_index(row["params"], 1) for row in t.rows)
    assert moved >= 0.4 * t.size


def test_numpy_scalars_and_extra_keys():
    t = table("cnn_digits_curves")
    p = dict(t.rows[5]["params"])
    q = {k: (np.float64(v) if isinstance(v, float) else np.int64(v) if isinstance(v, int) else np.str_(v))
         for k, v in p.items()}
    q["unused"] = "ignored"
    assert t.curve(q) == t.curve(p)
    assert t.value(q, np.int64(3), seed=np.int64(2)) == t.value(p, 3, seed=2)
    assert t.single_run_curve(q, np.int64(5)) == t.single_run_curve(p, 5)
    assert t.value(p, 3.0) == t.value(p, 3)  # an integral float step is fine


def test_errors_name_the_bad_params_and_step():
    t = table("cnn_digits_curves")
    p = dict(t.rows[0]["params"])
    with pytest.raises(KeyError, match="0.123"):
        t.value({**p, "lr": 0.123}, 1)
    with pytest.raises(KeyError, match="lr"):
        t.curve({k: v for k, v in p.items() if k != "lr"})
    with pytest.raises(KeyError, match="off_grid_act"):
        t.single_run_curve({**p, "activation": "off_grid_act"}, 0)
    for bad in (0, t.max_steps + 1, -1, 2.5, "3"):
        with pytest.raises(ValueError, match=f"step {bad!r}"):
            t.value(p, bad)
    with pytest.raises(ValueError, match="step 0"):
        t.best_at(0)
    with pytest.raises(ValueError, match="seed 3"):
        t.curve(p, seed=3)
    with pytest.raises(FileNotFoundError, match="no_such_table"):
        curves.load_curves("no_such_table")


def _tiny(rows_drop: int = 0, length: int = 2) -> dict:
    space = {"a": [1, 2], "b": ["x", "y"]}
    rows = [{"params": {"a": a, "b": b}, "curves": [[0.5, 0.4][:length], [0.6, 0.2][:length], [0.7, 0.3][:length]],
             "train_seconds": 0.1} for a, b in itertools.product(*space.values())]
    return {"name": "tiny", "space": space, "seeds": 3, "max_steps": 2, "rows": rows[rows_drop:]}


def test_constructor_checks_the_grid():
    t = curves.CurveTable(json.loads(json.dumps(_tiny())))
    assert t.size == 4 and t.curve({"a": 1, "b": "x"}) == pytest.approx([0.6, 0.3])
    assert t.ordered == {"a": True, "b": False}
    with pytest.raises(ValueError, match="full grid"):
        curves.CurveTable(_tiny(rows_drop=1))
    with pytest.raises(ValueError, match="length 2"):
        curves.CurveTable(_tiny(length=1))
