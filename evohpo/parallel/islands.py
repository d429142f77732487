"""Islands exchanging individuals: the worker's side of migration. What leaves and what arrives is decided by
``core.migration``'s pure functions; this carries the messages and writes the journal.

Islands also tell each other which configurations they started, so that no island evaluates one that another
did. Only in a finite space (no Float parameter): in any other, two islands breed the same configuration with
probability zero, and the notices would cost every worker one message per other island per evaluation and a
digest of every configuration of the whole search. Each worker sends the 64-bit digests of the configurations it
starts in a NOTICE to one worker of each other island (its relay there), at once unless it sent one less than
``NOTICE_DELAY`` seconds ago (then they wait, up to ``NOTICE_BATCH`` of them, for the next evaluation to start);
the relay passes them on to its island peers with its next result. Per worker that is at most one message per
other island per evaluation, per NOTICE_DELAY and per NOTICE_BATCH evaluations, with 8 bytes per configuration.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core import clock
from ..core.migration import Batch, IslandLayout, MigrationPolicy, depart, emigrate, immigrate
from ..core.population import Population
from ..journal import records
from .transport import Tag, Transport

NOTICE_BATCH = 64  # digests per NOTICE at most
NOTICE_DELAY = 0.1  # seconds between two NOTICEs of one worker at least (unless NOTICE_BATCH digests wait)


class IslandExchange:
    """Sends this worker's emigrants and takes in immigrants and departures from other workers."""

    def __init__(self, transport: Transport, layout: IslandLayout, policy: MigrationPolicy, population: Population,
                 journal: Any) -> None:
        self.transport, self.layout, self.policy, self.journal = transport, layout, policy, journal
        self.population = population
        self.rank = transport.rank
        self.island = layout.island_of(self.rank)
        self.peers = [r for r in layout.workers(self.island) if r != self.rank]
        here = layout.workers(self.island).index(self.rank)
        self.relays = [layout.workers(i)[here % layout.sizes[i]] for i in range(layout.n_islands)
                       if i != self.island] if population.space.finite else []
        self._outbox: list[int] = []  # digests of this worker's configurations not sent to other islands yet
        self._last_sent = -math.inf  # when this worker sent its last NOTICE
        self._inbox: list[int] = []  # digests from other islands, to pass on to the island's peers

    # --- notices of started configurations --------------------------------------------------------------------
    def started(self, params: dict[str, Any], now: float | None = None) -> None:
        """A configuration starts here: tell the other islands (batched)."""
        if not self.relays:
            return
        self._outbox.append(self.population.digest(params))
        self.flush(now=now)

    def flush(self, force: bool = False, now: float | None = None) -> None:
        """Send the waiting digests unless the last NOTICE went out less than NOTICE_DELAY ago (or ``force``)."""
        if not self._outbox:
            return
        now = clock.now() if now is None else now
        if force or len(self._outbox) >= NOTICE_BATCH or now - self._last_sent >= NOTICE_DELAY:
            self.transport.send_all(self.relays, Tag.NOTICE, self._outbox)
            self._outbox, self._last_sent = [], now

    def on_notice(self, digests: list[int]) -> None:
        """Configurations started on another island: never bred here; passed on to this island's peers."""
        self.population.note(digests)
        if self.peers:
            self._inbox.extend(digests)

    def relayed(self) -> list[int] | None:
        """The digests to pass on with this worker's next result (None: none)."""
        out, self._inbox = self._inbox or None, []
        return out

    def maybe_emigrate(self, rng: np.random.Generator) -> None:
        """Send emigrants when it is time (``MigrationPolicy.prob`` per island per evaluation)."""
        out = emigrate(self.population, self.policy, self.layout, self.island, self.rank, rng)
        if out is None:
            return
        for r in self.layout.workers(out.dest):
            self.transport.send(r, Tag.MIGRANT, (out.mode, out.batch))
        if not self.policy.pollinate:  # they left: the island's other workers stop breeding from them too
            self.transport.send_all(self.peers, Tag.DEACTIVATE, [(ind.id, hop) for ind, hop in out.batch])
        now = clock.now()
        for ind, hop in out.batch:
            self.journal.write(records.migrate(ind.id, self.island, out.dest, hop, out.mode, now))

    def on_migrants(self, payload: tuple[str, Batch]) -> None:
        """Individuals arriving from another island."""
        mode, batch = payload
        immigrate(self.population, self.policy, self.island, mode, batch)

    def on_departed(self, moves: list[tuple[str, int]]) -> None:
        """Individuals another worker of this island sent away."""
        depart(self.population, self.policy, moves)
