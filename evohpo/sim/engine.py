"""What simulated workers do to each other: messages that cost what the cost model says, the termination
exchange and blocking collectives, all in the ``Scheduler``'s virtual time.

Messages travel as the bytes MPI would carry (pickled once per send, so that sizes and costs are real); a message
arrives ``transfer(bytes)`` after it was sent and is visible to the receiver's next poll from then on. The copies of
one send share the object unpickled from those bytes (once, not once per receiver): the loop never changes what it
receives (individuals are frozen), and 16,384 workers could not be simulated otherwise.
"""

from __future__ import annotations

import collections
import heapq
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .costs import CostModel
from .scheduler import Proc, Scheduler, SimulationError

__all__ = ["Engine", "Proc", "SimulationError"]


class _Sent:
    """One send's bytes, and the payload unpickled from them by its first receiver."""

    __slots__ = ("data", "payload", "loaded")

    def __init__(self, data: bytes) -> None:
        self.data, self.payload, self.loaded = data, None, False

    def load(self) -> Any:
        if not self.loaded:
            self.payload, self.loaded = pickle.loads(self.data), True
        return self.payload


@dataclass
class _Collective:
    values: dict[int, Any] = field(default_factory=dict)
    latest: float = 0.0
    result: Any = None
    done_at: float | None = None
    readers: int = 0


class Engine(Scheduler):
    """``size`` simulated workers, their messages and their collectives; ``costs`` the message cost model (default
    the one measured with MPI on the machine in ``costs.json``)."""

    def __init__(self, size: int, costs: CostModel | None = None, cpu: str | float = "measured",
                 cpu_scale: float = 1.0) -> None:
        super().__init__(size, cpu, cpu_scale)
        self.costs = costs or CostModel.load()
        # per worker, what each sender sent it: what it must have received to be finished (MPI's count exchange)
        self.inbound: list[collections.Counter[int]] = [collections.Counter() for _ in range(size)]
        self.by_tag: collections.Counter[int] = collections.Counter()  # messages sent, by tag
        self._collectives: dict[int, _Collective] = {}
        self._closed: dict[int, float] = {}  # rank -> when it posted its counts
        self.closed_at: float | None = None  # when the termination exchange completes

    def _state(self, p: Proc) -> str:
        expected = sum(self.inbound[p.rank].values())
        return f"{super()._state(p)} ({len(p.mailbox)} in its mailbox, {p.received} of {expected} received)"

    def sleep(self, seconds: float) -> tuple[float, float]:
        """An evaluation (when it started and ended); after it, with measured CPU, the model's ``wake``: what the
        loop's code costs more right after an evaluation than in the simulator, where thousands of workers take
        turns with warm caches."""
        span = super().sleep(seconds)
        if self.measured:
            self.charge(self.costs.wake, "cpu")
        return span

    def block(self) -> None:
        """Wait until the next message addressed to the running worker arrives (or a collective completes)."""
        p = self.current
        assert p is not None
        until = p.mailbox[0][0] if p.mailbox else math.inf
        if self.closed_at is not None:  # once the exchange completed (or at once, if it did while we looked)
            until = min(until, self.closed_at)
        self._park(p, "message", until)

    def send(self, src: int, dests: list[int], tag: int, payload: Any) -> None:
        """Deliver ``payload`` from the running worker to ``dests``: pickled once, each copy arriving after the
        model's transfer time (the k-th copy posted after k posts). All of it is the simulator's work; the worker is
        charged the model's send cost instead."""
        p = self.procs[src]
        real = self._cpu()
        t0 = self._at(p, real)
        msg = _Sent(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
        costs, n, k = self.costs, len(msg.data), len(dests)
        p.sent_messages += k
        p.sent_bytes += n * k
        self.by_tag[tag] += k
        first = t0 + costs.send_cpu(n, 0) + costs.transfer(n)
        for i, dest in enumerate(dests, 1):
            self._seq += 1
            q = self.procs[dest]
            arrival = first + i * costs.post
            heapq.heappush(q.mailbox, (arrival, self._seq, src, tag, msg))
            self.inbound[dest][src] += 1
            if q.waiting == "message" and arrival < q.wake:
                self._schedule(q, arrival)
        p.hidden += self._cpu() - real
        self.charge(costs.send_cpu(n, k), "send")

    def take(self, rank: int) -> list[tuple[int, int, Any]]:
        """The messages that reached ``rank`` by now, unpickled (once per send); their receive cost charged."""
        p, box = self.procs[rank], self.procs[rank].mailbox
        charge, out = self.costs.empty_poll, []
        if box:  # an empty mailbox needs no clock
            real = self._cpu()
            now = self._at(p, real)
            while box and box[0][0] <= now:
                _, _, src, tag, msg = heapq.heappop(box)
                out.append((src, tag, msg.load()))
                charge += self.costs.receive_cpu(len(msg.data))
            p.hidden += self._cpu() - real
        self.charge(charge, "receive")
        p.received += len(out)
        return out

    # --- collectives --------------------------------------------------------------------------------------
    def close(self, rank: int) -> None:
        """``rank`` posted its send counts (the termination exchange); the exchange completes once all did."""
        self._closed[rank] = self.now()
        if len(self._closed) == self.size:
            self.closed_at = max(self._closed.values()) + self.costs.collective_time(self.size)
            for q in self.procs:
                if q.waiting == "message" and self.closed_at < q.wake:
                    self._schedule(q, self.closed_at)

    def closed(self, rank: int) -> bool:
        """Whether the termination exchange completed, as ``rank`` sees it now."""
        return self.closed_at is not None and self.now() >= self.closed_at

    def collective(self, rank: int, value: Any, combine: Callable[[list[Any]], Any]) -> Any:
        """A blocking collective: every worker's ``value`` (by rank) to ``combine``, its result to all, once the
        last worker arrived plus the model's collective time."""
        p = self.procs[rank]
        key = p.n_collectives
        p.n_collectives += 1
        c = self._collectives.setdefault(key, _Collective())
        c.values[rank] = value
        c.latest = max(c.latest, self.now())
        if len(c.values) == self.size:
            with self.hidden():
                c.result = combine([c.values[r] for r in range(self.size)])
                c.values = {}
            c.done_at = c.latest + self.costs.collective_time(self.size)
            for q in self.procs:
                if q.waiting == "collective":
                    self._schedule(q, c.done_at)
        self._park(p, "collective", math.inf if c.done_at is None else c.done_at)
        c.readers += 1
        if c.readers == self.size:
            del self._collectives[key]
        return c.result
