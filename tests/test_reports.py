"""Per-step reports in the worker loop (in-process, and several workers as threads): pruning, misuse, step budgets,
curves in the journal, and a restart in the middle of a pruned search."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

import evohpo
from evohpo.core.individual import FAILED, OK, PRUNED
from evohpo.journal.restore import restore
from evohpo.parallel.transport import ThreadHub

R = 27
SPACE = {"x": (0.0, 1.0)}


def curve(x: float, step: int) -> float:
    """A learning curve whose final value is (x - 0.3)^2 and whose early values rank the same way (with noise)."""
    return (x - 0.3) ** 2 + 1.0 / step + 0.002 * math.sin(97 * x * step)


def training(params: dict, until: int = R) -> float:
    for step in range(1, until + 1):
        evohpo.report(step, curve(params["x"], step))
    return curve(params["x"], until)


def archive(result: evohpo.SearchResult) -> list[evohpo.Individual]:
    return sorted(result.archive, key=lambda i: int(i.id.split("-")[1]))


def journal_records(directory: Path) -> list[dict]:
    return [json.loads(line) for p in sorted(directory.glob("journal-r*.jsonl")) for line in p.read_text().splitlines()]


def test_report_outside_an_evaluation_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match=r"report\(step=1, value=0.5\) was called outside an evaluation"):
        evohpo.report(1, 0.5)


@pytest.mark.parametrize("body, text", [
    (lambda: [evohpo.report(2, 0.5), evohpo.report(1, 0.4)], "step must increase, but step 2 was reported before"),
    (lambda: [evohpo.report(1, math.nan)], "value is not finite"),
    (lambda: [evohpo.report(R + 1, 0.1)], f"step is beyond max_steps={R}"),
    (lambda: [evohpo.report(0, 0.1)], "step must be >= 1"),
    (lambda: [evohpo.report(1.5, 0.1)], "step must be an int"),
    (lambda: [evohpo.report(1, "0.1")], "value must be a real number"),
    (lambda: [evohpo.report(1, 0.1, acc="high")], "metric acc='high' must be a real number"),
])
def test_report_misuse_is_a_failed_evaluation_with_its_text(body, text) -> None:
    def loss(params):
        body()
        return 0.0

    r = evohpo.optimize(loss, SPACE, max_evaluations=3, max_steps=R, max_failures=None, progress_interval=1e9)
    assert r.n_failed == 3 and all(text in ind.error for ind in r.archive)


def test_asha_prunes_most_trainings_and_keeps_their_curves(tmp_path: Path) -> None:
    r = evohpo.optimize(training, SPACE, max_evaluations=60, max_steps=R, checkpoint=str(tmp_path), seed=2,
                        progress_interval=1e9)
    inds = archive(r)
    status = Counter(i.status for i in inds)
    assert status[PRUNED] >= 30 and status[OK] >= 3 and status[FAILED] == 0 and r.n_pruned == status[PRUNED]
    assert all(i.step == R for i in inds if i.status == OK)
    assert all(i.step in (1, 3, 9) for i in inds if i.status == PRUNED)  # judged at the rungs only
    # each pruned result says why: where and by which rule (an ok one has no error text)
    assert all(i.error.startswith(f"pruned at step {i.step} ") and f"not among the best at step {i.step}" in i.error
               for i in inds if i.status == PRUNED)
    assert all(i.error is None for i in inds if i.status == OK)
    for i in inds:  # a pruned training's loss is its last reported value
        assert i.loss == pytest.approx(curve(i.params["x"], i.step))
    # the first few at a rung are never judged: the first min_reports - 1 trainings all ran to the end
    first = inds[:evohpo.ASHA().min_reports - 1]
    assert all(i.status == OK for i in first)
    # one report record per step reported; the steps used are what the trainings reported
    reports = [rec for rec in journal_records(tmp_path) if rec["ev"] == "report"]
    assert len(reports) == sum(i.step for i in inds) == r.n_steps
    assert r.best.status == OK and r.best_value == min(i.loss for i in inds if i.ok)


def test_without_pruning_every_training_reports_to_its_end() -> None:
    r = evohpo.optimize(training, SPACE, max_evaluations=12, max_steps=R, pruner="none", progress_interval=1e9)
    assert r.n_pruned == 0 and all(i.status == OK and i.step == R for i in r.archive) and r.n_steps == 12 * R


def test_reports_without_max_steps_are_recorded_and_nothing_is_pruned() -> None:
    r = evohpo.optimize(training, SPACE, max_evaluations=10, progress_interval=1e9)
    assert r.n_pruned == 0 and r.n_steps == 10 * R


def test_median_rule_and_a_pruner_of_ones_own() -> None:
    r = evohpo.optimize(training, SPACE, max_evaluations=40, max_steps=R, pruner="median", progress_interval=1e9)
    assert 5 <= r.n_pruned < 40

    class StopAtTwo(evohpo.Pruner):
        """Every training is judged at step 2 and stopped unless it is below 0.6."""

        def rungs(self, max_steps):
            return [2]

        def keep(self, value, others):
            return value < 0.6

    r = evohpo.optimize(training, SPACE, max_evaluations=30, max_steps=R, pruner=StopAtTwo(), progress_interval=1e9)
    for i in r.archive:
        assert (i.status, i.step) == ((OK, R) if curve(i.params["x"], 2) < 0.6 else (PRUNED, 2))


def test_a_loss_that_catches_pruned_and_returns_is_still_pruned() -> None:
    def stubborn(params):
        try:
            return training(params)
        except evohpo.Pruned as e:
            assert e.step in (1, 3, 9) and "not among the best" in str(e)
            return 0.0  # a value the search must not believe

    r = evohpo.optimize(stubborn, SPACE, max_evaluations=40, max_steps=R, progress_interval=1e9)
    assert r.n_pruned > 10 and all(i.loss != 0.0 for i in r.archive if i.status == PRUNED)
    assert all("not among the best" in i.error for i in r.archive if i.status == PRUNED)  # the search's reason
    assert r.best_value != 0.0


def test_maximizing_reports_are_signed_like_the_loss() -> None:
    def accuracy(params):
        for step in range(1, R + 1):
            evohpo.report(step, 1.0 - curve(params["x"], step))
        return 1.0 - curve(params["x"], R)

    r = evohpo.optimize(accuracy, SPACE, max_evaluations=40, max_steps=R, direction="maximize", progress_interval=1e9)
    pruned = [i for i in r.archive if i.status == PRUNED]
    assert pruned and r.best_value > max(1.0 - curve(i.params["x"], R) for i in pruned) - 0.05
    assert all(i.loss == pytest.approx(curve(i.params["x"], i.step) - 1.0) for i in pruned)


def test_step_budget_counts_steps_and_the_last_training_stops_where_it_ends() -> None:
    r = evohpo.optimize(training, SPACE, max_steps=R, step_budget=400, progress_interval=1e9, seed=5)
    assert r.n_steps == 400 and r.reason == "budget reached"
    assert r.n_evaluations > 400 // R  # pruning buys more trainings than full ones would
    assert sum(i.step for i in archive(r)) == 400
    unpruned = evohpo.optimize(training, SPACE, max_steps=R, step_budget=100, pruner="none", progress_interval=1e9)
    assert [i.step for i in archive(unpruned)] == [R, R, R, 100 - 3 * R] and unpruned.n_steps == 100
    assert archive(unpruned)[-1].status == PRUNED  # stopped where the budget ended, without a pruner
    assert "the search's step budget is used up (its worker had 19 of it left" in archive(unpruned)[-1].error
    assert [i.error for i in archive(unpruned)[:-1]] == [None] * 3
    with pytest.raises(ValueError, match="step_budget=100 needs max_steps"):
        evohpo.optimize(training, SPACE, step_budget=100)
    with pytest.raises(ValueError, match="step_budget=100 is the search's budget in steps: give it instead"):
        evohpo.optimize(training, SPACE, step_budget=100, max_steps=R, max_evaluations=10)
    with pytest.raises(ValueError, match="max_steps=0 must be a positive int"):
        evohpo.optimize(training, SPACE, max_evaluations=3, max_steps=0)


def test_island_workers_share_rung_values() -> None:
    """Two workers of one island as threads: each judges with the other's values at the rung too."""
    seen: dict[int, list[int]] = {0: [], 1: []}  # rung-1 values on the worker's board as each training starts
    results: dict[int, evohpo.SearchResult] = {}

    def work(transport) -> None:
        def loss(params):
            seen[transport.rank].append(len(evohpo.current().reporter.reports.board.values(1)))
            return training(params)

        results[transport.rank] = evohpo.optimize(loss, SPACE, comm=transport, max_evaluations=40, max_steps=R,
                                                  seed=7, progress_interval=1e9)

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in ThreadHub(2).transports()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads) and len(results) == 2
    for rank in (0, 1):  # the board holds the peer's trainings too: more than this worker ran before
        assert any(count > started for started, count in enumerate(seen[rank]))
        assert seen[rank][-1] >= 30  # nearly all 39 trainings before the last one
    assert results[0].n_pruned == results[1].n_pruned > 0


