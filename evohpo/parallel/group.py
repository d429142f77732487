"""Workers of several ranks: one individual evaluated by k ranks together (e.g. a DDP training), without hangs.

``optimize(..., ranks_per_worker=k)`` splits the world into workers of k ranks (``split``; contiguous per node).
Only a worker's root runs the worker loop: it breeds, shares, migrates and writes the journal. Its other ranks
(followers) run ``WorkerGroup.follow``: they wait for the root's next individual, call the loss function on it
with the worker's communicator in ``evohpo.current().comm``, and send back what happened. The root ``combine``s
the k outcomes: the root's loss counts; a failure on any rank makes the individual failed on all (with the
error of the rank that failed first), an interruption on any rank interrupted, and losses that disagree failed.

Nothing waits forever on a rank that left:

- per-step reports are decided by the root and sent to the followers (``evohpo.report`` on a follower waits for
  the root's decision at the same step), so the k ranks prune at the same step;
- a rank whose loss function raised (or was interrupted) *breaks* the worker's collectives at once: the hooks that
  a collective library registered (``on_break``; ``evohpo.hpo.distributed`` closes torch's connections) run on it,
  and on every other rank of the worker from a watcher thread that hears its BREAK; a peer waiting in a collective
  then gets an error instead of waiting. The next evaluation rebuilds what was broken, on all ranks;
- a stop signal's grace period heard by the root reaches the followers (ARM), so they are interrupted together.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any

from ..core.context import EvalContext
from ..core.goal import as_loss
from ..core.individual import INTERRUPTED, PRUNED
from ..core.reporting import Pruned
from .evaluation import LossFn, Outcome, evaluate
from .signals import StopSignals

log = logging.getLogger("evohpo")

CMD, OUTCOME, DECISION, ARM, BREAK, SHARE = 1, 2, 3, 4, 5, 6  # tags on the worker's own communicator
GO, STOP_HERE, DONE = "go", "pruned", "done"  # the root's decisions at a report (or "error: <text>")
WATCH_PERIOD = 0.02  # seconds between two looks of the watcher thread
REL_TOL, ABS_TOL = 1e-9, 1e-12  # losses of the k ranks agree when equal to 9 significant digits (or both ~0)


def worker_ranks(hosts: Sequence[str], k: int) -> list[list[int]]:
    """The ranks of each worker: ranks grouped by node (nodes in order of their first rank), then cut into
    consecutive groups of ``k``; a ValueError naming ``ranks_per_worker`` when ``k`` does not divide the ranks."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"ranks_per_worker={k!r} must be a positive int")
    if len(hosts) % k:
        raise ValueError(f"ranks_per_worker={k} does not divide the {len(hosts)} ranks of the communicator: start a "
                         f"multiple of {k} ranks (e.g. mpirun -n {max(k, len(hosts) // k * k)})")
    by_node: dict[str, list[int]] = {}
    for rank, host in enumerate(hosts):
        by_node.setdefault(host, []).append(rank)
    order = [r for ranks in by_node.values() for r in ranks]
    return [order[i:i + k] for i in range(0, len(order), k)]


@dataclass(frozen=True)
class RankOutcome:
    """What one rank's call of the loss function gave (a follower sends it to its root)."""

    rank: int
    loss: float
    error: str | None
    status: str | None
    ended: float  # time.time() when the loss function returned or raised (the first failure names the cause)
    signal: str | None = None  # a stop signal this rank received, for the root to act on
    broke: bool = False  # it broke the worker's collectives (all ranks rebuild them)


