"""What a search found: gathered from every worker once all have finished."""

from __future__ import annotations

import functools
import heapq
from dataclasses import dataclass, field
from typing import Any

from ..core import clock
from ..core.goal import Goal, GoalView
from ..core.individual import Individual
from ..core.migration import IslandLayout
from ..core.population import Population
from .transport import Transport


@dataclass
class SearchResult(GoalView):
    """What a search found, the same on every rank, plus what this worker's island holds.

    ``best``, ``top`` and ``islands`` are individuals, best first; their ``loss`` is what the search minimized,
    minus the value when maximizing: ``best_value``, ``top_values`` and ``value(ind)`` give the values as the
    objective returned them.
    """

    best: Individual | None
    top: list[Individual]
    islands: list[Individual | None]
    n_evaluations: int
    n_failed: int
    n_interrupted: int
    elapsed: float
    reason: str
    checkpoint: str | None = None
    resumed: int = 0  # evaluations restored from the checkpoint (not counted in n_evaluations)
    archive: list[Individual] = field(default_factory=list, repr=False)
    active: set[str] = field(default_factory=set, repr=False)
    messages: dict[str, int] = field(default_factory=dict, repr=False)  # this worker's sent/received/pending
    goal: Goal = field(default_factory=Goal)
    n_pruned: int = 0  # trainings the pruner stopped (counted in n_evaluations)
    n_steps: int = 0  # steps reported with evohpo.report in this run, all workers

    @property
    def params(self) -> dict[str, Any] | None:
        return None if self.best is None else self.best.params

    @property
    def best_value(self) -> float | None:
        """The best value as the objective returned it (None without an ok evaluation)."""
        return None if self.best is None else self.goal.value(self.best)

    @property
    def top_values(self) -> list[float]:
        """The values of ``top``, best first."""
        return [self.goal.value(i) for i in self.top]


@dataclass
class Tally:
    """What one worker did in this run."""

    run: int = 0  # evaluations finished by this process (restored ones not counted)
    failed: int = 0
    interrupted: int = 0
    pruned: int = 0
    steps: int = 0  # the highest step of each evaluation that reported, summed


def gather(transport: Transport, layout: IslandLayout, island: int, population: Population, tally: Tally,
           reason: str, top_n: int, started: float, checkpoint: str | None = None,
           resumed: int = 0, goal: Goal | None = None) -> SearchResult:
    """Every island's best to every worker (a collective: every worker calls it after its loop ended). A reduction,
    so that what each worker receives is the ``top_n`` and one per island, however many workers there are."""
    best = heapq.nsmallest(top_n, (i for i in population if i.ok), key=_order)
    mine = Summary(best, {island: best[0]} if best else {}, tally.run, tally.failed, tally.interrupted, tally.pruned,
                   tally.steps)
    total = transport.allreduce(mine, functools.partial(Summary.merge, top_n=top_n))
    islands = [total.islands.get(i) for i in range(layout.n_islands)]
    return SearchResult(best=total.top[0] if total.top else None, top=total.top, islands=islands,
                        n_evaluations=total.done, n_failed=total.failed, n_interrupted=total.interrupted,
                        elapsed=clock.now() - started, n_pruned=total.pruned, n_steps=total.steps,
                        reason=reason, checkpoint=checkpoint, resumed=resumed, archive=list(population),
                        active={i.id for i in population if population.is_active(i.id)},
                        messages={"sent": int(transport.sent.sum()), "received": int(transport.received.sum()),
                                  "pending_sends": transport.pending_sends()}, goal=goal or Goal())


def _order(ind: Individual) -> tuple[float, str]:
    return ind.loss, ind.id


@dataclass(frozen=True)
class Summary:
    """What the workers combine at the end: the best ``top_n``, each island's best, and the counts."""

    top: list[Individual]
    islands: dict[int, Individual]
    done: int
    failed: int
    interrupted: int
    pruned: int = 0
    steps: int = 0

    @staticmethod
    def merge(a: Summary, b: Summary, top_n: int) -> Summary:
        """Both summaries in one (associative and commutative: the order workers are combined in does not matter)."""
        top = heapq.nsmallest(top_n, {i.id: i for i in (*a.top, *b.top)}.values(), key=_order)
        islands = dict(a.islands)
        for k, ind in b.islands.items():
            if k not in islands or _order(ind) < _order(islands[k]):
                islands[k] = ind
        return Summary(top, islands, a.done + b.done, a.failed + b.failed, a.interrupted + b.interrupted,
                       a.pruned + b.pruned, a.steps + b.steps)