def test_a_restart_keeps_every_curve_and_rung(tmp_path: Path) -> None:
    """Stopped by its budget and resumed with more: every training and curve of the first run is kept, and the
    resumed run judges with the first run's rung values (its trainings, all worse, are pruned at once)."""
    first = evohpo.optimize(training, SPACE, max_steps=R, step_budget=300, checkpoint=str(tmp_path), seed=1,
                            progress_interval=1e9)
    before = {i.id: i for i in first.archive}

    def worse(params):  # every value far above the first run's: the restored board prunes them at step 1
        for step in range(1, R + 1):
            evohpo.report(step, 10 + curve(params["x"], step))
        return 10 + curve(params["x"], R)

    second = evohpo.optimize(worse, SPACE, max_steps=R, step_budget=600, checkpoint=str(tmp_path), seed=1,
                             progress_interval=1e9)
    new = sorted((i for i in second.archive if i.id not in before), key=lambda i: int(i.id.split("-")[1]))
    assert len(before) >= 12 and len(new) >= 5  # (without the restored board the first 5 would run to the end)
    assert all(i.status == PRUNED and i.step == 1 for i in new[:5])
    assert first.n_steps == 300 and first.n_steps + second.n_steps == 600
    loaded = restore(tmp_path)
    ends = {i.id: i for i in loaded.individuals}
    for ind_id, ind in before.items():
        assert ends[ind_id].status == ind.status and ends[ind_id].step == ind.step
        assert [s for s, _ in loaded.curves[ind_id]] == list(range(1, ind.step + 1))
    assert sum(loaded.steps.values()) == first.n_steps + second.n_steps


