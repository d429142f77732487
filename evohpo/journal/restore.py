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

    @property
    def n_evaluations(self) -> int:
        """Finished evaluations (ok, failed or pruned), each counted once."""
        return len(self.individuals)


def restore(directory: StrPath, fits: Callable[[dict[str, Any]], str | None] | None = None,
            problems: list[Problem] | None = None) -> Restored:
    """Rebuild the search from every journal in ``directory`` (see ``Restored``).

    ``fits(params)`` says why a configuration is not of this search's space (None when it is): a record
    of another search. A damaged record (undecodable, malformed, or not fitting) raises a ValueError naming
    its file and line, unless it is added to ``problems`` and left out.
    """
    files = journal_files(directory)
    order = itertools.count()
    ends: dict[str, tuple[tuple[float, int], Individual, int]] = {}  # id -> (when, individual, file rank)
    pending: dict[str, tuple[tuple[float, int], dict[str, Any]]] = {}  # latest start / interrupted end
    moves: dict[str, tuple[tuple[int, float, int], int]] = {}  # id -> ((hop, t, order), island)
    pollinated: dict[tuple[int, str], None] = {}  # (island, id), insertion-ordered
    states: dict[int, dict[str, Any]] = {}
    for rank, path in files:
        started: dict[str, dict[str, Any]] = {}  # id -> its start record in this journal, until its end
        for lineno, rec in scan(path, problems=problems):
            where, ev, when = f"{path}: line {lineno}", rec.get("ev"), (rec_.time_of(rec), next(order))
            try:
                if ev == Event.END:
                    joined = rec_.joined(rec, started.get(rec_.ident(rec, where)), rank, where)
                    ind = rec_.individual(joined, rank, where)
                    _check_fits(fits, ind.params, where)
                    started.pop(ind.id, None)
                    if ind.status == INTERRUPTED:
                        if ind.id not in pending or when >= pending[ind.id][0]:
                            pending[ind.id] = (when, rec_.pending(joined, rank))
                    elif ind.id not in ends or when >= ends[ind.id][0]:
                        ends[ind.id] = (when, ind, rank)
                elif ev == Event.START:
                    ident = rec_.check_start(rec, where)
                    _check_fits(fits, rec["params"], where)
                    started[ident] = rec
                    if ident not in pending or when >= pending[ident][0]:
                        pending[ident] = (when, rec_.pending(rec, rank))
                elif ev == Event.MIGRATE:
                    ident, to, hop, mode = rec_.migration(rec, where)
                    if mode == "migrate":
                        key = (hop, *when)
                        if ident not in moves or key >= moves[ident][0]:
                            moves[ident] = (key, to)
                    else:
                        pollinated[(to, ident)] = None
                elif ev == Event.STATE:
                    states[rank] = rec
                # "open", "resume", "done" and unknown events are informational
            except ValueError as e:
                if problems is None:
                    raise ValueError(f"{e}; {REPAIR_HINT}") from None
                problems.append(Problem(path, lineno, str(e).removeprefix(f"{where}: ")))
    out = Restored(states=states, evaluations={rank: 0 for rank, _ in files},
                   hops={ident: key[0] for ident, (key, _) in moves.items()})
    by_id: dict[str, Individual] = {}
    for ident, (_, ind, rank) in ends.items():
        out.ran_on[ident] = ind.island
        if ident in moves and moves[ident][1] != ind.island:
            ind = ind.moved(moves[ident][1])
        by_id[ident] = ind
        out.evaluations[rank] += 1
    out.individuals = sorted(by_id.values(), key=lambda i: i.end)
    out.copies = [(island, by_id[ident].moved(island)) for island, ident in pollinated
                  if ident in by_id and by_id[ident].island != island]
    out.unfinished = [rec for _, rec in sorted(v for k, v in pending.items() if k not in ends)]
    return out


def _check_fits(fits: Callable[[dict[str, Any]], str | None] | None, params: dict[str, Any], where: str) -> None:
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
                    queued=Counter(owners))
