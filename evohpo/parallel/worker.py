"""The worker loop, written once: ask, evaluate, tell, share, poll, migrate, journal, check stop."""

from __future__ import annotations

import heapq
import logging
import math
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.context import EvalContext, evaluating
from ..core.evolver import Evolver, SpaceExhausted
from ..core.individual import FAILED, INTERRUPTED, Individual
from ..core.migration import IslandLayout, MigrationPolicy
from ..journal.checkpoint import Journal, NullJournal, end_record, start_record
from .gcfreeze import SurvivorFreezer
from .progress import Progress
from .transport import Tag, Transport

ASK_LEAD = 2  # ask peers for evaluations when this few of our own are left (they answer between evaluations)
log = logging.getLogger("evohpo")

LossFn = Callable[[dict[str, Any]], float]
Callback = Callable[[Individual], None]


class EvaluationInterrupted(BaseException):
    """Raised inside a running evaluation when the grace period after a stop signal ran out."""


@dataclass
class Result:
    """What a search found, the same on every rank, plus what this worker's island holds."""

    best: Individual | None
    top: list[Individual]
    islands: list[Individual | None]
    n_evaluations: int
    n_failed: int
    n_interrupted: int
    elapsed: float
    reason: str
    checkpoint: str | None = None
    resumed: int = 0  # evaluations restored from the checkpoint (not counted in n_evaluations)
    archive: list[Individual] = field(default_factory=list, repr=False)
    active: set[str] = field(default_factory=set, repr=False)
    messages: dict[str, int] = field(default_factory=dict, repr=False)  # this worker's sent/received/pending

    @property
    def params(self) -> dict[str, Any] | None:
        return None if self.best is None else self.best.params


