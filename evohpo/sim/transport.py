"""The worker loop's transport in virtual time: the same counting protocol as MPI, messages through the engine."""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable
from typing import Any

from ..parallel.transport import Message, Transport
from .engine import Engine


class SparseCounts(collections.Counter):
    """Per-peer message counts that take memory only for the peers a worker talks to (16,384 workers would hold
    2 GiB of dense counters in one process)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def sum(self) -> int:
        return sum(self.values())

    def tolist(self) -> list[int]:
        return [self[i] for i in range(self.size)]


class SimTransport(Transport):
    """One simulated worker's transport: sends cost what the engine's cost model says, receives see what has
    arrived by the worker's virtual time, waiting blocks in virtual time, termination is the engine's exchange."""

    def __init__(self, engine: Engine, rank: int) -> None:
        super().__init__(rank, engine.size)
        self.engine = engine

    def _counts(self, size: int) -> SparseCounts:
        return SparseCounts(size)

    def _count_sent(self, dests: list[int]) -> None:
        self.sent.update(dests)

    @property
    def threads_ok(self) -> bool:  # one thread runs every simulated worker
        return False

    def _send_all(self, dests: list[int], tag: int, payload: Any) -> None:
        self.engine.send(self.rank, dests, tag, payload)

    def _receive(self) -> list[Message]:
        return self.engine.take(self.rank)

    def _free_completed(self) -> None:
        pass

    def pending_sends(self) -> int:
        return 0

    def _post_counts(self, counts: Any) -> None:
        self.engine.close(self.rank)

    def _counts_result(self) -> collections.Counter[int] | None:
        """What each peer sent here (the engine counts it as MPI's exchange would), once the exchange completed."""
        return self.engine.inbound[self.rank] if self.engine.closed(self.rank) else None

    def finished(self) -> bool:
        """The exchange completed and exactly what each peer sent here arrived (sparse counts: no dense vectors)."""
        expected = self._counts_result()
        return expected is not None and self.received == expected

    def wait(self, until: Callable[[], bool], handle: Callable[[list[Message]], None]) -> None:
        """Handle messages until ``until()``, blocking in virtual time while nothing arrives."""
        while not until():
            msgs = self.poll()
            handle(msgs)
            if not msgs and not until():
                self.engine.block()

    def allgather(self, obj: Any) -> list[Any]:
        return self.engine.collective(self.rank, obj, list)

    def allreduce(self, obj: Any, merge: Callable[[Any, Any], Any]) -> Any:
        return self.engine.collective(self.rank, obj, functools.partial(_tree, merge))


def _tree(merge: Callable[[Any, Any], Any], values: list[Any]) -> Any:
    """``values`` combined pairwise, as a reduction tree does (log2 levels)."""
    while len(values) > 1:
        values = [merge(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]
