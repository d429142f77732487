"""direction="maximize" and the metric's name on every surface: the result, callbacks, log lines, the checkpoint,
load(), tables, plots, the command line, the Lightning objective and run.py."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import evohpo
from evohpo import Choice, Float
from evohpo.core.goal import Goal
from evohpo.journal.directory import CheckpointMismatch
from evohpo.parallel.progress import ProgressBar
from evohpo.results import cli
from evohpo.results.load import load

SPACE = {"x": Float(0.0, 1.0), "act": Choice(["relu", "tanh"])}
ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = Path(sys.executable).parent / "mpiexec"


def accuracy(p: dict[str, Any]) -> float:
    """Highest (0.9) at x = 0.3 with relu; always in (0, 1)."""
    return 0.9 - (p["x"] - 0.3) ** 2 - (0.1 if p["act"] == "tanh" else 0.0)


@pytest.fixture(scope="module")
def maximized(tmp_path_factory):
    """A maximizing search with a checkpoint, its result and every value the objective returned."""
    directory = tmp_path_factory.mktemp("max")
    returned: dict[str, float] = {}
    calls = iter(range(10**6))

    def fn(p: dict[str, Any]) -> float:
        if next(calls) in (2, 5):
            raise ValueError("diverged")
        returned[json.dumps(p, sort_keys=True)] = v = accuracy(p)
        return v

    result = evohpo.optimize(fn, SPACE, generations=40, seed=1, checkpoint=str(directory), direction="maximize",
                             metric="val_acc")
    return directory, result, returned


# --- validation ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,pattern", [
    ({"direction": "max"}, "direction='max'"), ({"direction": "MAXIMIZE"}, "direction='MAXIMIZE'"),
    ({"direction": ""}, "direction=''"), ({"metric": ""}, "metric=''"), ({"metric": " acc"}, "metric=' acc'"),
    ({"metric": 3}, "metric=3"), ({"metric": "status"}, "metric='status'"),
    ({"metric": "param.x"}, "metric='param.x'"),
])
def test_bad_direction_or_metric_names_the_argument_and_value(kwargs, pattern) -> None:
    with pytest.raises(ValueError, match=pattern.replace(".", r"\.")):
        evohpo.optimize(accuracy, SPACE, generations=1, **kwargs)


def test_goal_converts_both_ways_and_keeps_non_finite_values() -> None:
    g = Goal("maximize", "val_acc")
    assert g.loss(0.98) == -0.98 and g.value(-0.98) == 0.98
    assert math.copysign(1.0, g.value(0.0)) == 1.0  # no "-0"
    assert math.isnan(g.loss(math.nan)) and g.loss(math.inf) == math.inf
    assert Goal().value(0.5) == 0.5 and Goal().loss(0.5) == 0.5
    assert str(g) == "maximize val_acc" and g.better == "higher is better"


# --- the result ---------------------------------------------------------------------------------------------
def test_maximize_finds_the_highest_value_and_the_result_shows_it(maximized) -> None:
    _, result, returned = maximized
    assert result.direction == "maximize" and result.metric == "val_acc"
    assert result.best_value == max(returned.values()) > 0.85
    assert result.best.loss == -result.best_value  # inside, the search minimizes the signed loss
    assert result.top_values == sorted(result.top_values, reverse=True)
    assert result.top_values == [result.value(i) for i in result.top]
    assert result.top_values[0] == result.best_value
    assert all(v in returned.values() for v in result.top_values)


def test_minimize_is_the_default_and_unchanged() -> None:
    result = evohpo.optimize(accuracy, SPACE, generations=20, seed=2)
    assert (result.direction, result.metric) == ("minimize", "loss")
    assert result.best_value == result.best.loss < 0.7  # the lowest "accuracy"


def test_callbacks_get_the_signed_loss_and_a_way_to_read_the_value() -> None:
    seen: list[tuple[float, float, float]] = []

    class Probe(evohpo.Callback):
        def on_start(self, search: evohpo.SearchInfo) -> None:
            self.search = search

        def on_result(self, ind: evohpo.Individual) -> None:
            seen.append((ind.loss, self.search.value(ind), accuracy(ind.params)))

    probe = Probe()
    evohpo.optimize(accuracy, SPACE, generations=5, direction="maximize", metric="acc", callbacks=[probe])
    assert (probe.search.direction, probe.search.metric) == ("maximize", "acc")
    assert len(seen) == 5
    for loss, value, expected in seen:
        assert value == pytest.approx(expected) and loss == pytest.approx(-expected)


def test_a_non_finite_value_fails_quoting_what_the_objective_returned() -> None:
    def fn(p: dict[str, Any]) -> float:
        return math.inf if p["act"] == "tanh" else accuracy(p)

    errors: list[str] = []
    result = evohpo.optimize(fn, SPACE, generations=12, seed=4, direction="maximize",
                             callbacks=[lambda ind: ind.error and errors.append(ind.error)])
    assert result.n_failed == len(errors) > 0
    assert all(e == "loss_fn returned inf" for e in errors)
    assert result.best_value == max(accuracy(i.params) for i in result.top)


def test_final_log_line_and_progress_lines_show_the_value(caplog) -> None:
    caplog.set_level(logging.INFO, logger="evohpo")
    result = evohpo.optimize(accuracy, SPACE, generations=10, direction="maximize", metric="val_acc",
                             progress_interval=0.0)
    text = caplog.text
    assert f"best val_acc {result.best_value:.6g}" in text
    assert "evaluations 10/10, best val_acc 0." in text  # the last progress line
    assert "best loss" not in text and "best val_acc -" not in text


def test_progress_bar_line_shows_metric_and_value(caplog) -> None:
    caplog.set_level(logging.INFO, logger="evohpo")
    ProgressBar(10, None, tty=False, goal=Goal("maximize", "val_acc")).update(4, -0.975, 2.0, 2.0)
    ProgressBar(10, None, tty=False).update(4, 0.5, 2.0, 2.0)
    assert "evaluations 4/10, best val_acc 0.975," in caplog.text
    assert "evaluations 4/10, best loss 0.5," in caplog.text


# --- the objective's own direction ----------------------------------------------------------------------------
class Accuracy:
    direction = "maximize"
    metric = "accuracy"

    def __call__(self, p: dict[str, Any]) -> float:
        return accuracy(p)


def test_an_objective_declares_its_direction_and_metric() -> None:
    result = evohpo.optimize(Accuracy(), SPACE, generations=10, seed=3)
    assert (result.direction, result.metric) == ("maximize", "accuracy") and result.best_value > 0
    assert evohpo.optimize(Accuracy(), SPACE, generations=2, metric="acc").metric == "acc"
    with pytest.raises(ValueError, match="direction='minimize' contradicts the objective's own "
                                         "direction='maximize'"):
        evohpo.optimize(Accuracy(), SPACE, generations=2, direction="minimize")


# --- the checkpoint -----------------------------------------------------------------------------------------
def test_meta_records_the_goal_and_a_resume_with_another_direction_is_refused(maximized, tmp_path) -> None:
    directory, _, _ = maximized
    meta = json.loads((directory / "meta.json").read_text())
    assert (meta["direction"], meta["metric"]) == ("maximize", "val_acc")
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in directory.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    with pytest.raises(CheckpointMismatch, match="direction.*'maximize'.*'minimize'"):
        evohpo.optimize(accuracy, SPACE, generations=45, checkpoint=str(copy))
    result = evohpo.optimize(accuracy, SPACE, generations=45, checkpoint=str(copy), direction="maximize",
                             metric="val_acc")
    assert result.resumed > 0 and result.n_evaluations == 5 and result.best_value > 0.85


def test_old_checkpoints_are_minimize_loss(tmp_path) -> None:
    evohpo.optimize(accuracy, SPACE, generations=6, checkpoint=str(tmp_path))
    meta_path = tmp_path / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["direction"], meta["metric"]
    meta_path.write_text(json.dumps(meta))
    r = load(tmp_path)
    assert (r.direction, r.metric) == ("minimize", "loss")
    with pytest.raises(CheckpointMismatch, match="direction='minimize'.*direction='maximize'"):
        evohpo.optimize(accuracy, SPACE, generations=8, checkpoint=str(tmp_path), direction="maximize")


# --- load, tables, plots, command line ---------------------------------------------------------------------
def test_load_reads_the_goal_and_ranks_best_first(maximized) -> None:
    directory, result, _ = maximized
    r = evohpo.load(directory)
    assert (r.direction, r.metric) == ("maximize", "val_acc")
    best = r.best(3)
    assert [r.value(i) for i in best] == sorted((r.value(i) for i in best), reverse=True)
    assert r.value(best[0]) == result.best_value
    assert f"best val_acc {result.best_value:.6g}" in repr(r)
    assert r.value(next(i for i in r.individuals if not i.ok)) != r.value(best[0])  # nan for a failure


def test_dataframe_and_csv_have_a_column_named_after_the_metric(maximized, tmp_path, capsys) -> None:
    pytest.importorskip("pandas")
    directory, result, returned = maximized
    df = load(directory).to_dataframe()
    assert "val_acc" in df.columns and list(df.columns).index("val_acc") == list(df.columns).index("loss") + 1
    ok = df[df["status"] == "ok"]
    assert (ok["val_acc"] > 0).all() and (ok["val_acc"] == -ok["loss"]).all()
    assert df["val_acc"].max() == result.best_value
    assert df.loc[df["status"] == "failed", "val_acc"].isna().all()
    out = tmp_path / "r.csv"
    assert cli.main(["csv", str(directory), "-o", str(out)]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert "val_acc" in header


def test_summary_shows_the_goal_and_the_values(maximized, capsys) -> None:
    directory, result, _ = maximized
    assert cli.main(["summary", str(directory), "--top", "3"]) == 0
    text = capsys.readouterr().out
    assert "goal: maximize val_acc (higher is better)" in text
    header = next(ln for ln in text.splitlines() if ln.split()[:2] == ["#", "val_acc"])
    first = text.splitlines()[text.splitlines().index(header) + 1].split()
    assert float(first[1]) == pytest.approx(result.best_value, rel=1e-5)
    assert not any(ln.split()[1].startswith("-") for ln in text.splitlines()[text.splitlines().index(header) + 1:]
                   if len(ln.split()) > 1 and ln.split()[0].isdigit())


def test_plot_labels_the_metric_and_better_is_up(maximized, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    directory, result, _ = maximized
    fig = load(directory).plot(tmp_path / "p.png")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert axes[0].get_ylabel() == "best val_acc so far (higher is better)"
    assert all(ax.get_ylabel() == "val_acc" for ax in axes[2:])
    assert f"best val_acc {result.best_value:.4g}" in axes[0].get_title()
    y = [line.get_ydata() for line in axes[0].get_lines()]
    finite = [v for ys in y for v in ys if math.isfinite(v)]
    assert max(finite) == pytest.approx(result.best_value) and min(finite) > 0  # the values, rising
    assert cli.main(["plot", str(directory), "-o", str(tmp_path / "q.png")]) == 0


def test_watch_shows_the_value(maximized, capsys) -> None:
    pytest.importorskip("tqdm")
    directory, result, _ = maximized
    assert cli.main(["watch", str(directory), "--interval", "0.01"]) == 0
    captured = capsys.readouterr()
    assert f"best val_acc={result.best_value:.4g}" in captured.err
    assert "goal: maximize val_acc" in captured.out


# --- the Lightning objective and run.py --------------------------------------------------------------------
def test_lightning_objective_declares_its_direction() -> None:
    from evohpo.hpo.objective import LightningObjective

    acc, loss = LightningObjective(None, metric="val_acc"), LightningObjective(None, metric="val_loss")
    assert (acc.direction, acc.metric) == ("maximize", "val_acc")
    assert (loss.direction, loss.metric) == ("minimize", "val_loss")
    assert Goal.of(acc) == Goal("maximize", "val_acc")


def test_tensorboard_progress_logs_the_metric_as_it_is(monkeypatch, tmp_path) -> None:
    from evohpo.core.migration import IslandLayout
    from evohpo.hpo.tensorboard import TensorBoardProgress

    logged: list[tuple[str, float]] = []

    class Writer:
        def add_scalar(self, tag: str, value: float, **kwargs: Any) -> None:
            logged.append((tag, value))

    tb = TensorBoardProgress(tmp_path)
    monkeypatch.setattr(tb, "_writer", lambda island: Writer())
    tb.on_start(evohpo.SearchInfo(0, 1, 0, 0, IslandLayout.make(1, 1), goal=Goal("maximize", "val_acc")))
    for k, acc in enumerate([0.5, 0.7, 0.6]):
        tb.on_result(evohpo.Individual(f"0-{k}", {}, loss=-acc))
    best = [v for tag, v in logged if tag == "best_val_acc/island_0"]
    assert best == [0.5, 0.7, 0.7]
    assert [v for tag, v in logged if tag == "val_acc/island_0"] == [0.5, 0.7, 0.6]


def _run_py() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("evohpo_run_py", ROOT / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_py_reports_the_accuracy_as_it_is(capsys) -> None:
    run_py = _run_py()
    assert run_py.DIRECTIONS == {"val_acc": "maximize", "val_loss": "minimize"}
    result = evohpo.optimize(accuracy, SPACE, generations=4, direction="maximize", metric="val_acc")
    run_py._report(result, "cpu", 1)
    out = capsys.readouterr().out
    assert f"best: val accuracy {result.best_value:.4f}" in out and result.best_value > 0


# --- MPI -----------------------------------------------------------------------------------------------------
@pytest.mark.mpi
@pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")
def test_two_ranks_agree_on_the_maximized_value(tmp_path) -> None:
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, "-m", "mpi4py", str(Path(__file__).parent / "mpi_direction.py"),
           str(tmp_path / "ckpt")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [json.loads(ln[len("RESULT "):]) for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert len(lines) == 1, proc.stdout[-2000:]
    lines = lines[0]
    assert len(lines) == 2 and lines[0] == lines[1]
    mine = lines[0]
    assert mine["direction"] == "maximize" and mine["best_value"] > 0.85
    assert mine["top_values"] == sorted(mine["top_values"], reverse=True)
    assert "best val_acc 0." in proc.stderr and "best val_acc -" not in proc.stderr
    assert load(tmp_path / "ckpt").value(load(tmp_path / "ckpt").best(1)[0]) == mine["best_value"]
