"""What a search found: gathered from every worker once all have finished."""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from typing import Any

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


def gather(transport: Transport, layout: IslandLayout, island: int, population: Population, tally: Tally,
           reason: str, top_n: int, started: float, checkpoint: str | None = None,
           resumed: int = 0, goal: Goal | None = None) -> SearchResult:
    """Every island's best to every worker (a collective: every worker calls it after its loop ended)."""
    best = heapq.nsmallest(top_n, (i for i in population if i.ok), key=lambda i: (i.loss, i.id))
    mine = {"island": island, "top": best, "done": tally.run, "failed": tally.failed,
            "interrupted": tally.interrupted, "reason": reason}
    everyone = transport.allgather(mine)
    top = sorted({i.id: i for m in everyone for i in m["top"]}.values(), key=lambda i: (i.loss, i.id))
    islands: list[Individual | None] = [None] * layout.n_islands
    for m in everyone:
        for ind in m["top"][:1]:
            cur = islands[m["island"]]
            if cur is None or ind.loss < cur.loss:
                islands[m["island"]] = ind
    return SearchResult(best=top[0] if top else None, top=top[:top_n], islands=islands,
                        n_evaluations=sum(m["done"] for m in everyone), n_failed=sum(m["failed"] for m in everyone),
                        n_interrupted=sum(m["interrupted"] for m in everyone), elapsed=time.time() - started,
                        reason=reason, checkpoint=checkpoint, resumed=resumed, archive=list(population),
                        active={i.id for i in population if population.is_active(i.id)},
                        messages={"sent": int(transport.sent.sum()), "received": int(transport.received.sum()),
                                  "pending_sends": transport.pending_sends()}, goal=goal or Goal())
