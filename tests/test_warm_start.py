"""Warm start: ``optimize(initial=...)`` evaluates given configurations first (checked, dealt to the workers,
counted in the budget, not run again on resume), or the best of a finished search that fit a new space."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

import evohpo
from evohpo.core.space import Choice, Float, Int
from evohpo.parallel.transport import ThreadHub, local_transport

SPACE = {"x": Float(0.0, 1.0), "n": Int(0, 9), "act": Choice(["relu", "tanh"])}
GIVEN = [{"x": 0.5, "n": 3, "act": "tanh"}, {"x": 0.1, "n": 9, "act": "relu"}, {"x": 0.9, "n": 0, "act": "tanh"}]


def loss(p: dict) -> float:
    return (p["x"] - 0.3) ** 2 + 0.01 * p["n"] + (p["act"] == "relu")


def run(space: dict = SPACE, **kw: Any) -> tuple[list[dict], Any]:
    calls: list[dict] = []

    def record(params: dict) -> float:
        calls.append(dict(params))
        return loss(params)

    result = evohpo.optimize(record, space, comm=local_transport(), progress_interval=100.0, **kw)
    return calls, result


def test_given_configurations_run_first_and_count_in_the_budget() -> None:
    calls, result = run(initial=GIVEN, max_evaluations=5)
    assert calls[:3] == GIVEN and len(calls) == 5
    assert result.n_evaluations == 5
    calls, _ = run(initial=GIVEN, generations=2)  # a smaller budget: the first ones only
    assert calls == GIVEN[:2]


@pytest.mark.parametrize("initial,error,match", [
    ([GIVEN[0], {"x": 2.0, "n": 1, "act": "relu"}], ValueError, r"initial\[1\]: parameter 'x': value 2.0"),
    ([{"x": 0.5, "act": "relu"}], ValueError, r"initial\[0\]: .*missing \['n'\]"),
    ([GIVEN[0], {"x": 0.5, "n": 3, "act": "gelu"}], ValueError, r"initial\[1\]: parameter 'act'"),
    ([GIVEN[0], GIVEN[1], dict(GIVEN[0])], ValueError, r"initial\[2\] repeats initial\[0\]"),
    ([GIVEN[0], 3], TypeError, r"initial\[1\]=3 must be a dict"),
    (GIVEN[0], TypeError, r"initial=.* must be a list of configurations"),
])
def test_given_configurations_are_checked_before_anything_runs(initial, error, match) -> None:
    with pytest.raises(error, match=match):
        run(initial=initial, max_evaluations=5)


def test_configurations_are_dealt_to_the_workers_by_index() -> None:
    hub, calls = ThreadHub(2), {0: [], 1: []}
    given = [{"x": i / 10, "n": i, "act": "relu"} for i in range(6)]

    def work(transport) -> None:
        def record(params: dict) -> float:
            calls[transport.rank].append(dict(params))
            return loss(params)
        evohpo.optimize(record, SPACE, comm=transport, initial=given, generations=4, progress_interval=100.0)

    threads = [threading.Thread(target=work, args=(t,)) for t in hub.transports()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert calls[0][:3] == given[0::2] and calls[1][:3] == given[1::2]
    bred = calls[0][3:] + calls[1][3:]
    assert len(bred) == 2 and not any(c in given for c in bred)


def test_a_resumed_search_does_not_run_them_again(tmp_path) -> None:
    given = [{"x": i / 10, "n": i, "act": "tanh"} for i in range(5)]
    first, _ = run(initial=given, max_evaluations=3, checkpoint=tmp_path)
    assert first == given[:3]
    again, result = run(initial=given, max_evaluations=8, checkpoint=tmp_path)
    assert again[:2] == given[3:] and len(again) == 5
    assert result.n_evaluations + result.resumed == 8


def test_a_finished_search_seeds_a_new_one_with_its_best_that_fit(tmp_path, caplog) -> None:
    old = tmp_path / "old"
    calls, _ = run({**SPACE, "drop": Float(0.0, 0.5)}, max_evaluations=40, checkpoint=old, seed=3)
    new_space = {"x": Float(0.0, 0.28), "n": Int(0, 9), "act": Choice(["relu", "tanh"])}  # narrower x, no "drop"
    best = sorted((c for c in calls if c["x"] <= 0.28), key=loss)[:3]
    expected = [{k: c[k] for k in new_space} for c in best]
    assert any(c["x"] > 0.28 and loss(c) < loss(best[-1]) for c in calls)  # a better one that does not fit
    with caplog.at_level(logging.INFO, logger="evohpo"):
        seeded, _ = run(new_space, initial=str(old), max_evaluations=6, pop_size=3)  # the best pop_size
    assert seeded[:3] == expected
    assert "the 3 best configurations of" in caplog.text and "dropped parameters ['drop']" in caplog.text
    assert "outside the space" in caplog.text
    loaded, _ = run(new_space, initial=evohpo.load(old), max_evaluations=3, pop_size=3)
    assert loaded == expected
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no journals"):
        run(new_space, initial=str(tmp_path / "empty"), max_evaluations=3)