def combine(root: Outcome, root_ended: float, others: Sequence[RankOutcome]) -> Outcome:
    """One outcome from the k ranks' (the root's first): interrupted if any rank was; failed if any failed (the
    error of the rank that failed first, naming it, then the others in one line each); failed when the losses
    disagree; else the root's (pruned or a loss)."""
    ranks = [RankOutcome(0, root.loss, root.error, root.status, root_ended), *others]
    stopped = [o for o in ranks if o.status == INTERRUPTED]
    if stopped:
        return Outcome(math.nan, f"{stopped[0].error} (rank {stopped[0].rank} of the worker)", INTERRUPTED)
    failed = sorted((o for o in ranks if o.error and o.status is None), key=lambda o: (o.ended, o.rank))
    if failed:
        first, later = failed[0], "; ".join(f"rank {o.rank}: {o.error.splitlines()[-1]}" for o in failed[1:])
        text = (f"rank {first.rank} of the worker failed first{f' (then {later})' if later else ''}:\n"
                f"{first.error}")  # (its own last line last: the one log lines show)
        exception = root.exception if first.rank == 0 and root.exception is not None else RuntimeError(text)
        return Outcome(math.nan, text, exception=exception)
    if root.status == PRUNED:
        return root
    differ = [o for o in others if o.status == PRUNED or not _agree(root.loss, o.loss)]
    if differ:
        values = ", ".join(f"rank {o.rank}: {'pruned' if o.status == PRUNED else repr(o.loss)}" for o in differ)
        text = (f"the ranks of the worker returned different losses (rank 0: {root.loss!r}, {values}): every rank "
                "must return the same value, e.g. the validation metric all-reduced over the worker")
        return Outcome(math.nan, text, exception=RuntimeError(text))
    return root


