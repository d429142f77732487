"""Stop signals during an evaluation: a thread that passes them on at once instead of after the evaluation.

Without it a worker hears a peer's STOP only between evaluations, so the grace period held only on the rank
that got the signal and its peers trained to the end (seconds to hours). While an evaluation runs (and has
run for at least one ``period``), the listener thread sends this rank's own stop signal to every other
worker, unless a peer's STOP came first, and, hearing a peer's STOP, starts this rank's grace period. Messages
it receives are kept for the worker's next poll, in order.

The worker and the thread never use the transport at the same time: the worker holds ``lock`` except while
its loss function runs. Under MPI this needs the thread level MPI_THREAD_MULTIPLE (mpi4py asks for it by
default), since the loss function may use MPI itself; with less the worker runs without a listener.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .signals import StopSignals
from .transport import Tag, Transport

PERIOD = 0.1  # seconds between two looks; an evaluation shorter than this is never disturbed


class StopListener:
    """Started by the worker when it has peers; ``evaluating()`` around each call of the loss function."""

    def __init__(self, transport: Transport, signals: StopSignals, request_stop: Callable[[str, bool], None],
                 period: float = PERIOD) -> None:
        self.transport, self.signals, self.request_stop, self.period = transport, signals, request_stop, period
        self.lock = threading.Lock()
        self._since: float | None = None  # when the running evaluation started (None: none runs)
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> StopListener:
        self.lock.acquire()
        self._thread = threading.Thread(target=self._run, name="evohpo-stop-listener", daemon=True)
        self._thread.start()
        return self

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """The transport is the listener's while the block runs (the loss function's call)."""
        self._since = time.monotonic()
        self.lock.release()
        try:
            yield
        finally:
            self.lock.acquire()  # waits at most for one look (microseconds)
            self._since = None

    def close(self) -> None:
        """Stop the thread (the worker holds the lock: the thread is not looking)."""
        if self._thread is not None:
            self._closed.set()
            self._thread.join()
            self._thread = None
            self.lock.release()

    def _run(self) -> None:
        if hasattr(signal, "pthread_sigmask"):  # the kernel delivers the stop signals and the alarm to the worker
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1, signal.SIGINT, signal.SIGALRM})
        while not self._closed.wait(self.period):
            since = self._since
            if since is None or time.monotonic() - since < self.period or not self.lock.acquire(blocking=False):
                continue
            try:
                if self._since is not None:  # still the same evaluation's time: the worker is in its loss function
                    self.look()
            finally:
                self.lock.release()

    def look(self, msgs: list[tuple[int, int, object]] | None = None) -> None:
        """Start the grace period when a peer's STOP arrived; pass on this rank's stop signal unless one did (its
        STOP went to every worker: when SLURM signals every rank at once, W ranks passing theirs on would send
        W x (W - 1) messages, 268 million at 16,384 ranks, where the first to look is enough)."""
        msgs = self.transport.hold() if msgs is None else msgs  # (a report's look passes what it took in)
        peer_stopped = any(tag == Tag.STOP for _, tag, _ in msgs)
        if self.signals.reason:  # once: later calls find the stop requested already
            self.request_stop(self.signals.reason, not peer_stopped)
        if peer_stopped:
            self.signals.arm()
