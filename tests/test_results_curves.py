"""Learning curves read back from a checkpoint directory (``Results.curves``), the pruned status and the step in the
table, the summary's step lines and the plot's learning-curve panel, on journals written record by record."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import evohpo
from evohpo import Choice, Float, Individual
from evohpo.core.goal import Goal
from evohpo.journal import records
from evohpo.journal.damage import DamagedCheckpointWarning
from evohpo.journal.directory import search_meta
from evohpo.journal.writer import Journal
from evohpo.results import cli
from evohpo.results.load import load

pd = pytest.importorskip("pandas")
LineCollection = pytest.importorskip("matplotlib.collections").LineCollection

SPACE = {"lr": Float(1e-4, 1e-1, log=True), "act": Choice(["relu", "tanh"])}


def params(k: int) -> dict:
    return {"lr": 10.0 ** -(1 + k % 3), "act": ["relu", "tanh"][k % 2]}


class Search:
    """Writes a search's journal as the worker would: start, reports, end (losses signed as the goal says)."""

    def __init__(self, directory: Path, goal: Goal, rank: int = 0, islands: int = 1) -> None:
        self.directory, self.goal, self.rank, self.t = directory, goal, rank, 100.0
        meta = search_meta(evohpo.Space(SPACE).describe(), [1] * islands, 1, goal=goal)  # one journal
        (directory / "meta.json").write_text(json.dumps(meta))
        self.journal = Journal(directory, rank)
        self.write(records.opened(rank, self.t))
        self.starts: dict[str, tuple[float, dict, int]] = {}

    def write(self, rec: dict) -> None:
        self.journal.write(rec)
        self.t += 1.0

    def start(self, ind_id: str, k: int, island: int = 0) -> None:
        self.starts[ind_id] = (self.t, params(k), island)
        self.write(records.start(ind_id, params(k), island, k, self.t))

    def report(self, ind_id: str, step: int, value: float, **metrics: float) -> None:
        self.write(records.report(ind_id, step, self.goal.loss(value), self.t, metrics))

    def end(self, ind_id: str, status: str, value: float | None = None, step: int | None = None,
            error: str | None = None) -> None:
        t0, p, island = self.starts[ind_id]
        loss = math.inf if value is None else self.goal.loss(value)
        self.write(records.end(Individual(ind_id, p, loss, status, island, self.rank, 0, t0, self.t, error, step)))

    def close(self, reason: str = "budget reached", evals: int = 0) -> None:
        self.write(records.done(reason, evals, self.t))
        self.journal.close()


def write_search(directory: Path, direction: str = "minimize") -> Search:
    """ok a (3 points, one without a metric), pruned b, failed c, d re-run after a crash (two attempts), e ok
    without reports, f still running; maximizing writes minus the values."""
    s = Search(directory, Goal(direction, "accuracy" if direction == "maximize" else "loss"))
    s.start("0-0", 0)
    s.report("0-0", 1, 0.9, acc=0.5)
    s.report("0-0", 2, 0.5, acc=0.7)
    s.report("0-0", 3, 0.3)
    s.end("0-0", "ok", 0.3, step=3)
    s.start("0-1", 1)
    s.report("0-1", 1, 1.2, acc=0.1)
    s.end("0-1", "pruned", 1.2, step=1)
    s.start("0-2", 2)
    s.report("0-2", 1, 0.8)
    s.end("0-2", "failed", None, step=1, error="ValueError: diverged")
    s.start("0-3", 3)
    s.report("0-3", 1, 2.0)
    s.report("0-3", 2, 1.9)  # then a crash: no end; the next run re-runs it from the start
    s.write(records.resume(3, 1, s.t))
    s.start("0-3", 3)
    s.report("0-3", 1, 0.7)
    s.report("0-3", 2, 0.4)
    s.end("0-3", "ok", 0.4, step=2)
    s.start("0-4", 4)
    s.end("0-4", "ok", 0.6)
    s.start("0-5", 5)
    s.report("0-5", 1, 1.0)
    s.journal.close()
    return s


@pytest.fixture
def search(tmp_path: Path) -> Path:
    write_search(tmp_path)
    return tmp_path