def _agree(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


class WorkerGroup:
    """The k ranks of one worker: ``comm`` is the worker's communicator for the loss function
    (``evohpo.current().comm``); the group talks on a duplicate of it, so the loss function's messages never match
    evohpo's."""

    def __init__(self, comm: Any, ranks: Sequence[int] = (), same_node: bool = True) -> None:
        from mpi4py import MPI

        self.comm = comm  # the user's
        self._ch = Channel(comm)
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.world_ranks, self.same_node = list(ranks), same_node
        self.threads_ok = MPI.Query_thread() == MPI.THREAD_MULTIPLE
        self._break_hooks: dict[str, Callable[[], None]] = {}
        self._close_hooks: dict[str, Callable[[], None]] = {}
        self._seq = 0  # the evaluation in progress (numbered by the root)
        self._broke = False  # this rank broke the collectives of evaluation ``_seq``
        self._rebuild = False  # a rank broke them in the last evaluation: break here too before the next one
        self._lock = threading.Lock()  # the watcher thread breaks too

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    # --- hooks of a collective library (evohpo.hpo.distributed) --------------------------------------
    def on_break(self, name: str, fn: Callable[[], None]) -> None:
        """Call ``fn`` when this worker's collectives must fail at once (a rank left its loss function); one per
        ``name``. Registered after they were broken in this evaluation (a peer failed first), it runs at once."""
        self._break_hooks[name] = fn
        if self._broke:
            fn()

    def on_close(self, name: str, fn: Callable[[], None]) -> None:
        """Call ``fn`` on every rank when the search ends (after failures too); once per name."""
        self._close_hooks[name] = fn

    def break_collectives(self, notify: bool = True) -> None:
        """Run the break hooks here (once per evaluation) and, with ``notify``, tell the worker's other ranks."""
        with self._lock:
            if self._broke:
                return
            self._broke = True
        for name, fn in list(self._break_hooks.items()):
            try:
                fn()
            except Exception as e:  # the rank goes on: the next evaluation rebuilds
                log.warning("breaking the worker's collectives (%s) failed: %s", name, e)
        if notify:
            self._ch.send_others(BREAK, self._seq)

    def close(self) -> None:
        """Run the close hooks (every rank, at the end) and free the group's communicators."""
        for name, fn in list(self._close_hooks.items()):
            try:
                fn()
            except Exception as e:
                log.warning("closing the worker's %s failed: %s", name, e)
        self._close_hooks.clear()
        self._break_hooks.clear()
        self._ch.free()
        self.comm.Free()

    # --- the root ------------------------------------------------------------------------------------
    def evaluate(self, loss_fn: LossFn, params: dict[str, Any], ctx: EvalContext, signals: StopSignals) -> Outcome:
        """Evaluate ``params`` on every rank of the worker (the root's side); the combined outcome."""
        self._begin(self._seq + 1)
        plain = {f.name: getattr(ctx, f.name) for f in fields(ctx) if f.name not in ("reporter", "group")}
        self._ch.send_others(CMD, ("eval", self._seq, params, plain, ctx.reporter is not None, self._rebuild))
        self._rebuild = False
        reporter = _RootReporter(ctx.reporter, self) if ctx.reporter is not None else None
        with self._watch(signals):
            out = evaluate(loss_fn, params, replace(ctx, reporter=reporter, group=self), signals)
            ended = time.time()
            if out.left:
                self.break_collectives()
        self._ch.send_others(DECISION, (self._seq, None, DONE))  # (a follower waiting in a report: the root is done)
        others = [self._ch.receive(r, OUTCOME) for r in range(1, self.size)]
        for o in others:
            if o.signal and not signals.reason:
                signals.reason = f"{o.signal} (on rank {o.rank} of the worker)"
        self._rebuild = self._broke or any(o.broke for o in others)
        if self._rebuild:
            self.break_collectives(notify=False)  # (once: a no-op where this rank broke them already)
        return combine(out, ended, others)

    def release(self, result: Any) -> None:
        """Send the search's result to the followers (they return it from ``optimize``), then close."""
        self._ch.send_others(CMD, ("end", result))
        self.close()

    # --- a follower ------------------------------------------------------------------------------------
    def follow(self, loss_fn: LossFn, signals: StopSignals) -> Any:
        """Evaluate what the root sends until it sends the result; return the result."""
        try:
            while True:
                cmd = self._ch.receive(0, CMD)
                if cmd[0] == "end":
                    if cmd[1] is None:
                        raise RuntimeError(f"the root of this worker (rank {self.world_ranks[0]} of the world) ended "
                                           "without a result: its log says why")
                    return cmd[1]
                _, seq, params, plain, reports, rebuild = cmd
                if rebuild:
                    self.break_collectives(notify=False)
                self._begin(seq)
                ctx = EvalContext(**plain, reporter=_FollowerReporter(self) if reports else None, group=self)
                with self._watch(signals):
                    out = evaluate(loss_fn, params, ctx, signals)
                    ended = time.time()
                    if out.left:
                        self.break_collectives()
                self._ch.send(0, OUTCOME, RankOutcome(self.rank, out.loss, out.error, out.status, ended, signals.reason,
                                                   self._broke))
        finally:
            self.close()

    def share(self, obj: Any = None) -> Any:
        """The root's ``obj`` on every rank of the worker, like a broadcast from inside the loss function (e.g. the
        address of a rendezvous), except that a rank whose peer failed gets a RuntimeError instead of waiting."""
        if self.is_root:
            self._ch.send_others(SHARE, (self._seq, obj))
            return obj
        while True:
            msg = self._ch.receive(0, SHARE, give_up=lambda: self._broke)
            if msg is None:
                raise RuntimeError(f"rank {self.rank} of the worker waited for its root, but a rank of the worker "
                                   "failed (see the individual's error)")
            if msg[0] == self._seq:  # (an older evaluation's is dropped)
                return msg[1]

    # --- reports -------------------------------------------------------------------------------------
    def decide(self, step: int, decision: str) -> None:
        """The root's decision at its report of ``step``, to every follower."""
        self._ch.send_others(DECISION, (self._seq, step, decision))

    def decision(self, step: int) -> str:
        """A follower's wait for the root's decision at ``step`` of this evaluation (older ones are dropped)."""
        while True:
            seq, at, what = self._ch.receive(0, DECISION)
            if seq != self._seq:
                continue
            if at is None:
                raise RuntimeError(f"evohpo.report(step={step}) on rank {self.rank} of the worker, but the worker's "
                                   "root ended its evaluation without reporting it: every rank of a worker must report "
                                   "the same steps")
            if at != step:
                raise RuntimeError(f"evohpo.report(step={step}) on rank {self.rank} of the worker, but its root "
                                   f"reported step {at}: every rank of a worker must report the same steps")
            return what

    # --- the evaluation's state ------------------------------------------------------------------------
    def _begin(self, seq: int) -> None:
        """Evaluation ``seq`` starts: what arrived for earlier ones is dropped (a follower that did not report leaves
        the root's decisions unread), what arrived for this one is kept for its reader."""
        self._seq, self._broke = seq, False
        self._ch.drop_before(seq)

    @contextmanager
    def _watch(self, signals: StopSignals) -> Iterator[None]:
        """While the loss function runs: a thread that breaks the collectives when a peer broke them, passes the
        root's grace period on to the followers, and starts a follower's when the root's started."""
        if not self.threads_ok:
            yield
            return
        done = threading.Event()
        thread = threading.Thread(target=self._watcher, args=(signals, done), name="evohpo-worker-watch", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _watcher(self, signals: StopSignals, done: threading.Event) -> None:
        import signal as _signal

        if hasattr(_signal, "pthread_sigmask"):  # the signals and the alarm are the main thread's
            _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGTERM, _signal.SIGUSR1, _signal.SIGINT,
                                                        _signal.SIGALRM})
        armed, seq = False, self._seq
        while not done.wait(WATCH_PERIOD):
            while (msg := self._ch.next(BREAK)) is not None:
                if msg == seq:
                    self.break_collectives(notify=False)
            if self.is_root:
                if not armed and signals.armed_at is not None:
                    armed = True
                    self._ch.send_others(ARM, seq)
            else:
                while (msg := self._ch.next(ARM, 0)) is not None:
                    if msg == seq:
                        signals.arm()


