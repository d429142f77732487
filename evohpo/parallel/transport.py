"""Point-to-point messages between workers, and clean termination without blocking on a peer.

Each transport counts what it sent to and received from every peer. When a worker is done it posts
its send counts in a nonblocking all-to-all and keeps draining; it is finished once the exchange has
completed, it has received exactly what its peers say they sent, and all its own sends completed.
Backends: ``MPITransport`` (eager ``isend``, ``iprobe``, ``Ialltoall``) and ``ThreadTransport`` (queues,
for tests of several workers in one process).
"""

from __future__ import annotations

import enum
import functools
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

Message = tuple[int, int, Any]  # (source rank, tag, payload)


class Tag(enum.IntEnum):
    """Every message tag evohpo sends."""

    RESULT = 71  # an individual evaluated on the sender's island
    MIGRANT = 72  # individuals moving (or copied) to the receiver's island
    DEACTIVATE = 73  # individuals that left the receiver's island
    PROGRESS = 74  # a worker's counters, for rank 0's progress report
    STOP = 75  # stop starting evaluations (a signal reached the sender)
    ASK = 76  # the sender used up its evaluations: may it have some of the receiver's?
    GIFT = 77  # evaluations handed over in answer to ASK (possibly none)
    RETIRED = 78  # the sender starts no more evaluations and answers no more ASKs
    NOTICE = 79  # digests of configurations started on another island (for the receiver to pass on to its peers)
    RUNG = 80  # a training of the sender's island reached a rung: (id, rung step, loss), for the pruner


class Transport(ABC):
    """Counting, nonblocking message passing among ``size`` workers."""

    rank: int
    size: int

    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size
        self.sent = self._counts(size)
        self.received = self._counts(size)
        self._expected: np.ndarray | None = None
        self._closing = False
        self._held: list[Message] = []

    def _counts(self, size: int) -> Any:
        """A per-peer message counter (a numpy array; the simulator's is sparse)."""
        return np.zeros(size, dtype=np.int64)

    @property
    def closing(self) -> bool:
        """True after ``close``: this worker sends nothing more."""
        return self._closing

    def send(self, dest: int, tag: Tag, payload: Any) -> None:
        self.send_all([dest], tag, payload)

    def send_all(self, dests: list[int], tag: Tag, payload: Any) -> None:
        """The same message to every rank in ``dests`` (serialized once)."""
        if self._closing:
            raise RuntimeError("send() after close(): a finished worker must not send")
        if dests:
            self._count_sent(dests)
            self._send_all(dests, int(tag), payload)

    def _count_sent(self, dests: list[int]) -> None:
        self.sent[dests] += 1

    def poll(self) -> list[Message]:
        """Everything that has arrived, without waiting (what ``hold`` kept first); completed sends are freed too."""
        self._free_completed()
        msgs = self._take()
        if self._held:
            msgs, self._held = self._held + msgs, []
        return msgs

    def hold(self) -> list[Message]:
        """Receive what has arrived and keep it for the next ``poll``; return it (the ``listener``'s look)."""
        msgs = self._take()
        self._held.extend(msgs)
        return msgs

    def _take(self) -> list[Message]:
        msgs = self._receive()
        for src, _, _ in msgs:
            self.received[src] += 1
        return msgs

    @property
    def threads_ok(self) -> bool:
        """Whether a second thread may use the transport while the first runs user code."""
        return True

    def close(self) -> None:
        """Begin termination: post this worker's send counts. No sends after this."""
        if not self._closing:
            self._closing = True
            self._post_counts(self.sent)

    def finished(self) -> bool:
        """True once every message addressed here arrived and every own send completed (after ``close``)."""
        if self._expected is None:
            self._expected = self._counts_result()
            if self._expected is None:
                return False
        self._free_completed()
        return bool(np.array_equal(self.received, self._expected)) and self.pending_sends() == 0

    def wait(self, until: Callable[[], bool], handle: Callable[[list[Message]], None]) -> None:
        """Poll and ``handle`` what arrives until ``until()``; between empty polls sleep 0.1 ms doubling to 1 ms
        (10 ms after a second of waiting), so that collectives in progress (termination) complete quickly but
        idling is cheap."""
        pause, start = 1e-4, time.monotonic()
        while not until():
            msgs = self.poll()
            handle(msgs)
            if msgs:
                pause = 1e-4
            else:
                time.sleep(pause)
                pause = min(pause * 2, 0.001 if time.monotonic() - start < 1.0 else 0.01)

    @abstractmethod
    def _send_all(self, dests: list[int], tag: int, payload: Any) -> None: ...

    @abstractmethod
    def _receive(self) -> list[Message]: ...

    @abstractmethod
    def _free_completed(self) -> None: ...

    @abstractmethod
    def pending_sends(self) -> int: ...

    @abstractmethod
    def _post_counts(self, counts: np.ndarray) -> None: ...

    @abstractmethod
    def _counts_result(self) -> np.ndarray | None:
        """What each peer sent to this worker, once all have posted; None before."""

    @abstractmethod
    def allgather(self, obj: Any) -> list[Any]:
        """A blocking gather to all workers (only after every worker finished)."""

    def allreduce(self, obj: Any, merge: Callable[[Any, Any], Any]) -> Any:
        """Every worker's ``obj`` combined by ``merge`` (associative and commutative), to all workers: a blocking
        collective whose result, unlike ``allgather``'s, does not grow with the number of workers."""
        return functools.reduce(merge, self.allgather(obj))

    def abort(self, code: int = 1) -> None:  # noqa: B027 (in-process workers just raise)
        """End all workers at once (a fatal error on one of them)."""

    def free(self) -> None:  # noqa: B027 (nothing to free in-process)
        """Release what the transport holds (after the final gather)."""


