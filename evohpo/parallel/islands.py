"""Islands exchanging individuals: the worker's side of migration. What leaves and what arrives is decided by
``core.migration``'s pure functions; this carries the messages and writes the journal."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..core.migration import Batch, IslandLayout, MigrationPolicy, depart, emigrate, immigrate
from ..core.population import Population
from ..journal import records
from .transport import Tag, Transport


class IslandExchange:
    """Sends this worker's emigrants and takes in immigrants and departures from other workers."""

    def __init__(self, transport: Transport, layout: IslandLayout, policy: MigrationPolicy, population: Population,
                 journal: Any) -> None:
        self.transport, self.layout, self.policy, self.journal = transport, layout, policy, journal
        self.population = population
        self.rank = transport.rank
        self.island = layout.island_of(self.rank)
        self.peers = [r for r in layout.workers(self.island) if r != self.rank]

    def maybe_emigrate(self, rng: np.random.Generator) -> None:
        """Send emigrants when it is time (``MigrationPolicy.prob`` per island per evaluation)."""
        out = emigrate(self.population, self.policy, self.layout, self.island, self.rank, rng)
        if out is None:
            return
        for r in self.layout.workers(out.dest):
            self.transport.send(r, Tag.MIGRANT, (out.mode, out.batch))
        if not self.policy.pollinate:  # they left: the island's other workers stop breeding from them too
            self.transport.send_all(self.peers, Tag.DEACTIVATE, [(ind.id, hop) for ind, hop in out.batch])
        now = time.time()
        for ind, hop in out.batch:
            self.journal.write(records.migrate(ind.id, self.island, out.dest, hop, out.mode, now))

    def on_migrants(self, payload: tuple[str, Batch]) -> None:
        """Individuals arriving from another island."""
        mode, batch = payload
        immigrate(self.population, self.policy, self.island, mode, batch)

    def on_departed(self, moves: list[tuple[str, int]]) -> None:
        """Individuals another worker of this island sent away."""
        depart(self.population, self.policy, moves)