def _seq_of(msg: Any) -> int:
    """The evaluation a DECISION (seq, step, what), BREAK or ARM (seq) message belongs to."""
    return msg[0] if isinstance(msg, tuple) else msg

class Channel:
    """Tagged messages among a worker's ranks on a duplicate of its communicator: nonblocking sends kept until they
    completed, receives that poll (a blocking receive would hold signal handlers back), and an inbox for the tags
    whose messages belong to an evaluation (DECISION, BREAK, ARM: ``(seq, ...)`` or ``seq``)."""

    def __init__(self, comm: Any) -> None:
        from mpi4py import MPI

        self._mpi = MPI
        self._own = comm.Dup()
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self._sends: list[Any] = []
        self._lock = threading.Lock()  # the watcher thread sends too
        self._inbox: dict[int, deque[Any]] = {DECISION: deque(), BREAK: deque(), ARM: deque()}

    def send(self, dest: int, tag: int, payload: Any) -> None:
        with self._lock:  # (a request must stay referenced until it completed)
            self._sends = [r for r in self._sends if not r.Test()]
            self._sends.append(self._own.isend(payload, dest=dest, tag=tag))

    def send_others(self, tag: int, payload: Any) -> None:
        for r in range(self.size):
            if r != self.rank:
                self.send(r, tag, payload)

    def take(self, tag: int, source: int | None = None) -> Any:
        """A message under ``tag`` that has arrived, else None (no waiting)."""
        src = self._mpi.ANY_SOURCE if source is None else source
        if self._own.iprobe(source=src, tag=tag):
            return self._own.recv(source=src, tag=tag)
        return None

    def next(self, tag: int, source: int | None = None) -> Any:
        """The oldest kept or arrived message under an inbox ``tag``, else None."""
        box = self._inbox[tag]
        return box.popleft() if box else self.take(tag, source)

    def receive(self, source: int, tag: int, give_up: Callable[[], bool] | None = None) -> Any:
        """Wait for a message, polling with pauses of 0.1 ms doubling to 2 ms; None once ``give_up()`` says so."""
        pause = 1e-4
        box = self._inbox.get(tag)
        while not box and not self._own.iprobe(source=source, tag=tag):
            if give_up is not None and give_up():
                return None
            time.sleep(pause)
            pause = min(pause * 2, 2e-3)
        return box.popleft() if box else self._own.recv(source=source, tag=tag)

    def drop_before(self, seq: int) -> None:
        """Move what has arrived under the inbox tags to the inbox, dropping what belongs to evaluations before
        ``seq`` (messages of one sender and tag arrive in order: the stale ones first)."""
        for tag, box in self._inbox.items():
            while (msg := self.take(tag)) is not None:
                box.append(msg)
            while box and _seq_of(box[0]) < seq:
                box.popleft()

    def free(self) -> None:
        """Complete the sends (5 s at most: a peer that is gone never receives) and free the communicator."""
        deadline = time.monotonic() + 5.0
        while self._sends and time.monotonic() < deadline:
            with self._lock:
                self._sends = [r for r in self._sends if not r.Test()]
            time.sleep(1e-3)
        self._sends = []
        self._own.Free()