def test_curves_keep_the_latest_attempt_with_each_status(search: Path) -> None:
    curves = load(search).curves()
    assert list(curves) == ["0-0", "0-1", "0-2", "0-3", "0-5"]  # by start of the latest attempt; 0-4 never reported
    assert {k: c.status for k, c in curves.items()} == {"0-0": "ok", "0-1": "pruned", "0-2": "failed", "0-3": "ok",
                                                        "0-5": "running"}
    a = curves["0-0"]
    assert a.steps.dtype.kind == "i" and a.steps.tolist() == [1, 2, 3] and a.values.tolist() == [0.9, 0.5, 0.3]
    assert list(a.metrics) == ["acc"] and a.metrics["acc"][:2].tolist() == [0.5, 0.7] and np.isnan(a.metrics["acc"][2])
    assert a.params == params(0) and a.island == 0 and len(a) == 3 and a.last_step == 3 and a.last == 0.3
    d = curves["0-3"]
    assert d.steps.tolist() == [1, 2] and d.values.tolist() == [0.7, 0.4]  # only the re-run's points
    assert d.metrics == {}
    with pytest.raises(ValueError):
        a.values[0] = 1.0  # read-only


def test_maximizing_gives_the_values_back_unsigned(tmp_path: Path) -> None:
    write_search(tmp_path, "maximize")
    r = load(tmp_path)
    curves = r.curves()
    assert curves["0-0"].values.tolist() == [0.9, 0.5, 0.3] and curves["0-1"].values.tolist() == [1.2]
    assert curves["0-0"].metrics["acc"][:2].tolist() == [0.5, 0.7]  # metrics are never signed
    df = r.to_dataframe()
    pruned = df[df["status"] == "pruned"].iloc[0]
    assert pruned["accuracy"] == 1.2 and pruned["loss"] == -1.2
    # maximizing, the pruned 1.2 is higher than every ok value, yet the best is an ok one
    assert r.best(1)[0].id == "0-4" and r.value(r.best(1)[0]) == 0.6
    assert [i.id for i in r.ranked] == ["0-4", "0-3", "0-0"]


def test_curves_frame_is_one_row_a_point(search: Path) -> None:
    df = load(search).curves_frame()
    assert list(df.columns) == ["id", "island", "status", "step", "value", "metric.acc"]
    assert len(df) == 3 + 1 + 1 + 2 + 1 and df.attrs["metric"] == "loss"
    a = df[df["id"] == "0-0"]
    assert a["step"].tolist() == [1, 2, 3] and a["value"].tolist() == [0.9, 0.5, 0.3]
    assert a["metric.acc"].isna().tolist() == [False, False, True]
    assert df.set_index("id")["status"].to_dict()["0-5"] == "running"
    assert df["step"].dtype.kind == "i"


def test_a_torn_last_line_is_skipped(search: Path) -> None:
    with open(search / "journal-r0000.jsonl", "a") as f:
        f.write('{"ev":"report","id":"0-5","step":2,"lo')
    r = load(search)
    assert r.torn == 1 and not r.problems
    assert r.curves()["0-5"].steps.tolist() == [1]


def test_the_table_shows_pruned_values_and_steps(search: Path, tmp_path_factory) -> None:
    r = load(search)
    df = r.to_dataframe().set_index("id")
    assert df["status"].to_dict() == {"0-0": "ok", "0-1": "pruned", "0-2": "failed", "0-3": "ok", "0-4": "ok"}
    assert df.loc["0-1", "loss"] == 1.2 and math.isnan(df.loc["0-2", "loss"])
    assert df["step"].dtype == "Int64"
    assert df["step"].tolist()[:4] == [3, 1, 1, 2] and pd.isna(df.loc["0-4", "step"])
    assert [i.id for i in r.best(10)] == ["0-0", "0-3", "0-4"]  # the pruned 1.2 is no result
    assert r.counts["pruned"] == 1 and r.counts["in_flight"] == 1
    out = tmp_path_factory.mktemp("csv") / "r.csv"
    assert cli.main(["csv", str(search), "-o", str(out)]) == 0
    back = pd.read_csv(out).set_index("id")
    assert back.loc["0-1", "step"] == 1 and pd.isna(back.loc["0-4", "step"]) and back.loc["0-1", "loss"] == 1.2
    assert "0-0,0,0,0,0,ok,0.3,3," in out.read_text()  # the step is written as an int
    assert cli.main(["csv", str(search), "--curves", "-o", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), r.curves_frame(), check_dtype=False)


