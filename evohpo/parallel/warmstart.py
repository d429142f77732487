"""Warm start (``optimize(initial=...)``): configurations evaluated before any is bred.

``initial`` is a list of configurations (each checked against the space: a ValueError names the index and the
parameter), or a finished search (its checkpoint directory, or ``evohpo.load(DIR)``) whose best ok
configurations that fit the new space are taken: parameters the new space lacks are dropped; a configuration
missing one of the new space's parameters, or with a value outside it, is skipped (counted in the log). The
configurations are dealt to the workers by index (``i % workers``), run first, and count in the budget. Every
worker marks all of them as taken, so nobody breeds one of them meanwhile; a resumed search skips those its
journals hold (finished or to be re-run).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.evolver import Evolver
from ..core.individual import Individual
from ..core.migration import IslandLayout
from ..core.space import Space
from ..journal.files import journal_files
from ..journal.restore import restore

log = logging.getLogger("evohpo")


def configurations(initial: Any, space: Space, take: int) -> list[dict[str, Any]]:
    """The configurations ``initial`` stands for (see the module), in the order they are dealt."""
    if initial is None:
        return []
    if isinstance(initial, (str, os.PathLike)):
        if not journal_files(initial):
            raise FileNotFoundError(f"initial={os.fspath(initial)!r} holds no journals (journal-rNNNN.jsonl): not the "
                                    "checkpoint directory of a search")
        return _best_that_fit(restore(initial).individuals, space, take, repr(os.fspath(initial)))
    if hasattr(initial, "ranked"):  # evohpo.load(DIR): a finished search's Results
        return _best_that_fit(initial.ranked, space, take, repr(str(getattr(initial, "directory", "results"))))
    if isinstance(initial, Mapping) or not isinstance(initial, Sequence):
        raise TypeError(f"initial={initial!r} must be a list of configurations (dicts), a checkpoint directory or "
                        "evohpo.load(directory)")
    out, index = [], {}
    for i, params in enumerate(initial):
        if not isinstance(params, Mapping):
            raise TypeError(f"initial[{i}]={params!r} must be a dict of parameter -> value")
        try:
            params = space.validate(params)
        except ValueError as e:
            raise ValueError(f"initial[{i}]: {e}") from None
        key = space.key(params)
        if key in index:
            raise ValueError(f"initial[{i}] repeats initial[{index[key]}]: {params!r}")
        index[key] = i
        out.append(params)
    return out


def _best_that_fit(individuals: Sequence[Individual], space: Space, take: int, where: str) -> list[dict[str, Any]]:
    """The ``take`` best ok configurations of a finished search that fit ``space`` (lowest loss first)."""
    ranked = sorted((i for i in individuals if i.ok), key=lambda i: (i.loss, i.id))
    out: dict[tuple, dict[str, Any]] = {}
    missing = outside = 0
    dropped: set[str] = set()
    for ind in ranked:
        if len(out) == take:
            break
        dropped.update(n for n in ind.params if n not in space)
        if any(n not in ind.params for n in space):
            missing += 1
            continue
        params = {n: ind.params[n] for n in space}
        if not space.contains(params):
            outside += 1
            continue
        out.setdefault(space.key(params), params)
    log.info("initial: the %d best configurations of %s that fit the space (of %d ok; skipped %d missing a "
             "parameter, %d outside the space%s)", len(out), where, len(ranked), missing, outside,
             f"; dropped parameters {sorted(dropped)}" if dropped else "")
    return list(out.values())


def already_run(checkpoint: str, space: Space) -> set[tuple]:
    """The configurations a resumed search's journals hold: finished, or started and to be re-run."""
    restored = restore(checkpoint)
    keys = {space.key(i.params) for i in restored.individuals if space.contains(i.params)}
    return keys | {space.key(rec["params"]) for rec in restored.unfinished if space.contains(rec["params"])}


def enqueue(configs: Sequence[Mapping[str, Any]], evolver: Evolver, layout: IslandLayout, rank: int,
            skip: set[tuple] | frozenset[tuple] = frozenset(), budget: int | None = None) -> list[dict[str, Any]]:
    """This worker's share of ``configs`` (``i % workers == rank``, less ``skip``) as records to run first; every
    other one is marked as taken (in flight on this island, seen elsewhere on another). ``budget``: the search's
    evaluations, for a warning when they are fewer than the configurations."""
    left = sum(evolver.space.key(p) not in skip for p in configs)
    if rank == 0 and configs:
        log.info("initial: %d configurations to evaluate first (%d of %d already in the journals)", left,
                 len(configs) - left, len(configs))
        if budget is not None and left > budget:
            log.warning("initial: %d configurations but a budget of %d evaluations: %d will not run", left, budget,
                        left - budget)
    mine, island = [], layout.island_of(rank)
    for i, params in enumerate(configs):
        if evolver.space.key(params) in skip:
            continue
        owner = i % layout.n_ranks
        if owner == rank:
            mine.append({"params": dict(params), "id": None})
        elif layout.island_of(owner) == island:
            evolver.population.reserve(params)
        else:
            evolver.population.note([evolver.population.digest(params)])
    return mine
