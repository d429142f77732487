"""An island's archive: every evaluated configuration once, and the breeding pool kept incrementally.

The pool (best ``pool_size`` active individuals, best first) is a short sorted list; the other active
individuals wait in a min-heap, and a max-heap finds the worst. Deactivated entries are dropped from the
heaps lazily, so add, deactivate and worst all cost O(log n + pool_size), independent of the archive size.
Equal losses are ordered by id, so that the same individuals make the same pool whatever order they arrived in.

Pruned trainings (stopped early by a pruner) breed too, ranked below every training that ran to its end and among
themselves by the step they reached, then by their last value (``rank_key``): a configuration stopped at step 3 is
never ranked against one trained to the end as if they were equal. An island with enough complete trainings breeds
from those alone; early in a search the pool is filled from the highest steps reached.

Configurations evaluated on other islands are known by a 64-bit ``digest`` only (``note``): enough to skip them.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .individual import FAILED, OK, Individual
from .space import Choice, Int, Space

Key = tuple[float, float]  # (minus the fidelity reached, loss): lower is better (``rank_key``)
Entry = tuple[Key, str, int]  # (key, id, activation number): a total order, ties broken by id


def rank_key(ind: Individual) -> Key:
    """How an individual ranks for breeding: complete trainings first (by loss), then pruned ones by the step they
    reached (higher first), then by their last value."""
    return (-math.inf if ind.status == OK else -float(ind.step or 0), ind.loss)


class _Descending(str):
    """An id that sorts in reverse (the worst-first heap breaks ties towards the larger id)."""

    def __lt__(self, other: str) -> bool:  # type: ignore[override]
        return str.__gt__(self, other)


class Population:
    """Evaluated individuals of one island, with dedupe by configuration and a best-k breeding pool."""

    def __init__(self, space: Space, pool_size: int) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size={pool_size!r} must be >= 1")
        self.space, self.pool_size = Space(space), pool_size
        self._by_id: dict[str, Individual] = {}
        self._keys: set[tuple] = set()  # configurations evaluated (anywhere we heard of)
        self._in_flight: set[tuple] = set()
        self._elsewhere: set[int] = set()  # digests of configurations evaluated or running on other islands
        self._active: dict[str, Entry] = {}  # id -> its live entry; heap entries not equal to it are stale
        self._pool: list[Entry] = []
        self._rest: list[Entry] = []  # min-heap of active entries outside the pool (may hold stale ones)
        self._worst: list[tuple[float, float, _Descending, int]] = []  # max-heap of active entries (may be stale)
        self._seq = 0
        self.n_failed = 0

    # --- queries --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, ind_id: object) -> bool:
        return ind_id in self._by_id

    def __iter__(self) -> Iterator[Individual]:
        return iter(self._by_id.values())

    def get(self, ind_id: str) -> Individual | None:
        return self._by_id.get(ind_id)

    @property
    def n_active(self) -> int:
        return len(self._active)

    def is_active(self, ind_id: str) -> bool:
        return ind_id in self._active

    def pool(self) -> list[Individual]:
        """The breeding pool: the best ``pool_size`` active individuals, best first."""
        return [self._by_id[e[1]] for e in self._pool]

    def kth_key(self, k: int) -> Key:
        """The ``rank_key`` of the k-th best active individual (1-based, k <= pool_size); (inf, inf) when fewer are
        active."""
        return self._pool[k - 1][0] if len(self._pool) >= k else (math.inf, math.inf)

    def best(self) -> Individual | None:
        """The best active individual that ran to its end (None when there is none)."""
        ind = self._by_id[self._pool[0][1]] if self._pool else None
        return ind if ind is not None and ind.ok else None

    def worst(self) -> Individual | None:
        """The worst active individual (of equal losses, the one with the largest id)."""
        while self._worst and self._active.get(self._worst[0][2], (0, "", -1))[2] != self._worst[0][3]:
            heapq.heappop(self._worst)
        return self._by_id[self._worst[0][2]] if self._worst else None

    def seen(self, params: Mapping[str, Any]) -> bool:
        """Whether this configuration was evaluated or is being evaluated (here, or on another island we heard of)."""
        key = self.space.key(params)
        if key in self._keys or key in self._in_flight:
            return True
        return bool(self._elsewhere) and self.digest(params) in self._elsewhere

    def digest(self, params: Mapping[str, Any]) -> int:
        """A 64-bit identity of a configuration, the same in every process (no ``hash()``: it is salted)."""
        parts = []
        for name, p in self.space.items():
            v = params[name]
            parts.append(str(p.index(v)) if isinstance(p, Choice) else repr(int(v) if isinstance(p, Int) else float(v)))
        return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest(), "little")

    # --- in-flight bookkeeping --------------------------------------------------------------------------
    def reserve(self, params: Mapping[str, Any]) -> None:
        self._in_flight.add(self.space.key(params))

    def release(self, params: Mapping[str, Any]) -> None:
        self._in_flight.discard(self.space.key(params))

    def in_flight(self, params: Mapping[str, Any]) -> bool:
        """Whether a worker of the island is evaluating this configuration now."""
        return self.space.key(params) in self._in_flight

    def note(self, digests: Iterable[int]) -> None:
        """Configurations (by ``digest``) evaluated or started on another island: never bred here."""
        self._elsewhere.update(digests)

    # --- updates --------------------------------------------------------------------------------------
    def add(self, ind: Individual, active: bool = True) -> bool:
        """Archive ``ind``; False (and nothing changes) when its id is already known."""
        if ind.id in self._by_id:
            return False
        self._by_id[ind.id] = ind
        self._keys.add(self.space.key(ind.params))
        if ind.status == FAILED:
            self.n_failed += 1
        if ind.breeds and active:
            self._activate(ind)
        return True

    def _activate(self, ind: Individual) -> None:
        self._seq += 1
        key = rank_key(ind)
        entry = (key, ind.id, self._seq)
        self._active[ind.id] = entry
        heapq.heappush(self._worst, (-key[0], -key[1], _Descending(ind.id), self._seq))
        if len(self._pool) < self.pool_size or entry < self._pool[-1]:
            bisect.insort(self._pool, entry)
            if len(self._pool) > self.pool_size:
                heapq.heappush(self._rest, self._pool.pop())
        else:
            heapq.heappush(self._rest, entry)

    def activate(self, ind_id: str) -> bool:
        """Make an archived, deactivated individual active again (an emigrant that came back)."""
        ind = self._by_id.get(ind_id)
        if ind is None or ind_id in self._active or not ind.breeds:
            return False
        self._activate(ind)
        return True

    def deactivate(self, ind_id: str) -> bool:
        """Take an individual out of breeding (it emigrated or was replaced); it stays archived."""
        if ind_id not in self._active:
            return False
        del self._active[ind_id]
        for i, e in enumerate(self._pool):
            if e[1] == ind_id:
                del self._pool[i]
                while self._rest:
                    nxt = heapq.heappop(self._rest)
                    if self._active.get(nxt[1]) == nxt:
                        self._pool.append(nxt)  # every rest entry is worse than every pool entry
                        break
                break
        return True