CRASH = """
import os, sys, evohpo
R = 27
def loss(params):
    ctx = evohpo.current()
    for step in range(1, R + 1):
        evohpo.report(step, (params["x"] - 0.3) ** 2 + 1.0 / step)
        if ctx.generation == 3 and step == 4 and os.environ.get("CRASH"):
            os._exit(9)  # the job dies in the middle of a training (kill -9)
    return (params["x"] - 0.3) ** 2
evohpo.optimize(loss, {"x": (0.0, 1.0)}, max_evaluations=int(sys.argv[2]), max_steps=R, checkpoint=sys.argv[1],
                seed=3, progress_interval=1e9)
"""


def test_a_training_running_when_the_job_died_is_run_again_with_a_new_curve(tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(CRASH)
    ckpt = tmp_path / "ckpt"
    env = {**os.environ, "CRASH": "1"}
    died = subprocess.run([sys.executable, str(script), str(ckpt), "20"], env=env, capture_output=True, timeout=120)
    assert died.returncode == 9, died.stderr.decode()[-2000:]
    half = restore(ckpt)
    assert half.n_evaluations == 3 and [u["id"] for u in half.unfinished] == ["0-3"]
    assert [s for s, _ in half.curves["0-3"]] == [1, 2, 3, 4]
    env.pop("CRASH")
    subprocess.run([sys.executable, str(script), str(ckpt), "20"], env=env, check=True, capture_output=True,
                   timeout=120)
    whole = restore(ckpt)
    ends = {i.id: i for i in whole.individuals}
    assert whole.n_evaluations == 20 and not whole.unfinished and "0-3" in ends
    assert [s for s, _ in whole.curves["0-3"]] == list(range(1, ends["0-3"].step + 1))  # its new attempt only
    for ind_id, ind in ends.items():  # no finished or pruned training lost its curve
        assert [s for s, _ in whole.curves[ind_id]] == list(range(1, ind.step + 1))
    assert whole.steps[0] == sum(i.step for i in ends.values()) + 4  # the lost attempt's steps were spent too


def test_numpy_steps_values_and_metrics_are_taken_as_numbers() -> None:
    import numpy as np

    def loss(params):
        for step in range(1, 4):
            evohpo.report(np.int64(step), np.float32(curve(params["x"], step)), acc=np.array(0.5))
        return curve(params["x"], 3)

    r = evohpo.optimize(loss, SPACE, max_evaluations=3, max_steps=3, progress_interval=1e9)
    assert r.n_failed == 0 and r.n_steps == 9 and all(i.step == 3 for i in r.archive)


def test_a_used_up_finite_space_trains_the_best_pruned_configurations_again_to_their_end() -> None:
    """A grid of 24 configurations with budget for far more: once each was tried (most of them pruned), the rest of
    the budget trains pruned ones again, the most promising first (highest step reached, then loss), to their end;
    the search ends when none is left, saying so."""
    space = {"x": [i / 23 for i in range(24)]}
    r = evohpo.optimize(training, space, max_steps=R, step_budget=200 * R, seed=4, progress_interval=1e9)
    inds = archive(r)
    pruned = {i.params["x"] for i in inds if i.status == PRUNED}
    full = [i for i in inds if i.status == OK]
    assert pruned and len(inds) > 24  # some configurations were trained twice
    assert {i.params["x"] for i in full} == {i.params["x"] for i in inds}  # every one ran to its end once
    again = [i for i in full if i.params["x"] in pruned]
    assert again and all(i.step == R for i in again)  # the second training was never pruned
    assert len(full) == 24 and "pruned ones were trained to their end" in r.reason
    first = min(again, key=lambda i: int(i.id.split("-")[1]))  # the first configuration trained again ...
    stopped = [i for i in inds if i.status == PRUNED]
    assert max(i.step for i in stopped) == next(i.step for i in stopped if i.params == first.params)  # went furthest


def test_a_promoted_training_is_marked_in_the_journal_and_stays_unjudged_when_it_runs_again(tmp_path: Path) -> None:
    """The start record of a pruned configuration trained again says ``promoted``; one left unfinished (as by a
    kill -9) runs again first on resume, again to its end, though the pruner would have stopped it."""
    space = {"x": [i / 23 for i in range(24)]}
    r = evohpo.optimize(training, space, max_steps=R, step_budget=200 * R, seed=4, progress_interval=1e9,
                        checkpoint=str(tmp_path))
    starts = [rec for rec in journal_records(tmp_path) if rec["ev"] == "start"]
    promoted = [rec for rec in starts if rec.get("promoted")]
    assert len(promoted) == len(starts) - 24 > 0  # every start after the 24 first trainings is a promotion
    worst = max((i for i in archive(r) if i.status == PRUNED), key=lambda i: curve(i.params["x"], R))
    with open(tmp_path / "journal-r0000.jsonl", "a") as f:  # a promotion that started and never ended
        f.write(json.dumps({"ev": "start", "id": "0-999", "params": worst.params, "island": 0, "gen": 999,
                            "t": 1.0, "promoted": True}) + "\n")
    again = evohpo.optimize(training, space, max_steps=R, step_budget=201 * R, seed=4, progress_interval=1e9,
                            checkpoint=str(tmp_path))
    rerun = next(i for i in again.archive if i.id == "0-999")
    assert rerun.status == OK and rerun.step == R  # the worst configuration of all, yet not pruned
