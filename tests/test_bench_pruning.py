"""bench/pruning.py's pure parts: the step meter charges exactly the steps trained and stops at the budget, the
1-step top-K baseline never spends more than its budget, and the regret of the incumbent (lowest observed final
value among complete trainings) is scored on a tiny curve table written in bench/curves' format. Fast, no MPI."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from curves.curves import load_curves  # noqa: E402
from pruningbench.steps import (  # noqa: E402
    BudgetExhausted,
    StepMeter,
    _shuffled,
    merge,
    one_step_top_k,
    random_full,
    regret_at,
    resume_pruned,
    score,
    steps_to_reach,
    top_k_split,
)

# a: good early, bad late; b: bad early, best at the end; c: middling. Two stored seeds each, R = 4.
CURVES = {
    ("a", 1): [[0.30, 0.20, 0.20, 0.20], [0.32, 0.22, 0.22, 0.24]],
    ("b", 1): [[0.90, 0.50, 0.10, 0.05], [0.80, 0.40, 0.12, 0.07]],
    ("c", 1): [[0.50, 0.40, 0.30, 0.15], [0.50, 0.40, 0.30, 0.25]],
    ("a", 2): [[0.60, 0.60, 0.60, 0.60], [0.60, 0.60, 0.60, 0.60]],
    ("b", 2): [[0.70, 0.60, 0.50, 0.40], [0.70, 0.60, 0.50, 0.40]],
    ("c", 2): [[0.40, 0.35, 0.30, 0.30], [0.40, 0.35, 0.30, 0.30]],
}


@pytest.fixture()
def table(tmp_path: Path):
    space = {"kind": ["a", "b", "c"], "width": [1, 2]}
    rows = [{"params": {"kind": k, "width": w}, "curves": CURVES[(k, w)]} for k in space["kind"]
            for w in space["width"]]
    data = {"name": "tiny_curves", "description": "test", "metric": "val_error", "space": space, "seeds": 2,
            "max_steps": 4, "rows": rows}
    path = tmp_path / "tiny_curves.json"
    path.write_text(json.dumps(data))
    return load_curves(str(path))


def test_meter_charges_each_new_step_and_stops_at_the_budget(table):
    meter = StepMeter(table, seed=0, budget=6)
    tr = meter.open({"kind": "b", "width": 1})
    assert tr.advance(2) == table.single_run_curve({"kind": "b", "width": 1}, 0)[1]
    assert meter.used == 2
    tr.advance(2)  # nothing new
    tr.advance(1)  # already past: free, the value at step 1
    assert meter.used == 2 and tr.step == 2
    tr.advance(4)
    assert meter.used == 4 and len(meter.completions) == 1 and meter.completions[0].used == 4
    other = meter.open({"kind": "a", "width": 1})
    with pytest.raises(BudgetExhausted):
        other.advance(4)
    assert meter.used == 6 and other.step == 2  # the steps trained before the stop are charged
    assert len(meter.completions) == 1  # the cut training did not complete
    with pytest.raises(BudgetExhausted):
        meter.open({"kind": "c", "width": 1}).advance(1)
    assert meter.used == 6 and meter.trainings == 3


def test_meter_keep_continues_a_configuration_and_default_retrains(table):
    p = {"kind": "c", "width": 2}
    kept = StepMeter(table, seed=1, budget=None, keep=True)
    kept.open(p).advance(2)
    kept.open(p).advance(4)  # continues: 2 new steps
    assert kept.used == 4
    fresh = StepMeter(table, seed=1, budget=None)
    fresh.open(p).advance(2)
    fresh.open(p).advance(4)  # a new training from step 0
    assert fresh.used == 6


def test_top_k_split_and_baseline_never_exceed_the_budget(table):
    for R in (2, 3, 4, 27, 40):
        for size in (1, 6, 90, 336):
            for budget in range(1, 200, 7):
                m, k = top_k_split(budget, R, size)
                assert 0 <= k <= m <= size and m + k * (R - 1) <= budget
    for budget in range(1, 40):
        for seed in range(3):
            meter = StepMeter(table, seed, budget)
            info = one_step_top_k(meter)
            assert meter.used <= budget
            m, k = info["screened"], info["kept"]
            assert meter.used == m + k * (table.max_steps - 1)
            assert len(meter.completions) == k
            meter = StepMeter(table, seed, budget)
            random_full(meter)
            assert meter.used == min(budget, table.size * table.max_steps)


def test_top_k_continues_the_best_after_one_step(table):
    for seed in range(5):
        meter = StepMeter(table, seed=seed, budget=6 + 3)  # M = min(4, 6) = 4 screened, K = (9 - 4) // 3 = 1 kept
        assert one_step_top_k(meter) == {"screened": 4, "kept": 1}
        [done] = meter.completions
        screened = _shuffled(table, seed)[:4]
        first = [table.single_run_curve(p, seed)[0] for p in screened]
        assert done.params == screened[min(range(4), key=lambda i: (first[i], i))]


def test_score_picks_the_lowest_observed_final_and_scores_its_mean(table):
    meter = StepMeter(table, seed=0, budget=None)
    order = [{"kind": "a", "width": 1}, {"kind": "c", "width": 2}, {"kind": "b", "width": 1}]
    for p in order:
        meter.open(p).advance(4)
    meter.open({"kind": "c", "width": 1}).advance(2)  # pruned: never an incumbent
    rec = score(table, meter.used, meter.trainings, meter.completions)
    observed = [table.single_run_curve(p, 0)[-1] for p in order]
    best_i = min(range(3), key=lambda i: (observed[i], i))
    assert rec["incumbent"] == order[best_i] and rec["observed"] == observed[best_i]
    mean = {p["kind"] + str(p["width"]): sum(c[-1] for c in CURVES[(p["kind"], p["width"])]) / 2 for p in order}
    assert table.best == pytest.approx(0.06)  # b1: (0.05 + 0.07) / 2
    assert rec["regret"] == pytest.approx(mean[order[best_i]["kind"] + str(order[best_i]["width"])] - 0.06)
    assert rec["steps"] == 14 and rec["trainings"] == 4 and rec["completed"] == 3
    # the trajectory: a new pair each time the observed best improves, at the steps used then
    traj = rec["trajectory"]
    assert traj[0][0] == 4 and traj[-1][1] == pytest.approx(rec["regret"], abs=1e-6)
    assert all(s1 < s2 for (s1, _), (s2, _) in zip(traj, traj[1:]))
    assert regret_at(traj, 3) == math.inf and regret_at(traj, 100) == traj[-1][1]


def test_ties_keep_the_first_complete_training(table):
    meter = StepMeter(table, seed=0, budget=None)
    meter.open({"kind": "a", "width": 2}).advance(4)  # 0.60 in both stored seeds
    meter.open({"kind": "a", "width": 2}).advance(4)
    rec = score(table, meter.used, meter.trainings, meter.completions)
    assert rec["incumbent_at"] == 4


def test_no_complete_training_scores_none(table):
    meter = StepMeter(table, seed=0, budget=3)
    with pytest.raises(BudgetExhausted):
        meter.open({"kind": "b", "width": 1}).advance(4)
    rec = score(table, meter.used, meter.trainings, meter.completions)
    assert rec["regret"] is None and rec["steps"] == 3 and rec["trajectory"] == []


def test_merge_orders_the_ranks_steps_by_time(table):
    ticks = iter(range(1000))
    clock = lambda: float(next(ticks))  # noqa: E731 - one clock shared by two "ranks"
    r0 = StepMeter(table, 0, None, stamp=True, clock=clock)
    r1 = StepMeter(table, 0, None, stamp=True, clock=clock)
    t0, t1 = r0.open({"kind": "b", "width": 1}), r1.open({"kind": "c", "width": 1})
    for s in range(1, 5):  # interleaved: r0 step, r1 step, ...
        t0.advance(s)
        t1.advance(s)
    used, trainings, comps = merge([r0.part(), r1.part()])
    assert used == 8 and trainings == 2
    assert [c.used for c in comps] == [7, 8]  # r0 completed at the 7th step of the two, r1 at the 8th


def test_steps_to_reach_uses_the_median_best_so_far_curve():
    trajs = [[[10, 0.5], [30, 0.1]], [[20, 0.2]], [[5, 0.9], [50, 0.05]]]
    assert steps_to_reach(trajs, 0.2) == 30  # at 30: 0.1, 0.2, 0.9 -> median 0.2
    assert steps_to_reach(trajs, 0.5) == 20  # at 20: 0.5, 0.2, 0.9 -> median 0.5
    assert steps_to_reach(trajs, 0.01) is None


def test_wins_ties_losses_compare_medians_within_1e9():
    from pruningbench.report import versus

    def cell(median: float) -> dict:
        return {"regrets": [median], "median": median, "at_budget": [median + 1.0]}

    cs = {("t1", 20, "a"): cell(0.1), ("t1", 20, "b"): cell(0.2),
          ("t2", 20, "a"): cell(0.3), ("t2", 20, "b"): cell(0.3 + 5e-10),
          ("t3", 20, "a"): cell(0.5), ("t3", 20, "b"): cell(0.4),
          ("t4", 20, "a"): cell(0.5)}  # b not run on t4: not counted
    rows = [("t1", 20), ("t2", 20), ("t3", 20), ("t4", 20)]
    assert versus(cs, rows, "a", "b") == [1, 1, 1]
    assert versus(cs, rows, "a", "b", strict=True) == [0, 0, 3]  # a scored at exactly N


def test_resume_pruned_continues_the_furthest_first_within_what_is_left(table):
    pruned = [({"kind": "a", "width": 1}, 1, 0.30), ({"kind": "b", "width": 1}, 2, 0.50),
              ({"kind": "c", "width": 1}, 2, 0.40)]
    comps = resume_pruned(table, seed=0, left=5, pruned=pruned, start=100)
    # c (step 2, lower value) first: 2 steps; then b: 2 steps; a would need 3 more: only 1 left
    assert [c.params["kind"] for c in comps] == ["c", "b"]
    assert [c.used for c in comps] == [102, 104]
    assert resume_pruned(table, 0, 0, pruned, 7) == []


def test_pruning_luck_replays_every_setting_and_asha_trains_a_third(tmp_path):
    """bench/pruning_luck.py: one row per (epochs, trainings, pruner); ASHA trains exactly a third of the epochs the
    unpruned search trains, which trains every training to its end."""
    import subprocess

    out = tmp_path / "luck.md"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "pruning_luck.py"), "--seeds", "2", "--epochs", "3,9",
                           "--per-worker", "3", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in out.read_text().splitlines() if line.startswith("| ")]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[1:]]  # (the header row first)
    assert [(r[0], r[1], r[2]) for r in rows] == [("3", "3", "none"), ("3", "3", "asha"), ("9", "3", "none"),
                                                  ("9", "3", "asha")]
    for epochs in (3, 9):
        none, asha = (float(r[3]) for r in rows if r[0] == str(epochs))
        assert none == 4 * 3 * epochs and asha == none // 3
