"""Islands: which rank works on which island, where emigrants go, who may send them, and emigration and
immigration as pure functions over an island's population (the worker only carries the messages)."""

from __future__ import annotations

import bisect
import functools
import itertools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .individual import Individual
from .population import Population

MAX_ISLAND = 64  # workers per island by default: every result goes to every island peer, so an island of W costs
# each worker W - 1 messages per evaluation and the handling of W - 1 results (~45 us each) per evaluation period


@dataclass(frozen=True)
class IslandLayout:
    """Ranks 0..N-1 split into consecutive blocks, one block per island."""

    sizes: tuple[int, ...]

    @classmethod
    def make(cls, n_ranks: int, islands: int | None = 1, island_sizes: Sequence[int] | None = None) -> IslandLayout:
        """A balanced split of ``n_ranks`` into ``islands`` (None: as few as keep each at most ``MAX_ISLAND``
        workers), or the given ``island_sizes``."""
        if island_sizes is not None:
            sizes = tuple(int(s) for s in island_sizes)
            if any(s < 1 for s in sizes) or sum(sizes) != n_ranks:
                raise ValueError(f"island_sizes={list(sizes)} must be positive and sum to the {n_ranks} ranks")
            return cls(sizes)
        if islands is None:
            islands = -(-n_ranks // MAX_ISLAND)
        if isinstance(islands, bool) or not isinstance(islands, int) or not 1 <= islands <= n_ranks:
            raise ValueError(f"islands={islands!r} must be an int between 1 and the number of ranks ({n_ranks})")
        base, extra = divmod(n_ranks, islands)
        return cls(tuple(base + (i < extra) for i in range(islands)))

    @property
    def n_islands(self) -> int:
        return len(self.sizes)

    @property
    def n_ranks(self) -> int:
        return self._starts[-1]

    @functools.cached_property
    def _starts(self) -> list[int]:
        """The first rank of each island, and the number of ranks last (found in O(log islands))."""
        return [0, *itertools.accumulate(self.sizes)]

    def island_of(self, rank: int) -> int:
        if not 0 <= rank < self.n_ranks:
            raise ValueError(f"rank={rank} is outside the {self.n_ranks} ranks of the layout")
        return bisect.bisect_right(self._starts, rank) - 1

    def workers(self, island: int) -> list[int]:
        start = self._starts[island]
        return list(range(start, start + self.sizes[island]))

    def owner(self, ind_id: str, island: int) -> int:
        """The one worker of ``island`` allowed to send individual ``ind_id`` away (so no two do)."""
        ranks = self.workers(island)
        return ranks[zlib.crc32(ind_id.encode()) % len(ranks)]


@dataclass(frozen=True)
class Topology:
    """Migration weights ``T[i, j]`` from island i to j, read one row at a time: "complete" and "ring" are never
    stored as an islands x islands matrix (1,024 islands of 16 workers would hold 8 MiB per rank, 16,384 islands
    of one 2 GiB); a given matrix is kept as it is."""

    n: int
    kind: str = "complete"
    matrix: np.ndarray | None = field(default=None, compare=False)

    def row(self, island: int) -> np.ndarray:
        """The weights from ``island`` to every island (0 to itself)."""
        if self.kind == "matrix":
            return self.matrix[island]  # type: ignore[index]
        out = np.zeros(self.n)
        if self.kind == "complete":
            out[:] = 1.0
            out[island] = 0.0
        elif self.n > 1:
            out[(island + 1) % self.n] = 1.0
        return out


def make_topology(topology: str | Sequence[Sequence[float]] | np.ndarray, n_islands: int) -> Topology:
    """Migration weights among ``n_islands``: "complete", "ring" or a given matrix (checked)."""
    if isinstance(topology, str):
        if topology in ("complete", "ring"):
            return Topology(n_islands, topology)
        raise ValueError(f"topology={topology!r} must be 'complete', 'ring' or an islands x islands matrix")
    t = np.asarray(topology, dtype=float)
    if t.shape != (n_islands, n_islands):
        raise ValueError(f"topology matrix has shape {t.shape}, expected ({n_islands}, {n_islands})")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"topology matrix must be finite and non-negative, got {t.tolist()}")
    t = t.copy()
    np.fill_diagonal(t, 0.0)
    return Topology(n_islands, "matrix", t)


