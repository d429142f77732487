"""One order of an island's results on every worker, whatever order they arrive in.

Each worker hears its island's results in its own order (its own at once, its peers' after a delay), so a
strategy that updates a model with every batch of results (CMA-ES) builds a different model on every worker,
and then treats its peers' samples as foreign. ``IslandOrder`` holds the results back and releases them sorted
by (end time, rank, id), each once every worker of the island has reported a result that ended later: no
result that sorts before it can still come, as a worker's results reach its peers in the order they ended. So
every worker feeds the same results in the same order into its model; a deterministic model stays the same on
all of them, and its samples stay its own wherever they were drawn.

The wait is bounded: a worker that has not reported while ``max_held`` results came (one far slower than its
peers, or one that stopped or has not started) is not waited for until it reports again; past ``max_held``
results held, the oldest are released anyway; and a result that comes after its place was passed is released
at once. Such results still feed the model, in an order of their own.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import Any

from .individual import Individual


def _key(ind: Individual) -> tuple[float, int, str]:
    return (ind.end, ind.rank, ind.id)


class IslandOrder:
    """Releases an island's results in (end, rank, id) order once every worker in ``ranks`` passed them.

    Args:
        ranks: the ranks of the island's workers (results of other ranks, e.g. migrants, are held and sorted in
            the same way, but only these move the release point on).
        max_held: the most results held back, past which the oldest are released; also how many results may come
            while a worker stays silent before it is no longer waited for.
    """

    def __init__(self, ranks: Sequence[int], max_held: int) -> None:
        if not ranks:
            raise ValueError("ranks must name at least one worker of the island")
        if max_held < 1:
            raise ValueError(f"max_held={max_held!r} must be at least 1")
        self.ranks, self.max_held = tuple(int(r) for r in ranks), int(max_held)
        self.last_end = {r: -math.inf for r in self.ranks}  # the latest end heard from each worker
        self.heard_at = {r: 0 for r in self.ranks}  # how many results had come when each last reported
        self.heard = 0  # results pushed so far
        self.passed = (-math.inf, -1, "")  # the key of the last result released in order
        self._held: list[tuple[tuple[float, int, str], int, Individual]] = []

    @property
    def held(self) -> int:
        """How many results are held back."""
        return len(self._held)

    def push(self, ind: Individual) -> list[Individual]:
        """Take one result; return those that are released by it, in their order."""
        self.heard += 1
        if ind.rank in self.last_end:
            self.last_end[ind.rank] = max(self.last_end[ind.rank], ind.end)
            self.heard_at[ind.rank] = self.heard
        if _key(ind) <= self.passed:
            return [ind]  # late: its place was passed (a forced release, or a restart)
        heapq.heappush(self._held, (_key(ind), self.heard, ind))  # ties of one key keep their arrival order
        mark = min((e for r, e in self.last_end.items() if self.heard - self.heard_at[r] <= self.max_held),
                   default=math.inf)
        out = []
        while self._held and (self._held[0][0][0] <= mark or len(self._held) > self.max_held):
            key, _, first = heapq.heappop(self._held)
            self.passed = key
            out.append(first)
        return out

    # --- state ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"last_end": [[r, _finite(e), self.heard_at[r]] for r, e in self.last_end.items()], "heard": self.heard,
                "passed": [_finite(self.passed[0]), *self.passed[1:]],
                "held": [ind.to_dict() for _, _, ind in sorted(self._held, key=lambda h: h[:2])]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.heard = int(state["heard"])
        for r, e, at in state["last_end"]:
            if int(r) in self.last_end:
                self.last_end[int(r)], self.heard_at[int(r)] = float(e), int(at)
        end, rank, ind_id = state["passed"]
        self.passed = (float(end), int(rank), str(ind_id))
        self._held = [(_key(ind), i, ind) for i, ind in enumerate(map(Individual.from_dict, state["held"]))]
        heapq.heapify(self._held)


def _finite(x: float) -> float | str:
    return x if math.isfinite(x) else repr(x)
