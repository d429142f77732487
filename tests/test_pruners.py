"""Pruner decisions as pure functions (evohpo.core.pruners): rungs, the first-few rule, ties, NaN points, the board."""

from __future__ import annotations

import math
import random

import pytest

import evohpo
from evohpo.core.pruners import (
    ASHA,
    MedianStopping,
    NoPruning,
    RungBoard,
    crossed,
    geometric_rungs,
    make_pruner,
    median_keeps,
    rung_values,
    top_fraction_keeps,
)


def test_rungs_are_geometric_below_max_steps() -> None:
    assert geometric_rungs(1, 3, 27) == [1, 3, 9]
    assert geometric_rungs(1, 3, 28) == [1, 3, 9, 27]
    assert geometric_rungs(2, 2, 20) == [2, 4, 8, 16]
    assert geometric_rungs(1, 1.5, 6) == [1, 2, 3, 5]  # rounded, each once
    assert geometric_rungs(5, 3, 5) == []  # the first rung would be the end: nothing to decide
    assert len(geometric_rungs(1, 2, None)) == 16
    assert ASHA(min_steps=1, eta=3).rungs(100) == [1, 3, 9, 27, 81]
    assert MedianStopping(min_steps=2, every=3).rungs(12) == [2, 5, 8, 11]
    assert NoPruning().rungs(100) == []


def test_the_first_few_at_a_rung_always_go_on() -> None:
    for n_others in range(5):  # fewer than min_reports=6 values with this one: nobody is judged
        assert top_fraction_keeps(100.0, [0.0] * n_others, eta=3, min_reports=6)
        assert median_keeps(100.0, [0.0] * n_others, min_reports=6)
    assert not top_fraction_keeps(100.0, [0.0] * 5, eta=3, min_reports=6)
    assert not median_keeps(100.0, [0.0] * 5, min_reports=6)
    # without the rule (min_reports=1) the second training is stopped whenever it is worse than the first
    assert not top_fraction_keeps(0.6, [0.5], eta=3, min_reports=1)
    assert top_fraction_keeps(0.6, [], eta=3, min_reports=1)


def test_top_fraction_keeps_the_best_third_and_ties_at_the_cut() -> None:
    others = [float(i) for i in range(9)]  # with this one: 10 values, the best 10 // 3 = 3 go on
    assert top_fraction_keeps(1.5, others, eta=3, min_reports=1)  # 2 better: it is 3rd
    assert not top_fraction_keeps(2.5, others, eta=3, min_reports=1)  # 3 better: 4th
    assert top_fraction_keeps(2.0, others, eta=3, min_reports=1)  # tied with the 3rd: goes on
    assert top_fraction_keeps(-1.0, others, eta=3, min_reports=1)
    assert not top_fraction_keeps(math.nan, others, eta=3, min_reports=1)  # NaN is the worst
    assert top_fraction_keeps(math.nan, [math.inf] * 2, eta=3, min_reports=1)  # ... tied with inf
    assert top_fraction_keeps(5.0, [5.0] * 20, eta=3, min_reports=1)  # all tied: all go on


def test_top_fraction_matches_a_sort_on_random_boards() -> None:
    rnd = random.Random(3)
    for _ in range(500):
        n, eta = rnd.randint(0, 30), rnd.choice([2, 3, 4])
        others = sorted(rnd.choice([rnd.random(), float(rnd.randint(0, 3))]) for _ in range(n))
        value = rnd.choice([rnd.random(), float(rnd.randint(0, 3))])
        everyone = sorted([*others, value])
        cut = everyone[max(1, (n + 1) // eta) - 1]
        assert top_fraction_keeps(value, others, eta, min_reports=1) == (value <= cut)


def test_median_rule() -> None:
    assert median_keeps(2.0, [1.0, 2.0, 3.0], min_reports=1)  # equal to the median
    assert not median_keeps(2.1, [1.0, 2.0, 3.0], min_reports=1)
    assert median_keeps(2.5, [1.0, 2.0, 3.0, 4.0], min_reports=1)  # even count: the mean of the middle two
    assert not median_keeps(2.6, [1.0, 2.0, 3.0, 4.0], min_reports=1)
    assert not median_keeps(math.nan, [1.0, 2.0, 3.0], min_reports=1)
    assert median_keeps(7.0, [], min_reports=1)  # the first one has nothing to compare with


def test_board_keeps_one_value_per_training_sorted() -> None:
    board = RungBoard([1, 3])
    assert board.add("a", 1, 0.5) and board.add("b", 1, 0.2) and board.add("c", 1, math.nan)
    assert not board.add("a", 1, 0.1)  # the same training again (a message seen twice): ignored
    assert not board.add("a", 2, 0.1)  # not a rung
    assert board.values(1) == [0.2, 0.5, math.inf] and board.values(3) == [] and board.values(7) == []
    assert board.add("a", 3, 0.4) and board.values(3) == [0.4]  # the same training at another rung


def test_crossed_and_rung_values_from_a_curve() -> None:
    rungs = [1, 3, 9]
    assert crossed(rungs, None, 1) == [1]
    assert crossed(rungs, 1, 2) == []
    assert crossed(rungs, 2, 10) == [3, 9]  # a sparse report reaches two rungs at once
    assert crossed(rungs, 9, 27) == []
    assert rung_values(rungs, [(2, 0.9), (5, 0.5), (6, 0.4), (12, 0.1)]) == [(1, 0.9), (3, 0.5), (9, 0.1)]
    assert rung_values(rungs, []) == []


def test_make_pruner_by_name_object_and_errors() -> None:
    assert isinstance(make_pruner(None, 27), ASHA) and isinstance(make_pruner(None, None), NoPruning)
    assert isinstance(make_pruner("median", 27), MedianStopping) and isinstance(make_pruner("NONE", 5), NoPruning)
    with pytest.raises(ValueError, match="pruner='hyperband' must be one of"):
        make_pruner("hyperband", 27)
    with pytest.raises(TypeError, match="pruner=3 must be"):
        make_pruner(3, 27)

    class Bad(evohpo.Pruner):
        def rungs(self, max_steps):
            return [3, 1]

        def keep(self, value, others):
            return True

    with pytest.raises(ValueError, match=r"rungs\(max_steps=27\) returned \[3, 1\]"):
        make_pruner(Bad(), 27)
    for kw, match in (({"eta": 1}, "eta=1 must be a number > 1"), ({"min_steps": 0}, "min_steps=0"),
                      ({"min_reports": 0}, "min_reports=0"), ({"eta": True}, "eta=True")):
        with pytest.raises(ValueError, match=match):
            ASHA(**kw)
    with pytest.raises(ValueError, match="every=0"):
        MedianStopping(every=0)
