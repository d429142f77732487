"""Results of a search read back from its checkpoint directory: tables, counts, progress curves, plots.

``load(DIR)`` works on a finished search and on one still writing to DIR: a journal's torn last line (a
record being appended right now, or cut short by a crash) is skipped and counted in ``Results.torn``.

Islands: ``Individual.island`` and ``islands()`` follow ``journal.restore``: the island an individual
lives on now, after migrations (the population view). The table's ``island`` column and ``progress()``
use the island that ran the evaluation (the search view); ``lives_on`` in the table is the former.

Learning curves (``curves()``): what each training reported with ``evohpo.report``, read in the same pass over the
records; only the latest attempt of an evaluation re-run after a crash or a resume keeps its curve.

pandas and matplotlib are imported inside the functions that need them, so ``import evohpo`` stays light.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.goal import Goal, GoalView
from ..core.individual import FAILED, OK, PRUNED, Individual
from ..core.space import Space
from ..journal.damage import DamagedCheckpointWarning, damage_report, examine, meta_space
from ..journal.files import StrPath, journal_files
from ..journal.finished import RunTracker, SearchState, latest_ranks
from ..journal.reader import Problem, TornRecordWarning, read_meta, scan
from ..journal.records import Event
from ..journal.restore import Restored
from . import plots, tables
from .curves import Curve, curves
from .learning import CurveReader, LearningCurve
from .tables import COLUMNS, PARAM_PREFIX

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["COLUMNS", "PARAM_PREFIX", "LearningCurve", "NoJournals", "Results", "load"]
_RETRIES = 20


class NoJournals(FileNotFoundError):
    """The directory exists but holds no journal-rNNNN.jsonl: it is not (yet) a checkpoint directory."""


def _sizes(directory: Path) -> dict[str, int]:
    """Size of every journal in ``directory`` (to tell a concurrent append from a corrupt file)."""
    out = {}
    for p in directory.glob("journal-r*.jsonl"):
        try:
            out[p.name] = p.stat().st_size
        except FileNotFoundError:
            pass
    return out


def _number(v: Any) -> float | None:
    """``v`` as a finite float, or None."""
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None


def _torn_count(caught: list[warnings.WarningMessage]) -> int:
    return sum(issubclass(w.category, TornRecordWarning) for w in caught)


def _read(directory: Path, meta: dict[str, Any] | None,
          problems: list[Problem]) -> tuple[Restored, dict[str, Any], int]:
    """restore() plus what it leaves out: where each rank's run stands, the time span and the learning curves;
    damaged records are left out and added to ``problems``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TornRecordWarning)
        restored, found = examine(directory, meta)
        problems += found
        torn = _torn_count(caught)
        caught.clear()
        tracker, reader = RunTracker(), CurveReader()
        first, last = math.inf, -math.inf
        for rank, path in journal_files(directory):
            tracker.begin(rank)
            reader.begin()
            for _, rec in scan(path, problems=[]):  # the damaged lines are in ``problems`` already
                tracker.see(rank, rec)
                reader.see(rec)
                t = _number(rec.get("t"))
                if t is not None:
                    first, last = min(first, t), max(last, t)
                s = _number(rec.get("start")) if rec.get("ev") == Event.END else None
                if s is not None:  # an evaluation re-run after a resume may have started before any record here
                    first = min(first, s)
        torn = max(torn, _torn_count(caught))
        for w in caught:  # anything else is the caller's business
            if not issubclass(w.category, TornRecordWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    state = tracker.state(latest_ranks(directory))
    return restored, {"state": state, "ranks": sorted(tracker.reasons), "first": first, "last": last,
                      "curves": reader}, torn


def load(directory: StrPath) -> Results:
    """Read every journal in ``directory`` (finished or still being written) into a ``Results``.

    Raises FileNotFoundError naming the path when the directory is missing, ``NoJournals`` (a
    FileNotFoundError) when it holds no journal, and ValueError for an unreadable meta.json. Damaged records
    (a line in the middle that is not JSON, a configuration of another space, a missing journal) are left out
    with a ``DamagedCheckpointWarning`` naming each file and line, and listed in ``Results.problems``.
    """
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"checkpoint directory {str(d)!r} does not exist or is not a directory")
    for attempt in range(_RETRIES):
        before = _sizes(d)
        if not before:
            raise NoJournals(f"no journals (journal-rNNNN.jsonl) in {str(d)!r}: not a checkpoint directory, or "
                             "its search has not started yet")
        meta, problems = read_meta(d), []
        restored, extra, torn = _read(d, meta, problems)
        if problems and _sizes(d) != before and attempt < _RETRIES - 1:
            # A reader that hits the end of a line being appended sees a torn line followed by its rest on the
            # next read, which looks like damage in the middle; a journal that grew meanwhile is read again.
            time.sleep(0.01 * (attempt + 1))
            continue
        if problems:
            warnings.warn(damage_report(d, problems) + " (the damaged records are left out)",
                          DamagedCheckpointWarning, stacklevel=2)
        return Results(d, meta, restored, extra, torn, problems)
    raise AssertionError("unreachable")  # pragma: no cover


