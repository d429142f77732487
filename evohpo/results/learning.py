"""Learning curves: each training's reported values against its steps (``evohpo.report`` writes a ``report``
record per point).

A ``start`` record begins an attempt; the ``report`` records of that id that follow in the same journal are its
points, and its ``end`` record closes it with a status. An evaluation re-run after a crash or a resume starts
again with a new ``start`` record: only the latest attempt of an id (by the start's time, then reading order) keeps
its curve. The points are those ``journal.restore`` keeps: a malformed report record is damage (``load`` lists it in
``Results.problems``) and is left out, as are a point of no start record in its journal and a step that does not
increase. Reading is one pass over the records (``CurveReader.see``), done while ``load`` reads the journals.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.goal import Goal
from ..core.individual import STATUSES
from ..journal.records import Event, point, time_of

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

RUNNING = "running"  # the status of an attempt without an end record: running now, or cut off by a crash
METRIC_PREFIX = "metric."  # the columns of the reported metrics in ``frame``
FRAME_COLUMNS = ("id", "island", "status", "step", "value")


@dataclass(frozen=True, eq=False)
class LearningCurve:
    """One training's learning curve: the values it reported against the steps, in the order it reported them.

    ``values`` are in the search's metric and direction, as the loss function passed them to ``evohpo.report``
    (not the signed loss the search minimizes); ``metrics`` holds each extra metric reported with the points
    (``evohpo.report(step, value, name=x)``), NaN where a point lacked it. ``status`` is the end record's (ok,
    pruned, failed or interrupted), or "running" when the attempt has no end record (running now, or cut off
    by a crash). ``island`` is the island whose worker ran it. The arrays are read-only.
    """

    id: str
    steps: np.ndarray  # int64, one per reported point
    values: np.ndarray  # float64, the reported values
    metrics: dict[str, np.ndarray]
    status: str
    params: dict[str, Any] = field(repr=False)
    island: int = 0

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        metrics = f", metrics {list(self.metrics)}" if self.metrics else ""
        points = f"{len(self)} point" + ("s" if len(self) != 1 else "")
        return (f"LearningCurve(id={self.id!r}, status={self.status!r}, island={self.island}, {points}, "
                f"steps {self.steps[0]}..{self.last_step}, last value {self.last:.6g}{metrics})")

    @property
    def last_step(self) -> int:
        """The highest step it reported (the last one)."""
        return int(self.steps[-1])

    @property
    def last(self) -> float:
        """The last value it reported (a pruned training's value in the results table)."""
        return float(self.values[-1])


@dataclass
class _Attempt:
    """One run of an evaluation, from its start record: what it runs, where, and the points it reported."""

    key: tuple[float, int]  # (time of its start record, reading order): the latest attempt of an id wins
    params: dict[str, Any]
    island: int
    status: str = RUNNING
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    metrics: list[Any] = field(default_factory=list)  # a dict a point, or None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _real(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class CurveReader:
    """Takes in journal records one by one (``begin`` each journal, then ``see`` its records in order) and keeps
    the latest attempt of each evaluation; ``curves`` builds the learning curves."""

    def __init__(self) -> None:
        self._order = itertools.count()
        self._open: dict[str, _Attempt] = {}  # this journal's attempts without an end record yet
        self._latest: dict[str, _Attempt] = {}

    def begin(self) -> None:
        """The records of the next journal follow."""
        self._open = {}

    def see(self, rec: Mapping[str, Any]) -> None:
        """Take in the next record of the current journal."""
        ev = rec.get("ev")
        if ev == Event.REPORT:
            try:
                ident, step, loss = point(rec, "")
            except ValueError:  # damage: ``restore`` puts it in the problems
                return
            att = self._open.get(ident)
            if att is None or (att.steps and step <= att.steps[-1]):
                return  # no attempt of it in this journal (its start was set aside), or a step back
            att.steps.append(step)
            att.losses.append(loss)
            metrics = rec.get("metrics")
            att.metrics.append(metrics if isinstance(metrics, dict) and metrics else None)
        elif ev == Event.START:
            ident, island = rec.get("id"), _int(rec.get("island"))
            if isinstance(ident, str) and isinstance(rec.get("params"), dict):
                att = _Attempt((time_of(rec), next(self._order)), rec["params"], 0 if island is None else island)
                self._open[ident] = att
                old = self._latest.get(ident)
                if old is None or att.key >= old.key:
                    self._latest[ident] = att
        elif ev == Event.END:
            ident = rec.get("id")
            att = self._open.pop(ident, None) if isinstance(ident, str) else None
            if att is not None:
                status = rec.get("status", "ok")
                att.status = status if status in STATUSES else RUNNING

    def curves(self, goal: Goal, known: Container[str] | None = None) -> dict[str, LearningCurve]:
        """The latest attempt's curve of every evaluation that reported, ordered by the start of that attempt;
        only ids in ``known`` when given (what ``restore`` kept: not a configuration of another search)."""
        out: dict[str, LearningCurve] = {}
        for ident, att in sorted(self._latest.items(), key=lambda kv: kv[1].key):
            if not att.steps or (known is not None and ident not in known):
                continue
            out[ident] = LearningCurve(id=ident, steps=_frozen(np.array(att.steps, dtype=np.int64)),
                                       values=_frozen(np.asarray(goal.value(np.array(att.losses, dtype=float)))),
                                       metrics=_metrics(att.metrics), status=att.status, params=dict(att.params),
                                       island=att.island)
        return out


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _metrics(points: list[Any]) -> dict[str, np.ndarray]:
    """Each metric's values along the points, NaN where a point lacked it (or it was not a number)."""
    names: dict[str, None] = {}
    for m in points:
        if m is not None:
            names.update(dict.fromkeys(m))
    out = {}
    for name in names:
        a = np.array([_or_nan(m.get(name)) if m is not None else math.nan for m in points], dtype=float)
        out[str(name)] = _frozen(a)
    return out


def _or_nan(v: Any) -> float:
    x = _real(v)
    return math.nan if x is None else x


def frame(curves: Mapping[str, LearningCurve]) -> pd.DataFrame:
    """One row per reported point of every curve: id, island, status, step, value, then one
    ``metric.<name>`` column per reported metric (NaN where a point lacked it)."""
    import pandas as pd

    names: dict[str, None] = {}
    for c in curves.values():
        names.update(dict.fromkeys(c.metrics))
    cs = list(curves.values())
    data: dict[str, Any] = {
        "id": np.repeat(np.array([c.id for c in cs], dtype=object), [len(c) for c in cs]),
        "island": np.repeat(np.array([c.island for c in cs], dtype=np.int64), [len(c) for c in cs]),
        "status": np.repeat(np.array([c.status for c in cs], dtype=object), [len(c) for c in cs]),
        "step": np.concatenate([c.steps for c in cs]) if cs else np.zeros(0, dtype=np.int64),
        "value": np.concatenate([c.values for c in cs]) if cs else np.zeros(0),
    }
    for name in names:
        data[METRIC_PREFIX + name] = (np.concatenate([c.metrics.get(name, np.full(len(c), math.nan)) for c in cs])
                                      if cs else np.zeros(0))
    return pd.DataFrame(data, columns=[*FRAME_COLUMNS, *(METRIC_PREFIX + m for m in names)])


def step_counts(steps: list[int], levels: int = 8) -> list[tuple[int, int]]:
    """(step, how many of ``steps`` reached it) for the distinct steps, or ``levels`` of them spread over the
    distinct steps when there are more: the funnel of a pruned search (``ASHA`` stops trainings at its rungs)."""
    if not steps:
        return []
    s = np.sort(np.asarray(steps, dtype=np.int64))
    distinct = np.unique(s)
    if len(distinct) > levels:
        distinct = np.unique(distinct[np.round(np.linspace(0, len(distinct) - 1, levels)).astype(int)])
    reached = len(s) - np.searchsorted(s, distinct, side="left")
    return [(int(a), int(b)) for a, b in zip(distinct, reached)]
