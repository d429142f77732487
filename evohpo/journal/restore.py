"""Restore: what the journals of a directory say (``restore``), and what one rank resumes with (``plan``).

Every finished evaluation is placed on the island it lives on now (after migrations); ``Restored.hops``
lets migration continue its move counts. An evaluation that started (or was interrupted) and never ended
is re-run, by its own rank when that rank still exists, else by a worker of its island.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.individual import INTERRUPTED, Individual
from ..core.migration import IslandLayout
from . import records as rec_
from .files import StrPath, journal_files
from .reader import REPAIR_HINT, Problem, scan
from .records import Event


@dataclass
class Restored:
    """What the journals say: finished evaluations, where they live, what to re-run, and each rank's state."""

    individuals: list[Individual] = field(default_factory=list)
    copies: list[tuple[int, Individual]] = field(default_factory=list)
    unfinished: list[dict[str, Any]] = field(default_factory=list)
    states: dict[int, dict[str, Any]] = field(default_factory=dict)
    evaluations: dict[int, int] = field(default_factory=dict)
    hops: dict[str, int] = field(default_factory=dict)  # id -> how often it migrated (the highest hop seen)
    ran_on: dict[str, int] = field(default_factory=dict)  # id -> the island whose worker evaluated it
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # id -> (step, loss) of its latest attempt
    steps: dict[int, int] = field(default_factory=dict)  # rank -> steps its journal reported (every attempt)

    @property
    def n_evaluations(self) -> int:
        """Finished evaluations (ok, failed or pruned), each counted once."""
        return len(self.individuals)


Fits = Callable[[dict[str, Any]], str | None]  # why a configuration is not of the space, or None


@dataclass
class _Seen:
    """What the records said so far, newest wins (by time, then by reading order)."""

    ends: dict[str, tuple[tuple[float, int], Individual, int]] = field(default_factory=dict)  # id -> (when, it, rank)
    pending: dict[str, tuple[tuple[float, int], dict[str, Any]]] = field(default_factory=dict)  # start/interrupted
    moves: dict[str, tuple[tuple[int, float, int], int]] = field(default_factory=dict)  # id -> ((hop, when), island)
    pollinated: dict[tuple[int, str], None] = field(default_factory=dict)  # (island, id), insertion-ordered
    states: dict[int, dict[str, Any]] = field(default_factory=dict)
    attempts: dict[str, tuple[tuple[float, int], list[tuple[int, float]]]] = field(default_factory=dict)  # latest
    steps: dict[int, int] = field(default_factory=dict)  # rank -> steps reported

    def later(self, table: dict[str, Any], ident: str, when: tuple) -> bool:
        return ident not in table or when >= table[ident][0]

    def take(self, rec: dict[str, Any], rank: int, started: dict[str, dict[str, Any]], when: tuple[float, int],
             where: str, fits: Fits | None) -> None:
        """One record of ``rank``'s journal (``started``: its start records not yet ended); a ValueError naming
        ``where`` for a malformed one or a configuration that does not fit."""
        ev = rec.get("ev")
        if ev == Event.END:
            joined = rec_.joined(rec, started.get(rec_.ident(rec, where)), rank, where)
            ind = rec_.individual(joined, rank, where)
            _check_fits(fits, ind.params, where)
            started.pop(ind.id, None)
            if ind.status == INTERRUPTED:
                if self.later(self.pending, ind.id, when):
                    self.pending[ind.id] = (when, rec_.pending(joined, rank))
            elif self.later(self.ends, ind.id, when):
                self.ends[ind.id] = (when, ind, rank)
        elif ev == Event.REPORT:
            ident, step, loss = rec_.point(rec, where)
            attempt = started.get(ident)
            if attempt is None:  # a point of no attempt in this journal: its start record was set aside
                return
            points = attempt.setdefault("_points", [])
            last = points[-1][0] if points else 0
            if step > last:
                points.append((step, loss))
                self.steps[rank] = self.steps.get(rank, 0) + step - last
        elif ev == Event.START:
            ident = rec_.check_start(rec, where)
            _check_fits(fits, rec["params"], where)
            rec = dict(rec)
            started[ident] = rec  # its points are gathered in it
            if self.later(self.attempts, ident, when):
                self.attempts[ident] = (when, rec.setdefault("_points", []))
            if self.later(self.pending, ident, when):
                self.pending[ident] = (when, rec_.pending(rec, rank))
        elif ev == Event.MIGRATE:
            ident, to, hop, mode = rec_.migration(rec, where)
            if mode == "pollinate":
                self.pollinated[(to, ident)] = None
            elif self.later(self.moves, ident, (hop, *when)):
                self.moves[ident] = ((hop, *when), to)
        elif ev == Event.STATE:
            self.states[rank] = rec
        # "open", "repair", "resume", "done" and unknown events are informational