class _RootReporter:
    """The root's reports: the worker's pruner decides, the decision goes to the followers."""

    def __init__(self, inner: Any, group: WorkerGroup) -> None:
        self.inner, self.group = inner, group

    def report(self, step: Any, value: Any, metrics: Mapping[str, Any]) -> None:
        try:
            self.inner.report(step, value, metrics)
        except Pruned:
            self.group.decide(step, STOP_HERE)
            raise
        except Exception as e:
            self.group.decide(step, f"error: {e}")
            raise
        self.group.decide(step, GO)

    def __getattr__(self, name: str) -> Any:  # last_step, last_loss, pruned_at, pruned_why
        return getattr(self.inner, name)


class _FollowerReporter:
    """A follower's reports: the root's decision at the same step."""

    def __init__(self, group: WorkerGroup) -> None:
        self.group = group
        self.last_step: int | None = None
        self.last_loss: float | None = None
        self.pruned_at: int | None = None
        self.pruned_why: str | None = None

    def report(self, step: Any, value: Any, metrics: Mapping[str, Any]) -> None:
        what = self.group.decision(step)
        loss = as_loss(value)
        self.last_step, self.last_loss = step, loss if loss is not None else math.nan
        if what == GO:
            return
        if what == STOP_HERE:
            pruned = Pruned(step, self.last_loss, "decided by the worker's root")
            self.pruned_at, self.pruned_why = step, str(pruned)
            raise pruned
        raise RuntimeError(f"evohpo.report(step={step}) failed on the worker's root: {what.removeprefix('error: ')}")


def split(comm: Any, k: int) -> tuple[WorkerGroup, Any]:
    """This rank's worker (collective over ``comm``) and the communicator of the workers' roots (None on followers);
    ranks of a worker share a node where the ranks per node allow (a warning names the workers that do not)."""
    from mpi4py import MPI

    hosts = comm.allgather(MPI.Get_processor_name())
    workers = worker_ranks(hosts, k)
    me = comm.Get_rank()
    index = next(i for i, ranks in enumerate(workers) if me in ranks)
    ranks = workers[index]
    spread = [i for i, rs in enumerate(workers) if len({hosts[r] for r in rs}) > 1]
    if spread and me == 0:
        log.warning("ranks_per_worker=%d: workers %s span several nodes (the ranks per node are not a multiple of "
                    "%d); their collectives go over the network", k, spread, k)
    mine = comm.Split(index, ranks.index(me))
    roots = comm.Split(0 if ranks[0] == me else MPI.UNDEFINED, index)
    group = WorkerGroup(mine, ranks, index not in spread)
    return group, (None if roots == MPI.COMM_NULL else roots)


def split_workers(comm: Any, k: int) -> tuple[WorkerGroup | None, Any]:
    """``(None, comm)`` for one rank per worker; else this rank's ``WorkerGroup`` and the roots' communicator
    (None on a follower) from ``comm`` (an MPI communicator; None: COMM_WORLD)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"ranks_per_worker={k!r} must be a positive int")
    if k == 1:
        return None, comm
    from .transport import Transport

    if isinstance(comm, Transport):
        raise ValueError(f"ranks_per_worker={k} needs an MPI communicator (comm=None or an mpi4py Comm), got a "
                         f"{type(comm).__name__}")
    from mpi4py import MPI

    return split(comm if comm is not None else MPI.COMM_WORLD, k)


class WorkerSplit:
    """``optimize``'s view of the split (a context manager): ``comm`` is the roots' communicator for the worker loop
    (the caller's, unchanged, with one rank per worker); ``follower`` says this rank only evaluates (``follow``).
    On exit the root sends ``result`` to its followers (None when it failed: they raise) and frees what it made."""

    def __init__(self, comm: Any, k: int) -> None:
        self.group, self.comm = split_workers(comm, k)
        self.result: Any = None

    @property
    def follower(self) -> bool:
        return self.group is not None and not self.group.is_root

    def follow(self, loss_fn: LossFn, signals: StopSignals) -> Any:
        return self.group.follow(loss_fn, signals)  # type: ignore[union-attr]

    def __enter__(self) -> WorkerSplit:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.group is not None and self.group.is_root:
            self.group.release(self.result)
            self.comm.Free()