class Results(GoalView):
    """A search read from its checkpoint directory; build it with ``load(directory)``."""

    def __init__(self, directory: Path, meta: dict[str, Any] | None, restored: Restored,
                 extra: dict[str, Any], torn: int = 0, problems: list[Problem] | None = None) -> None:
        self.directory = directory
        self.problems: list[Problem] = list(problems or [])  # damaged records left out (``journal.damage``)
        self.meta = meta
        self.goal = Goal.from_meta(meta)  # what the search optimized (meta.json; "minimize" "loss" before it said)
        self.space: Space | None = meta_space(meta)
        self.individuals: list[Individual] = list(restored.individuals)  # finished, by end time
        self.unfinished: list[dict[str, Any]] = list(restored.unfinished)  # started or interrupted, not redone
        self.torn = torn  # journals whose torn last line was skipped
        self._ran_on: dict[str, int] = restored.ran_on
        self.state: SearchState = extra["state"]  # where each rank's latest run stands (journal.finished)
        self._ranks: list[int] = extra["ranks"]
        self._first: float = extra["first"]
        self._last: float = extra["last"]
        status = Counter(i.status for i in self.individuals)
        pending = Counter(rec.get("ev") for rec in self.unfinished)
        self.counts: dict[str, int] = {
            "evaluations": len(self.individuals),  # finished: ok + failed + pruned
            "ok": status[OK], "failed": status[FAILED], "pruned": status[PRUNED],
            "in_flight": pending["start"],  # started, no end record yet (running, or cut off by a crash)
            "interrupted": pending["end"],  # stopped by a signal; a resumed search runs them again
        }
        self._ok = sorted((i for i in self.individuals if i.ok), key=lambda i: (i.loss, i.id))
        self._reader: CurveReader | None = extra.get("curves") or CurveReader()  # dropped once read
        self._curves: dict[str, LearningCurve] | None = None

    # --- what was found ----------------------------------------------------------------------------------
    def best(self, n: int = 10) -> list[Individual]:
        """The ``n`` best ok individuals, best first: lowest loss, that is highest value when maximizing (ties
        by id, as ``optimize``'s result)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n={n!r} must be an int >= 0")
        return self._ok[:n]

    @property
    def ranked(self) -> list[Individual]:
        """Every ok individual, best first (lowest loss; ties by id)."""
        return self._ok

    def islands(self) -> dict[int, Individual]:
        """The best ok individual of each island that has one, by the island it lives on now."""
        out: dict[int, Individual] = {}
        for ind in self._ok:
            out.setdefault(ind.island, ind)
        return dict(sorted(out.items()))

    def ran_on(self, ind: Individual) -> int:
        """The island whose worker evaluated ``ind`` (``ind.island`` is where it lives now)."""
        return self._ran_on.get(ind.id, ind.island)

    @property
    def n_islands(self) -> int:
        """Islands in the layout (from meta.json), or the number seen in the journals."""
        if self.meta and isinstance(self.meta.get("islands"), list):
            return len(self.meta["islands"])
        seen = {i.island for i in self.individuals} | set(self._ran_on.values())
        return max(seen, default=0) + 1

    @property
    def ranks(self) -> list[int]:
        """The ranks that wrote a journal."""
        return self._ranks

    @property
    def finished(self) -> bool:
        """Whether the search is finished: every rank of its latest run reached its budget or exhausted the
        space (``journal.finished``; the definition slurm/finished.py uses). A search stopped by a signal or
        a time limit is not: resuming it goes on."""
        return self.state.finished

    @property
    def ended(self) -> bool:
        """Whether every rank of the latest run stopped, finished or not (False while a search runs, or after
        a crash)."""
        return self.state.ended

    @property
    def start_time(self) -> float:
        """Unix time of the search's first record (nan without records)."""
        return self._first if math.isfinite(self._first) else math.nan

    @property
    def elapsed(self) -> float:
        """Wall-clock seconds from the first to the latest record (gaps between resumed runs included)."""
        return max(self._last - self._first, 0.0) if math.isfinite(self._first) else 0.0

    def __len__(self) -> int:
        return len(self.individuals)

    def __repr__(self) -> str:
        c = self.counts
        best = f", best {self.metric} {self.value(self._ok[0]):.6g}" if self._ok else ""
        pruned = f"{c['pruned']} pruned, " if c["pruned"] else ""
        return (f"Results({str(self.directory)!r}: {c['evaluations']} evaluations, {c['ok']} ok, "
                f"{c['failed']} failed, {pruned}{c['in_flight']} in flight{best})")

    # --- progress ----------------------------------------------------------------------------------------
    def progress(self) -> dict[int | str, Curve]:
        """Best-so-far loss against evaluation count and against time: "all" and each island that ran some
        (signed losses: ``goal.value`` turns them into values)."""
        return curves(self.individuals, self.ran_on, self.start_time)

    # --- learning curves ---------------------------------------------------------------------------------
    def curves(self) -> dict[str, LearningCurve]:
        """The learning curve of every evaluation that reported (``evohpo.report``), by id, in the order the
        evaluations started: steps, values (the metric as the loss function reported it), extra metrics, status
        ("running" for one without an end yet) and params. An evaluation re-run after a crash or a resume
        keeps only the curve of its latest run; one that never reported has none (``{}`` for a search without
        reports)."""
        if self._curves is None:
            assert self._reader is not None
            known = {i.id for i in self.individuals} | {str(u.get("id")) for u in self.unfinished}
            self._curves, self._reader = self._reader.curves(self.goal, known), None
        return dict(self._curves)

    def curves_frame(self) -> pd.DataFrame:
        """``curves()`` as one long table, one row per reported point: id, island (ran on), status, step, value,
        then one ``metric.<name>`` column per extra metric (NaN where a point lacked it)."""
        from .learning import frame

        df = frame(self.curves())
        df.attrs["metric"] = self.metric
        return df

    # --- tables ------------------------------------------------------------------------------------------
    def param_names(self) -> list[str]:
        """The hyperparameters: the space's order, then any other name seen in the journals."""
        names = list(self.space) if self.space is not None else []
        for ind in self.individuals:
            names += [n for n in ind.params if n not in names]
        return names

    def to_dataframe(self) -> pd.DataFrame:
        """One row per finished evaluation (ok, failed or pruned), by end time: status, loss and the metric's value
        (a pruned one's last reported value), the step reached, times, error, parameters (``tables.to_dataframe``)."""
        return tables.to_dataframe(self)

    def to_csv(self, path: StrPath | Any) -> None:
        """Write ``to_dataframe()`` as CSV (no index column) to a path or an open text file."""
        self.to_dataframe().to_csv(path, index=False)

    def summary(self, top: int = 10) -> str:
        """A text report: the search, its state, the counts, the ``top`` best and the best of each island."""
        return tables.summary(self, top)

    # --- plots -------------------------------------------------------------------------------------------
    def plot(self, path: StrPath | None = None, dpi: int = 100) -> Figure:
        """One figure of the search (``plots.plot``), saved to ``path`` when given."""
        return plots.plot(self, path, dpi)
