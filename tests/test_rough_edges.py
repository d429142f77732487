"""Rough edges users met: progress after a resume, ``evohpo csv DIR | head``, ``watch`` on a finished search, and
a plot squashed by outliers and covered by its legends."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import evohpo
from evohpo.core.population import Population
from evohpo.journal.files import journal_path
from evohpo.parallel.progress import ProgressBar, ProgressReport
from evohpo.parallel.transport import Tag, ThreadHub
from evohpo.results import cli
from evohpo.results.load import load

SPACE = {"x": (0.0, 1.0)}


def threaded(n: int, directory: Path, loss_of: Any = None, **kwargs: Any) -> None:
    """``optimize`` on ``n`` workers in this process (a thread each, ThreadHub transports) into ``directory``;
    ``loss_of(rank)`` gives each worker its loss."""
    hub = ThreadHub(n)
    errors: list[BaseException] = []

    def work(transport: Any) -> None:
        loss = loss_of(transport.rank) if loss_of else (lambda p: (p["x"] - 0.3) ** 2)
        try:
            evohpo.optimize(loss, SPACE, comm=transport, checkpoint=str(directory), progress_interval=1e9, **kwargs)
        except BaseException as e:  # noqa: B036 - reported below, after freeing the others
            errors.append(e)
            hub.barrier.abort()

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in hub.transports()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)


# --- 1. progress after a resume -----------------------------------------------------------------------------
class Bar:
    """Captures what ProgressReport shows."""

    def __init__(self) -> None:
        self.shown: list[tuple[int, float, float, float]] = []

    def update(self, done: int, best: float, rate: float, elapsed: float) -> None:
        self.shown.append((done, best, rate, elapsed))

    def close(self) -> None:
        pass


def test_progress_after_a_resume_counts_every_restored_evaluation_and_rates_only_this_session() -> None:
    # The checkpoint holds 100 evaluations written by 4 ranks (25 each); the resume runs on 2.
    t0, t1 = ThreadHub(2).transports()
    pops = [Population(SPACE, 4), Population(SPACE, 4)]
    reports = [ProgressReport(t, p, interval=0.0, total=200, time_limit=None, resumed=100)
               for t, p in zip((t0, t1), pops)]
    bar = Bar()
    reports[0].bar = bar
    reports[0].tick(run=1)  # before rank 1's first message: all restored ones, and rank 0's run
    assert bar.shown[-1][0] == 101
    reports[1].tick(run=5)
    [(src, tag, payload)] = t0.poll()
    assert (src, tag) == (1, Tag.PROGRESS)
    reports[0].on_message(src, payload)
    reports[0].tick(run=1)
    done, _, rate, elapsed = bar.shown[-1]
    assert done == 100 + 1 + 5
    assert rate * max(elapsed, 1e-9) == pytest.approx(6)  # this session's 6, never the 100 restored


def test_progress_bar_rate_starts_at_the_restored_evaluations() -> None:
    pytest.importorskip("tqdm")
    bar = ProgressBar(200, None, tty=True, initial=100)
    try:
        bar.update(106, 0.5, 3.0, 2.0)
        shown = bar.bar.format_dict
        assert shown["n"] == 106 and shown["n"] - shown["initial"] == 6  # tqdm's rate: (n - initial) / elapsed
    finally:
        bar.close()


def test_resumed_on_fewer_ranks_the_progress_line_starts_at_the_whole_checkpoint(tmp_path, caplog) -> None:
    directory = tmp_path / "c"
    threaded(2, directory, max_evaluations=20)
    assert load(directory).counts["evaluations"] == 20
    caplog.clear()
    caplog.set_level(logging.INFO, logger="evohpo")
    evohpo.optimize(lambda p: (p["x"] - 0.3) ** 2, SPACE, max_evaluations=30, checkpoint=str(directory),
                    progress_interval=0.0)
    shown = [int(n) for n in re.findall(r"evaluations (\d+)/30", caplog.text)]
    assert shown == list(range(21, 31))


# --- 2. output into a closed pipe ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """A finished search of 3000 evaluations: its CSV is far larger than a pipe's buffer."""
    directory = tmp_path_factory.mktemp("big") / "c"
    evohpo.optimize(lambda p: (p["x"] - 0.3) ** 2, SPACE, max_evaluations=3000, checkpoint=str(directory),
                    progress_interval=1e9)
    return directory


@pytest.mark.parametrize("command", [["csv"], ["summary", "--top", "3000"]])
def test_output_into_a_closed_pipe_ends_quietly_with_0(big, command) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "evohpo", *command, str(big)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        proc.stdout.close()  # like `| head -1`
        err = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert first.startswith("id," if command == ["csv"] else "evohpo results:")
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Broken pipe" not in err and "error" not in err, err


# --- 3. watch -----------------------------------------------------------------------------------------------
def test_watch_on_a_finished_search_shows_its_final_state_without_a_rate(big, capsys) -> None:
    assert cli.main(["watch", str(big), "--interval", "0.1"]) == 0
    out, err = capsys.readouterr()
    for rate in ("eval/s", "it/s", "evaluations/s"):
        assert rate not in out and rate not in err
    best = load(big).best(1)[0].loss
    assert f"the search ended: 3000 evaluations, best loss={best:.4g}" in err
    assert f"{best:.6g}" in out and "top 5 of 3000 ok" in out  # the summary


