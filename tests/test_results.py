"""Tests of evohpo.results.load (load, tables, progress, plots) and the command line, on real search directories."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import evohpo
from evohpo import Choice, Float, Int
from evohpo.journal.files import journal_path
from evohpo.results import cli
from evohpo.results.load import PARAM_PREFIX, NoJournals, load

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

SPACE = {"lr": Float(1e-4, 1e-1, log=True), "layers": Int(1, 5), "act": Choice(["relu", "tanh", "sigmoid"])}
GENERATIONS = 60


def quadratic(p: dict) -> float:
    return (math.log10(p["lr"]) + 2.5) ** 2 + 0.1 * p["layers"] + {"relu": 0.0, "tanh": 0.2, "sigmoid": 0.5}[p["act"]]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real search's directory, the optimize() result and the configurations on which the loss raised."""
    directory = tmp_path_factory.mktemp("search")
    raised: list[dict] = []

    def loss(p: dict) -> float:
        if p["act"] == "sigmoid" and p["layers"] >= 3:
            raised.append(dict(p))
            raise ValueError(f"diverged with {p['layers']} layers")
        return quadratic(p)

    result = evohpo.optimize(loss, SPACE, generations=GENERATIONS, checkpoint=str(directory), seed=0)
    assert raised, "the seed must give some failures for these tests to mean something"
    return directory, result, raised