class Worker:
    """One rank: breeds from its island, evaluates, shares, migrates, until its budget or a stop."""

    def __init__(self, loss_fn: LossFn, evolver: Evolver, transport: Transport, layout: IslandLayout,
                 policy: MigrationPolicy, *, budget: int | None = None, time_limit: float | None = None,
                 journal: Journal | NullJournal | None = None, on_error: str = "record",
                 callbacks: Sequence[Callback] = (),
                 progress_interval: float = 5.0, total_budget: int | None = None, done: int = 0,
                 requeued: Sequence[Mapping[str, Any]] = (), checkpoint: str | None = None, resumed: int = 0,
                 signals: StopSignals | None = None, share_budget: bool = False,
                 state_interval: float = 10.0) -> None:
        if on_error not in ("record", "raise"):
            raise ValueError(f"on_error={on_error!r} must be 'record' or 'raise'")
        self.loss_fn, self.evolver, self.transport, self.layout, self.policy = (
            loss_fn, evolver, transport, layout, policy)
        self.rank = transport.rank
        self.island = layout.island_of(self.rank)
        self.island_rank = layout.workers(self.island).index(self.rank)
        self.peers = [r for r in layout.workers(self.island) if r != self.rank]
        self.budget, self.time_limit, self.total_budget = budget, time_limit, total_budget
        self.journal = journal or NullJournal()
        self.on_error, self.callbacks, self.checkpoint = on_error, list(callbacks), checkpoint
        self.progress_interval = progress_interval
        self.progress = Progress(total_budget, time_limit) if self.rank == 0 else None
        self.requeued = list(requeued)
        self.resumed = resumed
        self.n_done = done  # this worker's finished evaluations, restored ones included
        self.n_run = 0  # evaluations run by this process
        self.n_failed = 0
        self.n_interrupted = 0
        self.stop_reason: str | None = None
        self.signals = signals or StopSignals(None)
        self.share_budget = share_budget and budget is not None  # island peers hand over unstarted evaluations
        self._retired: set[int] = set()
        self._asked: set[int] = set()  # peers whose answer to our ASK is outstanding
        self._gained, self._left, self._dry = 0, 0, False  # this round's gifts, what we had left, all dry
        self._spare: dict[int, int] = {}  # peer -> its unstarted evaluations, as last heard from it
        self._everyone = False  # this round asked every peer still working
        self._first_share = budget or 0  # what a peer not heard from yet is assumed to hold
        self._progress: dict[int, tuple[int, float]] = {}
        self._t0 = self._last_report = self._last_state = time.time()
        self.state_interval = state_interval
        self._freezer = SurvivorFreezer()

    # --- the loop -------------------------------------------------------------------------------------
    def run(self) -> str:
        """Work until the budget, the time limit, a stop signal or an exhausted space; then terminate cleanly."""
        try:
            return self._loop()
        finally:
            self._freezer.close()  # also when an evaluation raises (on_error="raise")

    def _loop(self) -> str:
        self._t0 = self._last_report = time.time()
        unshared: Individual | None = None
        while True:
            self._handle(self.transport.poll())
            reason, params = self._stop_check(), None
            if not reason:
                try:
                    params = self._next()
                except SpaceExhausted as e:
                    reason = f"space exhausted: {e}"
            self._share(unshared, params)
            if not reason and self.share_budget and self.budget - self.n_done <= ASK_LEAD:  # type: ignore[operator]
                self._ask()  # the answers arrive while our last evaluations run
            if reason:
                self.stop_reason = reason
                break
            unshared = self._record(self._evaluate(params))
            self._freezer.tick(len(self.evolver.population))
            self._maybe_migrate()
            self._report()
        self._finish(reason)
        return reason

    def _share(self, ind: Individual | None, params: dict[str, Any] | None) -> None:
        """One message per island peer: the last result and the configuration starting now (so no peer breeds it)."""
        if ind is not None or params is not None:
            self.transport.send_all(self.peers, Tag.RESULT, (ind, params, self._unstarted(params is not None)))

    def _stop_check(self) -> str | None:
        if self.signals.reason:
            self.request_stop(self.signals.reason)
        if self.stop_reason:
            return self.stop_reason
        if self.budget is not None and self.n_done >= self.budget and not self._ask_for_budget():
            return "budget reached"
        if self.time_limit is not None and time.time() - self._t0 >= self.time_limit:
            return f"time limit of {self.time_limit:g} s reached"
        return None

    def _ask_for_budget(self) -> bool:
        """Out of evaluations: wait for answers to our ASK (sent ``ASK_LEAD`` evaluations early) until one gives
        some or all said no; True if some came (later answers are handled by the loop)."""
        if not self.share_budget:
            return False
        while self.n_done >= self.budget and not self._dry:  # type: ignore[operator]
            self._ask()  # a new round once the last one (asked with some left) is answered
            self._wait(lambda: not self._asked or self.n_done < self.budget)  # type: ignore[operator]
        return self.n_done < self.budget  # type: ignore[operator]

    def _wait(self, until: Callable[[], bool]) -> None:
        """Handle messages until ``until()``; between empty polls sleep 0.1 ms doubling to 1 ms (10 ms after a
        second of waiting), so that collectives in progress (termination) complete quickly but idling is cheap."""
        pause, start = 1e-4, time.monotonic()
        while not until():
            msgs = self.transport.poll()
            self._handle(msgs)
            if msgs:
                pause = 1e-4
            else:
                time.sleep(pause)
                pause = min(pause * 2, 0.001 if time.monotonic() - start < 1.0 else 0.01)

    def _unstarted(self, starting: bool = False) -> int:
        """Evaluations of this worker's budget not started yet (``starting``: one is about to be)."""
        if self.budget is None:
            return 0
        return max(0, self.budget - self.n_done - len(self.requeued) - starting)

    def _ask(self) -> None:
        """Ask for evaluations, one round at a time: the peer that last said it has the most unstarted ones, if
        that is enough to give some (two more than we have left); out of evaluations with no such peer, every
        peer still working (their answers are authoritative: all none, and asking again cannot help)."""
        if not self.share_budget or self._asked or self._dry:
            return
        left = max(0, self.budget - self.n_done)  # type: ignore[operator]
        live = [p for p in self.peers if p not in self._retired]
        richest = max(live, key=lambda p: self._spare.get(p, self._first_share), default=None)
        if richest is not None and self._spare.get(richest, self._first_share) >= left + 2:  # it would give some
            self._asked = {richest}
        elif left == 0:
            self._asked = set(live)
        self._gained, self._left, self._everyone = 0, left, self._asked == set(live)
        self.transport.send_all(sorted(self._asked), Tag.ASK, left)
        self._dry = not live

    def _answered(self, peer: int, gift: int, unstarted: int) -> None:
        self._spare[peer] = unstarted
        if peer in self._asked:
            self._asked.discard(peer)
            self._gained += gift
            if not self._asked and self._gained == 0 and self._left == 0 and self._everyone:
                self._dry = True  # nobody had an unstarted evaluation to give: asking again cannot help

    def _give(self, asker: int, left: int) -> None:
        """Answer an ASK from a worker with ``left`` evaluations to run: as many of the evaluations this worker
        has not started as evens out the two. Rounded up while the asker still runs one (it will be free before
        this worker reaches its last), down once it is idle: then both are free now, and rounding up would let
        two idle workers hand one evaluation back and forth. Nothing once retired."""
        if self.transport.closing:
            return  # the asker counts our RETIRED as the answer
        unstarted = self._unstarted()
        gift = max(0, (unstarted - left + (left > 0)) // 2)
        self.budget = None if self.budget is None else self.budget - gift
        self.transport.send(asker, Tag.GIFT, (gift, unstarted - gift))

    def request_stop(self, reason: str, broadcast: bool = True) -> None:
        """Start no new evaluation; tell every other worker to do the same."""
        if self.stop_reason is None:
            self.stop_reason = reason
            log.warning("stopping: %s", reason)
            if broadcast:
                others = [r for r in range(self.transport.size) if r != self.rank]
                self.transport.send_all(others, Tag.STOP, reason)

    def _next(self) -> dict[str, Any]:
        if self.requeued:
            rec = self.requeued.pop(0)
            return self.evolver.requeue(rec["params"], rec["id"])
        return self.evolver.ask()

    def _evaluate(self, params: dict[str, Any]) -> Individual:
        ind_id, gen = self.evolver.ticket(params)
        start, error, status, loss = time.time(), None, None, math.nan
        self.journal.write(start_record(ind_id, params, self.island, gen, start))
        ctx = EvalContext(ind_id, self.rank, self.island, self.island_rank, gen, self.checkpoint)
        self.signals.evaluating = True
        try:
            with evaluating(ctx):
                loss = float(self.loss_fn(params))
            if not math.isfinite(loss):
                error = f"loss_fn returned {loss!r}"
        except EvaluationInterrupted:
            status, error = INTERRUPTED, "interrupted: the grace period after a stop signal ran out"
        except Exception as e:  # a failed training is a result, not the end of the search
            error = "".join(traceback.format_exception(type(e), e, e.__traceback__)).strip()
            if self.on_error == "raise":
                log.critical("evaluation %s failed with params %s; aborting all ranks\n%s", ind_id, params, error)
                self.journal.close()
                if self.transport.size > 1:
                    self.transport.abort(1)
                raise
        finally:
            self.signals.evaluating = False
        ind = self.evolver.tell(params, loss, error=error, status=status, start=start, end=time.time())
        if error and status is None:
            log.warning("evaluation %s failed (params %s): %s", ind_id, params, error.splitlines()[-1])
        return ind

    def _record(self, ind: Individual) -> Individual | None:
        """Journal and count a finished evaluation; return it unless it was interrupted (not to be shared)."""
        self.journal.write(end_record(ind))
        if ind.status == INTERRUPTED:
            self.n_interrupted += 1
            return None
        self.n_done += 1
        self.n_run += 1
        self.n_failed += ind.status == FAILED
        self._write_state()
        self._notify(ind)
        return ind

    def _write_state(self, force: bool = False) -> None:
        """What resuming needs beyond the results (rng, counters): every ``state_interval`` seconds and at exit."""
        now = time.time()
        if not force and now - self._last_state < self.state_interval:
            return
        self._last_state = now
        state = self.evolver.state_dict(population=False)
        self.journal.write({"ev": "state", "rank": self.rank, "gen": state["generation"], "evals": self.n_done,
                            **{k: v for k, v in state.items() if k != "generation"}, "t": now})

    def _notify(self, ind: Individual) -> None:
        for cb in self.callbacks:
            cb(ind)

    # --- messages -------------------------------------------------------------------------------------
    def _handle(self, msgs: list[tuple[int, int, Any]]) -> None:
        for src, tag, payload in msgs:
            if tag == Tag.RESULT:
                self._spare[src] = payload[2]
                self._peer_result(*payload[:2])
            elif tag == Tag.MIGRANT:
                self._immigrate(*payload)
            elif tag == Tag.DEACTIVATE:
                for ind_id, hop in payload:
                    if self.policy.newer(ind_id, hop):
                        self.evolver.population.deactivate(ind_id)
            elif tag == Tag.PROGRESS:
                self._progress[src] = payload
            elif tag == Tag.STOP:
                self.request_stop(f"{payload} (on rank {src})", broadcast=False)
            elif tag == Tag.ASK:
                self._give(src, payload)
            elif tag == Tag.GIFT:
                gift, unstarted = payload
                self.budget += gift  # type: ignore[operator]
                self._answered(src, gift, unstarted)
            elif tag == Tag.RETIRED:
                self._retired.add(src)
                self._answered(src, 0, 0)

    def _peer_result(self, ind: Individual | None, starting: dict[str, Any] | None) -> None:
        pop = self.evolver.population
        if ind is not None:
            pop.release(ind.params)
            if self.evolver.add(ind, active=ind.id not in self.policy.hops):  # unless it moved on already
                self._notify(ind)
        if starting is not None:
            pop.reserve(starting)

    def _immigrate(self, mode: str, batch: list[tuple[Individual, int]]) -> None:
        pop = self.evolver.population
        for ind, hop in batch:
            here = ind.moved(self.island)
            if mode == "migrate":
                if self.policy.newer(ind.id, hop) and not self.evolver.add(here):
                    pop.activate(ind.id)  # it had lived here before
            elif self.evolver.add(here):
                worst = pop.worst()
                if worst is not None and worst.id != ind.id and pop.n_active > pop.pool_size:
                    pop.deactivate(worst.id)  # pollination: the copy replaces the island's worst

    def _maybe_migrate(self) -> None:
        rng, policy = self.evolver.rng, self.policy
        if not policy.due(rng, len(self.peers) + 1):
            return
        dest = policy.destination(self.island, rng)
        if dest is None:
            return
        pool = self.evolver.population.pool()
        mine = [self.layout.owner(ind.id, self.island) == self.rank for ind in pool]
        batch = [(ind, policy.next_hop(ind.id)) for ind in policy.select(pool, mine, rng)]
        if not batch:
            return
        for r in self.layout.workers(dest):
            self.transport.send(r, Tag.MIGRANT, (policy.mode, batch))
        if not policy.pollinate:
            moves = [(ind.id, hop) for ind, hop in batch]
            for ind_id, hop in moves:
                policy.newer(ind_id, hop)
                self.evolver.population.deactivate(ind_id)
            self.transport.send_all(self.peers, Tag.DEACTIVATE, moves)
        now = time.time()
        for ind, hop in batch:
            self.journal.write({"ev": "migrate", "id": ind.id, "from": self.island, "to": dest, "hop": hop,
                                "mode": policy.mode, "t": now})

    # --- progress and termination ----------------------------------------------------------------------
    def _report(self) -> None:
        now = time.time()
        if now - self._last_report < self.progress_interval:
            return
        self._last_report = now
        best = self.evolver.population.best()
        mine = (self.n_done, best.loss if best else math.inf)
        if self.rank != 0:
            self.transport.send(0, Tag.PROGRESS, mine)
            return
        self._progress[0] = mine
        done = sum(n for n, _ in self._progress.values())
        best_loss = min(b for _, b in self._progress.values())
        rate = self.n_run * self.transport.size / max(now - self._t0, 1e-9)
        self.progress.update(done, best_loss, rate, now - self._t0)

    def _finish(self, reason: str) -> None:
        self._write_state(force=True)
        self.journal.write({"ev": "done", "reason": reason, "evals": self.n_done, "t": time.time()})
        if self.share_budget:
            self.transport.send_all(self.peers, Tag.RETIRED, None)
        self.transport.close()
        self._wait(self.transport.finished)
        if self.progress is not None:
            self.progress.close()
        self.journal.close()

    def result(self, top_n: int = 10) -> Result:
        """Gather every island's best to all workers (a collective: call on every worker after ``run``)."""
        pop = self.evolver.population
        best = heapq.nsmallest(top_n, (i for i in pop if i.ok), key=lambda i: (i.loss, i.id))
        mine = {"island": self.island, "top": best, "done": self.n_run,
                "failed": self.n_failed,
                "interrupted": self.n_interrupted, "reason": self.stop_reason or ""}
        everyone = self.transport.allgather(mine)
        top = sorted({i.id: i for m in everyone for i in m["top"]}.values(), key=lambda i: (i.loss, i.id))
        islands: list[Individual | None] = [None] * self.layout.n_islands
        for m in everyone:
            for ind in m["top"][:1]:
                cur = islands[m["island"]]
                if cur is None or ind.loss < cur.loss:
                    islands[m["island"]] = ind
        return Result(best=top[0] if top else None, top=top[:top_n], islands=islands,
                      n_evaluations=sum(m["done"] for m in everyone), n_failed=sum(m["failed"] for m in everyone),
                      n_interrupted=sum(m["interrupted"] for m in everyone), elapsed=time.time() - self._t0,
                      reason=self.stop_reason or "", checkpoint=self.checkpoint, resumed=self.resumed,
                      archive=list(pop),
                      active={i.id for i in pop if pop.is_active(i.id)},
                      messages={"sent": int(self.transport.sent.sum()), "received": int(self.transport.received.sum()),
                                "pending_sends": self.transport.pending_sends()})


class StopSignals:
    """SIGTERM/SIGUSR1 stop new evaluations; a running one gets ``grace`` seconds, then is interrupted.

    A context manager, entered as early as possible so that a signal during start-up is not fatal either.
    """

    def __init__(self, grace: float | None, signals: Sequence[int] = (signal.SIGTERM, signal.SIGUSR1)) -> None:
        self.grace, self.signals = grace, tuple(signals)
        self.reason: str | None = None  # set by the handler; acted on by the worker loop
        self.evaluating = False
        self._previous: dict[int, Any] = {}

    def _on_stop(self, signum: int, frame: Any) -> None:
        self.reason = f"received {signal.Signals(signum).name}"
        if self.evaluating and self.grace is not None:
            signal.setitimer(signal.ITIMER_REAL, max(self.grace, 1e-3))

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if self.evaluating:
            raise EvaluationInterrupted()

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._on_stop) for s in self.signals}
            self._previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._on_alarm)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous:
            signal.setitimer(signal.ITIMER_REAL, 0)
            for s, h in self._previous.items():
                signal.signal(s, h)
            self._previous = {}