def restore(directory: StrPath, fits: Fits | None = None, problems: list[Problem] | None = None) -> Restored:
    """Rebuild the search from every journal in ``directory`` (see ``Restored``).

    ``fits(params)`` says why a configuration is not of this search's space (None when it is): a record
    of another search. A damaged record (undecodable, malformed, or not fitting) raises a ValueError naming
    its file and line, unless it is added to ``problems`` and left out.
    """
    files = journal_files(directory)
    order, seen = itertools.count(), _Seen()
    for rank, path in files:
        started: dict[str, dict[str, Any]] = {}  # id -> its start record in this journal, until its end
        for lineno, rec in scan(path, problems=problems):
            where = f"{path}: line {lineno}"
            try:
                seen.take(rec, rank, started, (rec_.time_of(rec), next(order)), where, fits)
            except ValueError as e:
                if problems is None:
                    raise ValueError(f"{e}; {REPAIR_HINT}") from None
                problems.append(Problem(path, lineno, str(e).removeprefix(f"{where}: ")))
    out = Restored(states=seen.states, evaluations={rank: 0 for rank, _ in files},
                   hops={ident: key[0] for ident, (key, _) in seen.moves.items()},
                   curves={ident: points for ident, (_, points) in seen.attempts.items() if points},
                   steps={rank: seen.steps.get(rank, 0) for rank, _ in files})
    by_id: dict[str, Individual] = {}
    for ident, (_, ind, rank) in seen.ends.items():
        out.ran_on[ident] = ind.island
        if ident in seen.moves and seen.moves[ident][1] != ind.island:
            ind = ind.moved(seen.moves[ident][1])
        by_id[ident] = ind
        out.evaluations[rank] += 1
    out.individuals = sorted(by_id.values(), key=lambda i: i.end)
    out.copies = [(island, by_id[ident].moved(island)) for island, ident in seen.pollinated
                  if ident in by_id and by_id[ident].island != island]
    out.unfinished = [rec for _, rec in sorted(v for k, v in seen.pending.items() if k not in seen.ends)]
    return out


def _check_fits(fits: Fits | None, params: dict[str, Any], where: str) -> None:
    why = fits(params) if fits is not None else None
    if why:
        raise ValueError(f"{where}: a configuration of another search ({why})")


@dataclass
class RankPlan:
    """What one rank resumes with: its island's individuals, what to re-run, its state and its counts."""

    members: list[Individual]  # everything living on the rank's island now (copies included), in order
    in_flight: list[dict[str, Any]]  # unfinished on the island: nobody breeds them again
    hops: dict[str, int]
    state: dict[str, Any] | None  # the rank's evolver state (None: a rank new to the search)
    next_generation: int  # above every id this rank handed out
    requeued: list[dict[str, Any]]  # this rank's unfinished to run first
    done: int  # evaluations this rank finished
    total_done: int  # evaluations every rank finished
    queued: Counter[int]  # how many unfinished each rank re-runs
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # finished ones that ran on the island
    steps: int = 0  # steps this rank's journal reported
    total_steps: int = 0  # steps every journal reported


def plan(restored: Restored, layout: IslandLayout, rank: int) -> RankPlan:
    """What ``rank`` of ``layout`` resumes with (each rank computes its own from the same ``Restored``)."""
    island = layout.island_of(rank)
    members = [ind for ind in restored.individuals if ind.island == island]  # each lives where it last moved to
    members += [ind for isl, ind in restored.copies if isl == island]
    in_flight = [rec for rec in restored.unfinished if rec["island"] % layout.n_islands == island]
    prefix = f"{rank}-"
    used = [int(i.id[len(prefix):]) for i in restored.individuals if i.id.startswith(prefix)]
    used += [int(u["id"][len(prefix):]) for u in restored.unfinished if u["id"].startswith(prefix)]
    owners = []
    for k, rec in enumerate(restored.unfinished):  # re-run on its own rank, else by a worker of its island
        workers = layout.workers(rec["island"] % layout.n_islands)
        owners.append(rec["rank"] if rec["rank"] in workers else workers[k % len(workers)])
    state = restored.states.get(rank)
    return RankPlan(members=members, in_flight=in_flight, hops=dict(restored.hops),
                    state=None if state is None else rec_.evolver_state(state),
                    next_generation=max((g + 1 for g in used), default=0),
                    requeued=[rec for rec, owner in zip(restored.unfinished, owners) if owner == rank],
                    done=restored.evaluations.get(rank, 0), total_done=restored.n_evaluations,
                    queued=Counter(owners),
                    curves={i: c for i, c in restored.curves.items()
                            if i in restored.ran_on and restored.ran_on[i] % layout.n_islands == island},
                    steps=restored.steps.get(rank, 0), total_steps=sum(restored.steps.values()))