def test_summary_counts_pruned_and_steps(search: Path, capsys) -> None:
    assert cli.main(["summary", str(search)]) == 0
    out = capsys.readouterr().out
    assert "5 finished (3 ok, 1 failed, 1 pruned), 1 in flight" in out
    assert "steps: 7 in all, 1.8 per training (4 trainings reported)" in out  # 3 + 1 + 1 + 2; 0-4 reported none
    assert "pruning saved 42% of the steps (12 if every training had run to step 3)" in out
    assert "trainings that reached step 1: 4, 2: 2, 3: 1" in out
    assert "top 3 of 3 ok" in out


def test_summary_says_why_trainings_were_pruned(tmp_path: Path, capsys) -> None:
    s = Search(tmp_path, Goal())
    whys = ["pruned at step 1 (value 2): not among the best at step 1 (7 trainings of the island reached it)",
            "pruned at step 3 (value 1.5): not among the best at step 3 (6 trainings of the island reached it)",
            "pruned at step 2 (value 1): the search's step budget is used up (its worker had 2 of it left when the "
            "training started)", None]  # None: a journal from before the reason was kept
    for k, why in enumerate(whys):
        s.start(f"0-{k}", k)
        s.report(f"0-{k}", 1, 2.0)
        s.end(f"0-{k}", "pruned", 2.0, step=1, error=why)
    s.start("0-9", 9)
    s.end("0-9", "ok", 0.5)
    s.close(evals=5)
    assert cli.main(["summary", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "pruned: 2 by the pruner, 1 where the step budget ran out, 1 without a recorded reason" in out
    assert evohpo.load(tmp_path).to_dataframe()["error"].tolist()[:3] == whys[:3]


def test_summary_of_a_search_without_reports_has_no_step_line(tmp_path: Path) -> None:
    s = Search(tmp_path, Goal())
    for k in range(3):
        s.start(f"0-{k}", k)
        s.end(f"0-{k}", "ok", 1.0 + k)
    s.close(evals=3)
    r = load(tmp_path)
    assert r.curves() == {} and "steps:" not in r.summary() and len(r.curves_frame()) == 0
    assert list(r.curves_frame().columns) == ["id", "island", "status", "step", "value"]
    fig = r.plot()
    assert not [ax for ax in fig.axes if ax.get_visible() and ax.get_xlabel() == "step"]


def _curve_axes(fig):
    (ax,) = [ax for ax in fig.axes if ax.get_visible() and ax.get_xlabel() == "step"]
    return ax


def test_plot_draws_the_curves_pruned_fainter_than_ok(search: Path, tmp_path: Path) -> None:
    r = load(search)
    fig = r.plot(tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2 + 1 + len(SPACE)
    ax = _curve_axes(fig)
    groups = {c.get_gid(): c for c in ax.collections if isinstance(c, LineCollection)}
    assert set(groups) == {"curves-ok", "curves-pruned", "curves-failed", "curves-other"}
    (ends,) = [c for c in ax.collections if c.get_gid() == "curves-pruned-end"]  # where the pruned ones stopped
    assert ends.get_offsets().tolist() == [[1.0, 1.2]]
    assert len(groups["curves-ok"].get_segments()) == 2 and len(groups["curves-pruned"].get_segments()) == 1
    assert groups["curves-pruned"].get_alpha() < groups["curves-ok"].get_alpha()
    assert groups["curves-pruned"].get_linewidth()[0] < groups["curves-ok"].get_linewidth()[0]
    (best,) = [ln for ln in ax.get_lines() if ln.get_gid() == "curves-best"]
    assert best.get_ydata().tolist() == [0.9, 0.5, 0.3]  # 0-0 is the best ok one
    assert "2 ok, 1 pruned, 1 failed, 1 running" in ax.get_title()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "pruned (1)" in labels and "failed (1)" in labels and "best" in labels
    # the pruned training is no failure in the parameter panels: drawn faint at its value, not as a red x
    lr = next(a for a in axes if a.get_xlabel() == "lr")
    faint = [c for c in lr.collections if c.get_alpha() == 0.3]
    assert len(faint) == 1 and faint[0].get_offsets()[:, 1].tolist() == [1.2]


def test_plot_scales_to_thousands_of_curves(tmp_path: Path) -> None:
    s = Search(tmp_path, Goal())
    rng = np.random.default_rng(0)
    for k in range(2000):
        ind = f"0-{k}"
        s.start(ind, k)
        last = 1 + (k % 4 == 0) * 26
        for step in range(1, last + 1):
            s.report(ind, step, float(1.0 / step + rng.uniform(0, 0.5)))
        s.end(ind, "ok" if last == 27 else "pruned", float(1.0 / last + 0.1), step=last)
    s.close(evals=2000)
    r = load(tmp_path)
    assert len(r.curves()) == 2000
    ax = _curve_axes(r.plot())
    assert len([c for c in ax.collections if isinstance(c, LineCollection)]) == 2  # one a status, not one a curve
    assert len(ax.get_lines()) <= 2


def test_a_re_run_on_another_rank_replaces_the_curve_and_bad_reports_are_left_out(tmp_path: Path) -> None:
    first = Search(tmp_path, Goal())
    first.start("0-0", 0)
    first.report("0-0", 1, 5.0)
    first.report("0-0", 2, 4.0)  # then the job ends without an end record
    first.write({"ev": "report", "id": "0-0", "step": "3", "loss": 3.0, "t": first.t})  # not an int step: damage
    first.report("0-0", 2, 3.5)  # a step back: left out
    first.journal.close()
    second = Search(tmp_path, Goal(), rank=1)
    second.t = first.t + 10.0  # a later job
    second.start("0-0", 0, island=0)
    second.report("0-0", 1, 0.5)
    second.end("0-0", "ok", 0.5, step=1)
    second.close(evals=1)
    with pytest.warns(DamagedCheckpointWarning, match="line 5"):
        r = load(tmp_path)
    assert [p.line for p in r.problems] == [5]
    (curve,) = r.curves().values()
    assert curve.steps.tolist() == [1] and curve.values.tolist() == [0.5] and curve.status == "ok"
    assert curve.params == params(0)
    (tmp_path / "journal-r0001.jsonl").unlink()  # the re-run never happened: the first attempt is still "running"
    with pytest.warns(DamagedCheckpointWarning):
        (curve,) = load(tmp_path).curves().values()
    assert curve.steps.tolist() == [1, 2] and curve.values.tolist() == [5.0, 4.0] and curve.status == "running"


def test_a_real_search_that_reports_and_prunes(tmp_path: Path) -> None:
    def loss(p: dict) -> float:
        value = math.nan
        for step in range(1, 10):
            value = (p["lr"] - 0.01) ** 2 * 1e4 + 1.0 / step
            evohpo.report(step, 1.0 - value, train=value)
        return 1.0 - value

    evohpo.optimize(loss, SPACE, generations=40, checkpoint=str(tmp_path), seed=0, max_steps=9, direction="maximize",
                    metric="acc")
    r = load(tmp_path)
    curves, df = r.curves(), r.to_dataframe().set_index("id")
    assert len(curves) == len(df) == 40 and r.counts["pruned"] > 0
    for ident, c in curves.items():
        assert c.status == df.loc[ident, "status"] and c.last_step == df.loc[ident, "step"]
        assert c.last == pytest.approx(df.loc[ident, "acc"])  # unsigned, as reported
        assert np.allclose(c.metrics["train"], 1.0 - c.values)
    assert {c.last_step for c in curves.values() if c.status == "ok"} == {9}
    assert all(i.status == "ok" for i in r.best(40))
    assert "pruning saved" in r.summary() and _curve_axes(r.plot()) is not None
