"""Virtual time for simulated workers: one greenlet per worker, a clock per worker, an event heap.

A worker runs the real code until it blocks: in an evaluation (``sleep``: its clock jumps by the evaluation's
duration) or waiting (``_park``: until an event someone scheduled for it). The scheduler always resumes the worker
with the earliest event, so virtual time never runs backwards for anyone. While a worker runs, its clock advances
by the CPU time its code really takes here (``cpu="measured"``: the thread's CPU time, so that other processes'
load does not count, times ``cpu_scale``), less the simulator's own work (``hidden``), plus what is ``charge``d to
it; with ``cpu=<seconds>`` it advances by that constant per evaluation instead, so that a seed gives the same trace
on any machine.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

try:
    import greenlet
except ImportError as e:  # pragma: no cover - the sim extra brings it
    raise ImportError("evohpo.sim needs the greenlet package: pip install 'evohpo[sim]'") from e


class SimulationError(RuntimeError):
    """The simulated search cannot go on: every worker waits for a message that never comes (a hang on a real
    machine), or a worker raised."""


@dataclass
class Proc:
    """One simulated worker: its clock, its mailbox, and where its time went."""

    rank: int
    glet: Any = None
    t: float = 0.0  # virtual time when it was last resumed
    real0: float = 0.0  # the thread's CPU time when it was last resumed
    hidden: float = 0.0  # CPU seconds of simulator work since it was resumed (not charged to the worker)
    charged: float = 0.0  # virtual seconds charged since it was resumed (messages, constant CPU)
    token: int = 0  # the event that may resume it (older ones on the heap are stale)
    wake: float = math.inf  # when that event is (inf: none; a sender or a collective will schedule one)
    waiting: str = ""  # "message", "collective" or "" (running or in an evaluation)
    done: bool = False
    mailbox: list[tuple[float, int, int, int, Any]] = field(default_factory=list)  # (arrival, seq, src, tag, msg)
    n_collectives: int = 0
    # accounting, in virtual seconds
    evaluating: float = 0.0
    cpu: float = 0.0  # the real code's own time (measured or constant)
    cpu_startup: float = 0.0  # the part before its first evaluation (optimize's start)
    send: float = 0.0  # charged for sending
    receive: float = 0.0  # charged for receiving (probes, recv, unpickling)
    # in the loop: before its last evaluation started, after its first one (receive: before the last only)
    receive_in_loop: float = 0.0
    cpu_in_loop: float = 0.0
    messages_in_loop: int = 0
    bytes_in_loop: int = 0
    blocked: float = 0.0
    last_end: float = 0.0  # when its last evaluation ended
    n_evaluations: int = 0
    sent_messages: int = 0
    sent_bytes: int = 0
    received: int = 0
    finished_at: float = 0.0


class Scheduler:
    """Virtual time for ``size`` workers whose real code runs in greenlets of one thread."""

    def __init__(self, size: int, cpu: str | float = "measured", cpu_scale: float = 1.0) -> None:
        if cpu != "measured" and (isinstance(cpu, bool) or not isinstance(cpu, (int, float)) or not
                                  math.isfinite(cpu) or cpu < 0):
            raise ValueError(f"cpu={cpu!r} must be 'measured' or a non-negative number of seconds per evaluation")
        if not (isinstance(cpu_scale, (int, float)) and math.isfinite(cpu_scale) and cpu_scale >= 0):
            raise ValueError(f"cpu_scale={cpu_scale!r} must be a non-negative number")
        self.size = size
        self.measured = cpu == "measured"
        self.cpu_per_evaluation = 0.0 if self.measured else float(cpu)
        self.cpu_scale = float(cpu_scale)
        self._cpu = time.thread_time if self.measured else _no_time  # the CPU clock the real code is measured on
        self.procs = [Proc(r) for r in range(size)]
        self.current: Proc | None = None
        self.time = 0.0  # the latest event's time (the clock outside any worker)
        self.events = 0
        self._heap: list[tuple[float, int, int, int]] = []
        self._seq = 0
        self._main: Any = None

    def now(self) -> float:
        """The running worker's virtual time (or the latest event's, outside a worker)."""
        p = self.current
        return self.time if p is None else self._at(p, self._cpu())

    def _at(self, p: Proc, cpu: float) -> float:
        """``p``'s virtual time when the thread's CPU clock reads ``cpu``."""
        return p.t + (cpu - p.real0 - p.hidden) * self.cpu_scale + p.charged

    @contextmanager
    def hidden(self) -> Iterator[None]:
        """Simulator work inside a worker's turn: not part of the worker's measured CPU."""
        t0 = self._cpu()
        try:
            yield
        finally:
            if self.current is not None:
                self.current.hidden += self._cpu() - t0

    def charge(self, seconds: float, kind: str) -> None:
        """Advance the running worker's clock by modelled costs (``kind``: "send", "receive" or "cpu")."""
        p = self.current
        if p is None:
            return
        p.charged += seconds
        if kind == "send":
            p.send += seconds
        elif kind == "receive":
            p.receive += seconds
        else:
            p.cpu += seconds

    # --- running ----------------------------------------------------------------------------------------------
    def run(self, body: Callable[[int], Any]) -> list[Any]:
        """Run ``body(rank)`` for every rank to its end in virtual time; their return values by rank. In a thread
        of its own (so that the real code installs no signal handlers), greenlets inside it."""
        out: list[Any] = [None] * self.size
        error: list[BaseException] = []

        def main() -> None:
            try:
                self._main = greenlet.getcurrent()
                for p in self.procs:
                    p.glet = greenlet.greenlet(self._wrap(body, p, out))
                    self._schedule(p, 0.0)
                self._loop()
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                error.append(e)

        thread = threading.Thread(target=main, name="evohpo-sim")
        thread.start()
        thread.join()
        if error:
            raise error[0]
        return out

    def _wrap(self, body: Callable[[int], Any], p: Proc, out: list[Any]) -> Callable[[], None]:
        def go() -> None:
            out[p.rank] = body(p.rank)
            self._suspend()  # account the last turn
            p.done, p.finished_at = True, p.t
        return go

    def _loop(self) -> None:
        while self._heap:
            t, _, rank, token = heapq.heappop(self._heap)
            p = self.procs[rank]
            if token != p.token or p.done:
                continue  # stale
            if p.waiting:
                p.blocked += t - p.t
                p.waiting = ""
            self.time = p.t = max(t, p.t)
            p.real0, p.hidden, p.charged = self._cpu(), 0.0, 0.0
            self.current = p
            self.events += 1
            p.glet.switch()
            self.current = None
            if p.glet.dead and not p.done:  # it raised: greenlet hands the exception to us
                raise SimulationError(f"simulated worker {rank} ended without finishing")
        stuck = sorted((p for p in self.procs if not p.done), key=lambda p: (p.waiting == "collective", p.rank))
        if stuck:
            states = ", ".join(self._state(p) for p in stuck[:8])
            raise SimulationError(f"{len(stuck)} simulated workers wait forever (a hang on a real machine): {states}")

    def _state(self, p: Proc) -> str:
        """What a stuck worker waits for, for the hang report."""
        return f"{p.rank}: {p.waiting or 'ready'} at {p.t:.6g}"

    def _schedule(self, p: Proc, t: float) -> None:
        self._seq += 1
        p.token, p.wake = self._seq, t
        heapq.heappush(self._heap, (t, self._seq, p.rank, p.token))

    def _park(self, p: Proc, waiting: str, until: float = math.inf) -> None:
        """Suspend the running worker ``p`` until ``until`` or until someone schedules it."""
        self._suspend()
        p.waiting = waiting
        if until < math.inf:
            self._schedule(p, max(until, p.t))
        else:
            p.token, p.wake = -1, math.inf
        self.current = None
        self._main.switch()

    def _suspend(self) -> None:
        """End the running worker's turn: its clock to now, its measured CPU accounted."""
        p = self.current
        assert p is not None
        now = self.now()
        p.cpu += now - p.t - p.charged
        p.t = now

    # --- what a worker does -------------------------------------------------------------------------------
    def sleep(self, seconds: float) -> tuple[float, float]:
        """An evaluation of ``seconds`` on the running worker (its constant CPU first, in ``cpu=<s>`` mode); when
        it started and ended."""
        p = self.current
        assert p is not None, "sleep() outside a simulated worker"
        p.charged += self.cpu_per_evaluation
        p.cpu += self.cpu_per_evaluation
        self._suspend()
        if p.n_evaluations == 0:
            p.cpu_startup = p.cpu  # setting up (optimize's start), not per evaluation
        p.receive_in_loop = p.receive  # what happened before its last evaluation started is the loop's
        p.cpu_in_loop, p.messages_in_loop, p.bytes_in_loop = p.cpu - p.cpu_startup, p.sent_messages, p.sent_bytes
        self._schedule(p, p.t + seconds)
        p.evaluating += seconds
        self.current = None
        self._main.switch()
        p.last_end, p.n_evaluations = p.t, p.n_evaluations + 1
        return p.t - seconds, p.t


def _no_time() -> float:
    """The CPU clock with ``cpu=<seconds>``: the code's own time does not count."""
    return 0.0