@dataclass
class MigrationPolicy:
    """When, where and which individuals leave an island; ``pollinate`` sends copies instead."""

    topology: Topology
    prob: float = 0.1
    emigrants: int = 1
    selection: str = "best"
    pollinate: bool = False
    hops: dict[str, int] = field(default_factory=dict)  # how often each moved individual has moved

    def __post_init__(self) -> None:
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"migration_prob={self.prob!r} must be in [0, 1]")
        if isinstance(self.emigrants, bool) or not isinstance(self.emigrants, int) or self.emigrants < 1:
            raise ValueError(f"emigrants={self.emigrants!r} must be a positive int")
        if self.selection not in ("best", "random"):
            raise ValueError(f"emigrant_selection={self.selection!r} must be 'best' or 'random'")

    @property
    def mode(self) -> str:
        return "pollinate" if self.pollinate else "migrate"

    def due(self, rng: np.random.Generator, island_size: int) -> bool:
        """Whether this worker migrates now (``prob`` per island per evaluation, shared by its workers)."""
        return self.topology.n > 1 and rng.random() < self.prob / island_size

    def destination(self, island: int, rng: np.random.Generator) -> int | None:
        row = self.topology.row(island)
        total = row.sum()
        return None if total <= 0 else int(rng.choice(len(row), p=row / total))

    def select(self, pool: Sequence[Individual], mine: Sequence[bool], rng: np.random.Generator) -> list[Individual]:
        """Emigrants among the pool members this worker owns: the best k or k at random."""
        candidates = [ind for ind, m in zip(pool, mine) if m]
        if self.selection == "random" and len(candidates) > self.emigrants:
            return [candidates[i] for i in sorted(rng.choice(len(candidates), self.emigrants, replace=False))]
        return candidates[: self.emigrants]

    def next_hop(self, ind_id: str) -> int:
        return self.hops.get(ind_id, 0) + 1

    def record_move(self, ind_id: str, hop: int) -> bool:
        """Record that ``ind_id`` made move number ``hop``; False when that move or a later one was seen already
        (messages about one individual can arrive out of order)."""
        if hop <= self.hops.get(ind_id, 0):
            return False
        self.hops[ind_id] = hop
        return True


Batch = list[tuple[Individual, int]]  # emigrants with the number of the move they make (their hop)


@dataclass(frozen=True)
class Emigration:
    """Individuals leaving an island for ``dest`` (moved, or copies when ``mode`` is "pollinate")."""

    dest: int
    mode: str
    batch: Batch


def emigrate(population: Population, policy: MigrationPolicy, layout: IslandLayout, island: int, rank: int,
             rng: np.random.Generator) -> Emigration | None:
    """Whether worker ``rank`` of ``island`` sends emigrants now, and which; None when nobody leaves.

    Only individuals of the breeding pool that this worker owns (``IslandLayout.owner``) leave. Moving (not
    pollinating) takes them out of breeding here; the other workers of the island are told to do the same.
    """
    if not policy.due(rng, layout.sizes[island]):
        return None
    dest = policy.destination(island, rng)
    if dest is None:
        return None
    pool = population.pool()
    mine = [layout.owner(ind.id, island) == rank and not (policy.pollinate and _bred_on(layout, ind, dest))
            for ind in pool]  # a copy sent to where it was bred would be a duplicate there, wasting the slot
    batch = [(ind, policy.next_hop(ind.id)) for ind in policy.select(pool, mine, rng)]
    if not batch:
        return None
    if not policy.pollinate:
        depart(population, policy, [(ind.id, hop) for ind, hop in batch])
    return Emigration(dest, policy.mode, batch)


def _bred_on(layout: IslandLayout, ind: Individual, island: int) -> bool:
    """Whether a worker of ``island`` evaluated ``ind`` (as far as this layout knows its rank)."""
    return 0 <= ind.rank < layout.n_ranks and layout.island_of(ind.rank) == island


def depart(population: Population, policy: MigrationPolicy, moves: list[tuple[str, int]]) -> None:
    """Individuals (id, hop) that moved away from this island stop breeding here (unless a later move of
    theirs was seen already)."""
    for ind_id, hop in moves:
        if policy.record_move(ind_id, hop):
            population.deactivate(ind_id)


def immigrate(population: Population, policy: MigrationPolicy, island: int, mode: str, batch: Batch) -> None:
    """Individuals arriving on ``island``: migrants join its breeding (again, if they had lived here before);
    a pollinating copy replaces the island's worst active individual once the pool is full. A migrant whose later
    move was heard of first (messages from different workers arrive in any order) is archived, not bred from."""
    for ind, hop in batch:
        here = ind.moved(island)
        if mode == "migrate":
            if not policy.record_move(ind.id, hop):
                population.add(here, active=False)
            elif not population.add(here):
                population.activate(ind.id)  # it had lived here before
        elif population.add(here):
            worst = population.worst()
            if worst is not None and worst.id != ind.id and population.n_active > population.pool_size:
                population.deactivate(worst.id)
