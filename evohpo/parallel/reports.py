"""The worker's side of per-step reports: the island's rung values, shared with its peers, and the pruner's decisions.

Each evaluation gets a ``TrialReporter`` (``evohpo.report`` reaches it through the evaluation's context). A report
is checked, journaled (one O(1) append) and added to the training's curve. When it reaches a rung, the worker first
takes in what its peers sent (non-blocking), asks the pruner with the island's values at that rung, then adds its
own value and sends it to the island's peers in one RUNG message each (rung values, not every point: a training
sends at most one message per rung per peer). ``Pruned`` is raised after the point is recorded.

While the loss function runs, the transport belongs to the stop listener thread (``parallel.listener``): a report
takes its lock for the few microseconds it uses the transport, and passes stop messages on to it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..core import clock
from ..core.goal import Goal
from ..core.individual import OK, Individual
from ..core.pruners import Pruner, RungBoard, crossed, rung_values
from ..core.reporting import BUDGET_USED, Pruned, check_point
from ..journal import records
from .transport import Tag, Transport


class Reports:
    """One worker's reports: the pruner, the island's ``RungBoard``, the journal and the peers to share with (the
    worker ``attach``es its transport, island peers and journal)."""

    def __init__(self, pruner: Pruner, max_steps: int | None = None, goal: Goal | None = None,
                 board: RungBoard | None = None) -> None:
        self.pruner, self.max_steps, self.goal = pruner, max_steps, goal or Goal()
        self.transport: Transport | None = None
        self.peers: list[int] = []
        self.journal: Any = None
        self.rungs = list(pruner.rungs(max_steps))
        self.board = board if board is not None else RungBoard(self.rungs)
        self.lock: Any = contextlib.nullcontext()  # the listener's lock while the loss function runs
        self.look: Callable[[list[tuple[int, int, Any]]], None] | None = None  # the listener's stop handling

    def attach(self, transport: Transport, peers: list[int], journal: Any) -> None:
        """Where rung values go (the island's other workers) and reports are written."""
        self.transport, self.peers, self.journal = transport, peers, journal

    def begin(self, ind_id: str, judged: bool = True, cap: int | None = None) -> TrialReporter:
        """The reporter of the evaluation ``ind_id`` that starts now (not ``judged``: its points are recorded, the
        pruner never stops it, e.g. a pruned configuration trained again to its end; ``cap``: the steps left of
        the worker's step budget, at which the training is stopped)."""
        return TrialReporter(self, ind_id, judged, cap)

    def on_rung(self, src: int, payload: tuple[str, int, float]) -> None:
        """A peer's training reached a rung (Tag.RUNG)."""
        ind_id, rung, loss = payload
        self.board.add(ind_id, rung, loss)

    def take_in(self) -> None:
        """What the peers sent since the last look, without waiting: rung values now, the rest kept for the worker's
        next poll (and stop messages shown to the listener)."""
        if not self.peers:
            return
        with self.lock:
            msgs = self.transport.hold()  # type: ignore[union-attr]
            for src, tag, payload in msgs:
                if tag == Tag.RUNG:
                    self.on_rung(src, payload)
            if self.look is not None and msgs:
                self.look(msgs)

    def share(self, ind_id: str, rung: int, loss: float) -> None:
        """Add this worker's value at ``rung`` to the board and send it to the island's peers."""
        self.board.add(ind_id, rung, loss)
        if self.peers:
            with self.lock:
                self.transport.send_all(self.peers, Tag.RUNG, (ind_id, rung, loss))  # type: ignore[union-attr]


class TrialReporter:
    """The reports of one evaluation: its curve (signed losses) and whether the pruner stopped it.

    ``cap``: the steps left of the worker's step budget. A training that reaches it before ``max_steps`` is stopped
    there like a pruned one, so that a search never trains more steps than its budget."""

    def __init__(self, reports: Reports, ind_id: str, judged: bool = True, cap: int | None = None) -> None:
        self.reports, self.id = reports, ind_id
        self.last_step: int | None = None
        self.last_loss: float | None = None
        self.pruned_at: int | None = None
        self.pruned_why: str | None = None  # the text of the Pruned raised at pruned_at
        self._next = reports.rungs[0] if reports.rungs and judged else None  # the next rung this training reaches
        self.cap = cap if cap is not None and (reports.max_steps is None or cap < reports.max_steps) else None
        self._due = self._first_due()  # the first step at which a report has more to do than record the point
        self._maximize = reports.goal.maximize

    def _first_due(self) -> float:
        return min(math.inf if self._next is None else self._next, math.inf if self.cap is None else self.cap)

    def report(self, step: Any, value: Any, metrics: Mapping[str, Any]) -> None:
        """Record a point; raise ``Pruned`` when the pruner stops the training (again at every later report)."""
        r = self.reports
        step, value, extra = check_point(step, value, metrics, self.last_step, r.max_steps)
        loss = 0.0 - value if self._maximize else value  # (as Goal.loss: 0.0 - x, no "-0")
        r.journal.write(records.report(self.id, step, loss, clock.now(), extra))
        previous, self.last_step, self.last_loss = self.last_step, step, loss
        if self.pruned_at is not None:
            raise Pruned(self.pruned_at, value, "stopped before")
        if step < self._due:
            return  # no rung reached and budget left: the common case
        if self._next is not None and step >= self._next:
            self._judge(previous, step, loss, value)
        self._due = self._first_due()
        if self.cap is not None and step >= self.cap:
            self._stop(Pruned(step, value, f"{BUDGET_USED} (its worker had {self.cap} of it left when the "
                                           "training started)"))

    def _judge(self, previous: int | None, step: int, loss: float, value: float) -> None:
        """The rungs this report reached: share its value at each, and raise ``Pruned`` if the pruner says so."""
        r = self.reports
        rungs = crossed(r.rungs, previous, step)
        later = [x for x in r.rungs if x > step]
        self._next = later[0] if later else None
        r.take_in()
        for rung in rungs:
            keep = r.pruner.keep(loss, r.board.values(rung))
            r.share(self.id, rung, loss)
            if not keep:
                n = len(r.board.values(rung))
                self._stop(Pruned(step, value, f"not among the best at step {rung} ({n} trainings of the island "
                                               "reached it)"))

    def _stop(self, pruned: Pruned) -> None:
        """Stop the training here: remember where and why, and raise ``pruned``."""
        self.pruned_at, self.pruned_why = pruned.step, str(pruned)
        raise pruned


def steps_used(ind: Individual, max_steps: int | None) -> int:
    """The steps an evaluation cost, for a step budget: the highest step it reported; a training that reported none
    cost ``max_steps`` when it ran to its end, nothing when it failed."""
    if ind.step is not None:
        return ind.step
    return (max_steps or 1) if ind.status == OK else 0


def board_from_curves(rungs: Sequence[int], curves: Mapping[str, Sequence[tuple[int, float]]]) -> RungBoard:
    """An island's rung values rebuilt from the curves of its trainings (a resumed search)."""
    board = RungBoard(rungs)
    for ind_id, curve in curves.items():
        for rung, loss in rung_values(rungs, curve):
            board.add(ind_id, rung, loss)
    return board
