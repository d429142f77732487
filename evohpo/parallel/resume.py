"""Opening a search's checkpoint on every worker: rank 0 claims the directory (lock, check or start afresh),
every rank restores the journals' plan for itself and opens its own journal."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core.evolver import Evolver
from ..core.migration import IslandLayout, MigrationPolicy
from ..journal import records
from ..journal.damage import DamagedCheckpoint, meta_fits
from ..journal.directory import CheckpointDirectory
from ..journal.files import journal_files
from ..journal.reader import Problem, read_meta
from ..journal.restore import RankPlan, Restored, plan, restore
from .transport import Transport

log = logging.getLogger("evohpo")


def open_checkpoint(path: str, meta: Mapping[str, Any], resume: bool, transport: Transport, layout: IslandLayout,
                    fsync_interval: float = 10.0) -> tuple[CheckpointDirectory, RankPlan | None]:
    """The checkpoint directory with this rank's journal open, and this rank's plan when a search is resumed
    (a collective: every rank calls it). Rank 0 holds the directory's lock until the directory is closed."""
    directory = CheckpointDirectory(path)
    outcome: Any = None
    if transport.rank == 0:
        try:
            outcome = directory.claim(meta, resume)
        except Exception as e:  # every rank raises it, not only rank 0
            outcome = e
    try:
        outcome = transport.allgather(outcome)[0]
        if isinstance(outcome, Exception):
            raise outcome
        mine = plan(_restore(path, meta), layout, transport.rank) if outcome == "resume" else None
        if mine is not None:
            log.info("resumed %d evaluations from %s (this rank: %d done, %d unfinished to run first)",
                     mine.total_done, path, mine.done, len(mine.requeued))
        transport.allgather(None)  # nobody writes before everyone has read the journals
        journal = directory.open_journal(transport.rank, fsync_interval)
        journal.write(records.opened(transport.rank, time.time()))
        if mine is not None:
            journal.write(records.resume(mine.total_done, len(mine.requeued), time.time()))
    except BaseException:
        directory.close()  # a later search in this process must be able to take the lock
        raise
    return directory, mine


def _restore(path: str, meta: Mapping[str, Any]) -> Restored:
    """The journals of ``path``, refused with every damaged record named (a resume must not lose or mix
    results; ``evohpo repair`` sets damaged records aside)."""
    problems: list[Problem] = []
    restored = restore(path, fits=meta_fits(meta), problems=problems)
    if problems:
        raise DamagedCheckpoint(path, problems)
    return restored


def stored_meta(path: str, resume: bool, transport: Transport) -> dict[str, Any] | None:
    """What meta.json says of the search a resume continues (a collective; ``{}`` when its journals have no readable
    meta.json), None when nothing is resumed."""
    meta = None
    if transport.rank == 0 and resume:
        try:
            if journal_files(path):
                meta = read_meta(path) or {}
        except (OSError, ValueError):
            meta = None  # the checkpoint is refused later, with its reason
    return transport.allgather(meta)[0]


def apply_plan(rank_plan: RankPlan, evolver: Evolver, policy: MigrationPolicy, seed: int) -> None:
    """Fill this worker's island and state from its plan."""
    for ind in rank_plan.members:
        evolver.add(ind)
    for rec in rank_plan.in_flight:  # in flight somewhere on the island: nobody breeds them again
        evolver.population.reserve(rec["params"])
    policy.hops.update(rank_plan.hops)
    if rank_plan.state is not None:
        evolver.load_state_dict(rank_plan.state)
    else:  # a rank new to the search: a stream of its own, not the one a fresh search would draw again
        evolver.rng = np.random.default_rng(np.random.SeedSequence([seed, evolver.rank, rank_plan.total_done]))
    evolver.generation = max(evolver.generation, rank_plan.next_generation)