EMPTY_PROBES = 4  # 0.5 us each; 2 in a row were seen between two waiting messages at 8 ranks on 2 cores


class MPITransport(Transport):
    """Messages over an MPI communicator (duplicated, so user traffic cannot collide with ours)."""

    def __init__(self, comm: Any) -> None:
        from mpi4py import MPI

        self._mpi = MPI
        self.comm = comm.Dup()
        super().__init__(self.comm.Get_rank(), self.comm.Get_size())
        self._requests: list[Any] = []
        self._status = MPI.Status()
        self._counts_in = np.zeros(self.size, dtype=np.int64)
        self._counts_out = np.zeros(self.size, dtype=np.int64)
        self._counts_req: Any = None

    @property
    def threads_ok(self) -> bool:  # the loss function may call MPI while the listener probes
        return bool(self._mpi.Query_thread() == self._mpi.THREAD_MULTIPLE)

    def _send_all(self, dests: list[int], tag: int, payload: Any) -> None:
        data = self._mpi.pickle.dumps(payload)  # once, however many receivers: what isend would send each
        for dest in dests:  # the buffer stays referenced with its request until the send completed
            self._requests.append((self.comm.Isend([data, self._mpi.BYTE], dest=dest, tag=tag), data))

    def _receive(self) -> list[Message]:
        # Done only after EMPTY_PROBES empty probes in a row: MPICH's iprobe, finding nothing matched, runs the
        # progress engine once and answers "nothing" even when that brought a message in, so after a pause without
        # MPI calls (an evaluation) stopping at the first "nothing" left the messages one evaluation late.
        out, st, empty = [], self._status, 0
        while empty < EMPTY_PROBES:
            if self.comm.iprobe(source=self._mpi.ANY_SOURCE, tag=self._mpi.ANY_TAG, status=st):
                src, tag = st.Get_source(), st.Get_tag()  # recv unpickles what _send_all pickled
                out.append((src, tag, self.comm.recv(source=src, tag=tag)))
                empty = 0
            else:
                empty += 1
        return out

    def _free_completed(self) -> None:
        if self._requests:
            self._requests = [r for r in self._requests if not r[0].Test()]

    def pending_sends(self) -> int:
        return len(self._requests)

    def _post_counts(self, counts: np.ndarray) -> None:
        self._counts_out[:] = counts
        self._counts_req = self.comm.Ialltoall(self._counts_out, self._counts_in)

    def _counts_result(self) -> np.ndarray | None:
        if self._counts_req is None or not self._counts_req.Test():
            return None
        return self._counts_in.copy()

    def allgather(self, obj: Any) -> list[Any]:
        return self.comm.allgather(obj)

    def allreduce(self, obj: Any, merge: Callable[[Any, Any], Any]) -> Any:
        return self.comm.allreduce(obj, op=merge)

    def abort(self, code: int = 1) -> None:  # noqa: B027 (in-process workers just raise)
        self.comm.Abort(code)

    def free(self) -> None:
        self.comm.Free()


class ThreadHub:
    """Shared mailboxes for ``size`` workers running as threads of one process."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.boxes: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(size)]
        self.counts: dict[int, np.ndarray] = {}
        self.gathered: dict[int, Any] = {}
        self.lock = threading.Lock()
        self.barrier = threading.Barrier(size)

    def transports(self) -> list[ThreadTransport]:
        return [ThreadTransport(self, r) for r in range(self.size)]


class ThreadTransport(Transport):
    """In-process transport: same counting protocol, queues instead of MPI."""

    def __init__(self, hub: ThreadHub, rank: int) -> None:
        super().__init__(rank, hub.size)
        self.hub = hub

    def _send_all(self, dests: list[int], tag: int, payload: Any) -> None:
        for dest in dests:
            self.hub.boxes[dest].put((self.rank, tag, payload))

    def _receive(self) -> list[Message]:
        box, out = self.hub.boxes[self.rank], []
        while True:
            try:
                out.append(box.get_nowait())
            except queue.Empty:
                return out

    def _free_completed(self) -> None:
        pass

    def pending_sends(self) -> int:
        return 0

    def _post_counts(self, counts: np.ndarray) -> None:
        with self.hub.lock:
            self.hub.counts[self.rank] = counts.copy()

    def _counts_result(self) -> np.ndarray | None:
        with self.hub.lock:
            if len(self.hub.counts) < self.size:
                return None
            return np.array([self.hub.counts[src][self.rank] for src in range(self.size)], dtype=np.int64)

    def allgather(self, obj: Any) -> list[Any]:
        with self.hub.lock:
            self.hub.gathered[self.rank] = obj
        self.hub.barrier.wait()
        out = [self.hub.gathered[r] for r in range(self.size)]
        self.hub.barrier.wait()
        return out


def local_transport() -> ThreadTransport:
    """A transport for a single worker with no peers."""
    return ThreadHub(1).transports()[0]


def as_transport(comm: Any) -> Transport:
    """A transport from an MPI communicator, a ready transport, or None (COMM_WORLD when mpi4py is present)."""
    if isinstance(comm, Transport):
        return comm
    if comm is None:
        try:
            from mpi4py import MPI
        except ImportError:
            return local_transport()
        comm = MPI.COMM_WORLD
    return MPITransport(comm)