def copy(directory: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(directory, target)
    return target


# --- load ---------------------------------------------------------------------------------------------------
def test_counts_match_the_run(run):
    directory, result, raised = run
    r = load(directory)
    c = r.counts
    assert c["ok"] + c["failed"] == GENERATIONS == c["evaluations"] == len(r)
    assert c["failed"] == len(raised) == result.n_failed
    assert c["pruned"] == c["in_flight"] == c["interrupted"] == 0
    assert r.torn == 0 and r.finished and r.ranks == [0]
    assert 0 < r.elapsed < result.elapsed + 1.0
    failed = [i for i in r.individuals if i.status == "failed"]
    assert sorted(i.params["layers"] for i in failed) == sorted(p["layers"] for p in raised)
    assert all("ValueError: diverged" in i.error and math.isinf(i.loss) for i in failed)


def test_best_is_sorted_and_equals_the_optimize_top(run):
    directory, result, _ = run
    r = load(directory)
    best = r.best(5)
    assert len(best) == 5
    assert [i.loss for i in best] == sorted(i.loss for i in best)
    assert best == result.top[:5]  # every field but params (compare=False) ...
    assert [i.params for i in best] == [i.params for i in result.top[:5]]  # ... and params
    assert best[0].loss == min(i.loss for i in r.individuals if i.ok) == result.best.loss
    assert r.best(0) == [] and len(r.best(1000)) == r.counts["ok"]
    with pytest.raises(ValueError, match="n=-1"):
        r.best(-1)
    assert r.islands() == {0: result.best}
    assert r.space == evohpo.Space(SPACE) and r.n_islands == 1


def test_progress_is_the_running_minimum(run):
    directory, result, _ = run
    prog = load(directory).progress()
    assert set(prog) == {"all", 0}
    p = prog["all"]
    assert len(p) == GENERATIONS and list(p.evaluations) == list(range(1, GENERATIONS + 1))
    assert np.all(np.diff(p.best) <= 0) and np.all(np.diff(p.time) >= 0) and p.time[0] >= 0
    assert p.best[-1] == result.best.loss
    assert np.array_equal(p.best, np.minimum.accumulate(p.loss))
    assert np.isinf(p.loss).sum() == result.n_failed
    assert np.array_equal(prog[0].best, p.best)  # one island: its curve is the whole search


# --- tables -------------------------------------------------------------------------------------------------
def test_dataframe_columns_and_rows(run):
    directory, result, raised = run
    df = load(directory).to_dataframe()
    params = [PARAM_PREFIX + n for n in SPACE]
    assert list(df.columns) == ["id", "island", "lives_on", "rank", "generation", "status", "loss", "step", "start",
                                "end", "duration", "error", *params]
    assert df["step"].isna().all()  # the loss function reported no steps
    assert len(df) == GENERATIONS and df["id"].is_unique
    assert (df["status"] == "failed").sum() == len(raised)
    assert df.loc[df["status"] == "failed", "loss"].isna().all()
    assert df.loc[df["status"] == "ok", "error"].isna().all()
    assert df["loss"].min() == result.best.loss
    assert (df["duration"] >= 0).all() and df["end"].is_monotonic_increasing
    assert set(df[PARAM_PREFIX + "act"]) <= {"relu", "tanh", "sigmoid"}
    assert df[PARAM_PREFIX + "layers"].between(1, 5).all() and df[PARAM_PREFIX + "lr"].between(1e-4, 1e-1).all()
    best_row = df.loc[df["loss"].idxmin()]
    assert {n: best_row[PARAM_PREFIX + n] for n in SPACE} == result.best.params


def test_csv_round_trip(run, tmp_path):
    directory, _, _ = run
    r = load(directory)
    path = tmp_path / "results.csv"
    r.to_csv(path)
    back = pd.read_csv(path)
    df = r.to_dataframe()
    assert list(back.columns) == list(df.columns) and len(back) == len(df)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)  # error: None reads back as NaN
    assert cli.main(["csv", str(directory), "-o", str(tmp_path / "cli.csv")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cli.csv"), back)


# --- command line -------------------------------------------------------------------------------------------
def test_summary_prints_the_best_and_the_counts(run, capsys):
    directory, result, raised = run
    assert cli.main(["summary", str(directory), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert f"{result.best.loss:.6g}" in out and result.best.id in out
    assert f"{GENERATIONS} finished ({GENERATIONS - len(raised)} ok, {len(raised)} failed, 0 pruned)" in out
    assert "0 in flight" in out and "status: finished" in out and "top 3 of" in out
    table = out[out.index("top 3 of"):].splitlines()
    assert table[1].split() == ["#", "loss", "id", "island", "lr", "layers", "act"]
    assert [row.split()[2] for row in table[2:5]] == [i.id for i in result.top[:3]]


def test_plot_renders_a_png_of_the_real_run(run, tmp_path):
    directory, _, _ = run
    out = tmp_path / "progress.png"
    assert cli.main(["plot", str(directory), "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    fig = load(directory).plot()
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2 + len(SPACE)
    by_label = {ax.get_xlabel(): ax for ax in axes}
    assert by_label["lr"].get_xscale() == "log" and by_label["layers"].get_xscale() == "linear"
    assert [t.get_text() for t in by_label["act"].get_xticklabels()] == ["relu", "tanh", "sigmoid"]


def test_missing_or_empty_directory_exits_2_naming_the_path(tmp_path, capsys):
    missing = tmp_path / "no-such-dir"
    for command in (["summary"], ["plot"], ["csv"]):
        assert cli.main([*command, str(missing)]) == 2
        err = capsys.readouterr().err
        assert str(missing) in err and "does not exist" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["summary", str(empty)]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "no journals" in err
    with pytest.raises(NoJournals, match="no journals"):
        load(empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(missing)


def test_module_entry_point_runs(run):
    directory, result, _ = run
    done = subprocess.run([sys.executable, "-m", "evohpo", "summary", str(directory)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{result.best.loss:.6g}" in done.stdout
    missing = subprocess.run([sys.executable, "-m", "evohpo", "summary", str(directory / "nope")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and str(directory / "nope") in missing.stderr


def test_watch_on_a_finished_search_prints_the_summary_and_exits(run, capsys):
    directory, result, _ = run
    assert cli.main(["watch", str(directory), "--interval", "0.05"]) == 0
    assert f"{result.best.loss:.6g}" in capsys.readouterr().out


# --- a directory being written ------------------------------------------------------------------------------
def test_torn_last_line_still_loads(run, tmp_path, capsys):
    directory, result, _ = run
    d = copy(directory, tmp_path)
    with open(journal_path(d, 0), "ab") as f:
        f.write(b'{"ev":"end","id":"0-999","params":{"lr":0.0')  # half a record, no newline
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the torn line is counted, not warned about
        r = load(d)
    assert r.torn == 1
    assert r.counts == load(directory).counts
    assert r.best(5) == result.top[:5]
    assert len(r.to_dataframe()) == GENERATIONS
    assert cli.main(["summary", str(d)]) == 0
    assert "torn last line of 1 journal" in capsys.readouterr().out


def test_a_read_racing_an_append_is_retried(run, tmp_path, monkeypatch):
    # A reader at the end of a line being appended can see its two halves as two lines, which looks like damage
    # in the middle; load() reads again when a journal grew meanwhile. Reproduced deterministically here.
    import evohpo.results.load as results
    from evohpo.journal.reader import Problem

    d = copy(run[0], tmp_path)
    real, calls = results.examine, []

    def racing(directory, meta):
        calls.append(directory)
        restored, problems = real(directory, meta)
        if len(calls) == 1:
            with open(journal_path(d, 0), "ab") as f:
                f.write(b'{"ev":"resume","resumed":0,"unfinished":0,"t":0}\n')
            problems.append(Problem(journal_path(d, 0), 7, "not a JSON record and not the last line"))
        return restored, problems

    monkeypatch.setattr(results, "examine", racing)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no damage reported
        r = load(d)
    assert r.counts["evaluations"] == GENERATIONS and r.problems == [] and len(calls) == 2


def test_a_damaged_journal_loads_without_its_bad_line_and_says_where(run, tmp_path, capsys):
    d = copy(run[0], tmp_path)
    path = journal_path(d, 0)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:5], b"not json\n", *lines[5:]]))
    with pytest.warns(UserWarning, match=rf"(?s){path.name}: line 6: not a JSON record.*evohpo repair"):
        r = load(d)
    assert r.counts["evaluations"] == GENERATIONS and [(p.path.name, p.line) for p in r.problems] == [(path.name, 6)]
    assert cli.main(["summary", str(d)]) == 0
    out, err = capsys.readouterr()
    assert "damaged: 1 record" in out and f"{path.name}: line 6" in err and "evohpo repair" in err


LIVE = """
import sys, time
import evohpo
from evohpo import Choice, Float, Int

def loss(p):
    time.sleep(0.02)
    if p["act"] == "sigmoid" and p["layers"] >= 3:
        raise ValueError("diverged")
    return p["lr"] * p["layers"]

space = {"lr": Float(1e-4, 1e-1, log=True), "layers": Int(1, 5), "act": Choice(["relu", "tanh", "sigmoid"])}
evohpo.optimize(loss, space, generations=200, checkpoint=sys.argv[1], seed=1, progress_interval=3600)
"""


def test_loading_while_a_search_writes(tmp_path):
    d = tmp_path / "live"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(LIVE), str(d)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen: list[dict[str, int]] = []
    torn = 0
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    r = load(d)
            except FileNotFoundError:  # not created yet, or no journal yet
                time.sleep(0.01)
                continue
            seen.append(r.counts)
            torn += r.torn
            assert len(r.to_dataframe()) == r.counts["evaluations"]
            time.sleep(0.005)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert len(seen) >= 10, f"only {len(seen)} reads while the search ran"
    for before, after in zip(seen, seen[1:]):
        for key in ("evaluations", "ok", "failed"):
            assert after[key] >= before[key], (before, after)
    assert all(c["in_flight"] <= 1 and c["interrupted"] == 0 for c in seen)
    assert any(0 < c["evaluations"] < 200 for c in seen), "no read saw the search half way"
    final = load(d)
    assert final.finished and final.torn == 0
    assert final.counts["evaluations"] == 200 and final.counts["in_flight"] == 0
    assert final.counts["ok"] + final.counts["failed"] == 200
    assert final.counts["failed"] == sum(1 for i in final.individuals if i.params["act"] == "sigmoid"
                                         and i.params["layers"] >= 3)