def test_watch_on_a_running_search_starts_its_bar_at_the_evaluations_done(big, tmp_path, monkeypatch,
                                                                          capsys) -> None:
    tqdm = pytest.importorskip("tqdm")
    running = tmp_path / "running"
    shutil.copytree(big, running)
    path = journal_path(running, 0)
    lines = path.read_text().splitlines(keepends=True)
    last_end = max(k for k, line in enumerate(lines) if line.startswith('{"ev":"end"'))
    path.write_text("".join(lines[:last_end]))  # the last evaluation in flight, the rank not done
    reads = iter([running, big])
    real_load = cli.res.load
    monkeypatch.setattr(cli.res, "load", lambda d: real_load(next(reads)))
    bars: list[Any] = []

    class Recording(tqdm.tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(tqdm, "tqdm", Recording)
    assert cli.main(["watch", str(big), "--interval", "0.01"]) == 0
    [bar] = bars
    assert bar.initial == 2999 and bar.n == 3000  # its rate counts the one evaluation seen while watching
    out, err = capsys.readouterr()
    assert "the search ended: 3000 evaluations" in err and "top 5 of 3000 ok" in out


# --- 4. the plot --------------------------------------------------------------------------------------------
ISLANDS = 3


@pytest.fixture(scope="module")
def outlier(tmp_path_factory) -> Path:
    """Three islands minimizing (x - 0.95)^2 (the best at the right, at the bottom); rank 0's first evaluation
    returns 1000, over 1000x any other."""
    directory = tmp_path_factory.mktemp("outlier") / "c"

    def loss_of(rank: int) -> Any:
        calls = [0]

        def loss(p: dict) -> float:
            calls[0] += 1
            return 1000.0 if rank == 0 and calls[0] == 1 else (p["x"] - 0.95) ** 2

        return loss

    threaded(ISLANDS, directory, loss_of, islands=ISLANDS, generations=40, seed=3)
    return directory


def _best_points(fig: Any, results: Any) -> list[tuple[Any, tuple[float, float]]]:
    """(axes, data point) of the best value on each axes: where each progress curve ends, the star."""
    best = results.best(1)[0]
    value = results.value(best)
    ends = {"evaluations": len(results), "time (s)": best.end - results.start_time}
    out = []
    for ax in fig.axes:
        label = ax.get_xlabel()
        if label in ends:
            out.append((ax, (float(ends[label]), value)))
        elif label == "x":
            out.append((ax, (float(best.params["x"]), value)))
    return out


def test_plot_value_axes_leave_out_the_outlier_but_keep_the_best(outlier) -> None:
    pytest.importorskip("matplotlib")
    results = load(outlier)
    values = np.array([results.value(i) for i in results.ranked])
    assert values.max() == 1000.0 and np.sort(values)[-2] < 1.0
    fig = results.plot()
    points = _best_points(fig, results)
    assert len(points) == 3
    for ax, (_, best) in points:
        low, high = ax.get_ylim()
        assert low <= best < high < 10.0, (ax.get_xlabel(), low, high)
    notes = [t.get_text() for leg in fig.legends for t in leg.get_texts() if "off the value axes" in t.get_text()]
    assert len(notes) == 1 and " above " in notes[0], notes  # the outlier (and any near it), drawn at the edge


def test_plot_maximized_metric_flips_the_clipping(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    directory = tmp_path / "max"
    calls = [0]

    def accuracy(p: dict) -> float:
        calls[0] += 1
        return -1000.0 if calls[0] == 1 else 1.0 - (p["x"] - 0.95) ** 2

    evohpo.optimize(accuracy, SPACE, generations=40, direction="maximize", metric="acc", checkpoint=str(directory),
                    progress_interval=1e9)
    results = load(directory)
    best = results.value(results.best(1)[0])
    fig = results.plot()
    axes = [ax for ax, _ in _best_points(fig, results)]
    assert len(axes) == 3
    for ax in axes:
        low, high = ax.get_ylim()
        assert -10.0 < low < best <= high, (ax.get_xlabel(), low, high)


def test_plot_islands_have_a_legend_that_covers_no_best_point(outlier, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    results = load(outlier)
    fig = results.plot(tmp_path / "p.png")
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    texts = [t.get_text() for leg in legends for t in leg.get_texts()]
    for k in range(ISLANDS):
        assert texts.count(f"island {k}") == 1, texts
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    points = _best_points(fig, results)
    assert len(points) == 3
    for ax, point in points:
        x, y = ax.transData.transform(point)
        for leg in legends:
            box = leg.get_window_extent(renderer)
            assert not box.contains(x, y), (ax.get_xlabel(), point, box)
    inside = fig.bbox.padded(1.0)  # nothing clipped: every axes with its labels, every legend in the figure
    for box in [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()] + \
            [leg.get_window_extent(renderer) for leg in legends]:
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1, box
