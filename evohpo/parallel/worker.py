"""The worker loop, written once: ask, evaluate, tell, share, poll, migrate, journal, check stop.

Everything else a worker does is a collaborator with its own tests: the budget and its sharing
(``budget``), migration (``islands``), progress (``progress``), stop signals (``signals``), callbacks
(``callbacks``) and the gathering of the result (``result``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

from ..core import clock
from ..core.context import EvalContext
from ..core.evolver import Evolver, SpaceExhausted
from ..core.goal import Goal
from ..core.individual import FAILED, INTERRUPTED, PRUNED, Individual
from ..core.migration import IslandLayout, MigrationPolicy
from ..journal import records
from ..journal.writer import Journal, NullJournal
from .budget import Budget
from .callbacks import Callback, Callbacks, SearchInfo
from .evaluation import LossFn, evaluate
from .failures import FailureWatch
from .gcfreeze import SurvivorFreezer
from .group import WorkerGroup
from .islands import IslandExchange
from .listener import StopListener
from .progress import ProgressReport
from .reports import Reports, steps_used
from .result import SearchResult, Tally, gather
from .signals import StopSignals
from .transport import Tag, Transport

log = logging.getLogger("evohpo")

ON_ERROR = ("record", "raise")


class Worker:
    """One rank: breeds from its island, evaluates, shares, migrates, until its budget or a stop.

    Args:
        budget: evaluations this worker may finish (restored ones included; None: no count limit).
        share_budget: hand unstarted evaluations to island peers that run out (a total budget).
        done: evaluations this worker finished before (restored from a checkpoint).
        requeued: evaluations to run first: unfinished ones (journal records) with their ids, then warm-start
            configurations (``{"params": ..., "id": None}``: a new id each).
        total_budget: the whole search's evaluations, for the progress report.
        resumed: evaluations of the whole search restored from the checkpoint.
        state_interval: seconds between two state records in the journal (rng, counters).
        failures: when failed evaluations stop the search (default: never).
        goal: what the search optimizes, for what users see (callbacks, progress, result); ``loss_fn``
            returns the signed loss already.
        reports: per-step reports and pruning (``parallel.reports``; None: ``evohpo.report`` is an error).
        step_budget: the budget counts steps (``reports.steps_used``) instead of evaluations.
        group: this worker's ranks when several evaluate each individual (``parallel.group``; this is its root).
    """

    def __init__(self, loss_fn: LossFn, evolver: Evolver, transport: Transport, layout: IslandLayout,
                 policy: MigrationPolicy, *, budget: int | None = None, time_limit: float | None = None,
                 journal: Journal | NullJournal | None = None, on_error: str = "record",
                 callbacks: Callbacks | Sequence[Callback | Callable[[Individual], Any]] = (),
                 progress_interval: float = 5.0, total_budget: int | None = None, done: int = 0,
                 requeued: Sequence[Mapping[str, Any]] = (), checkpoint: str | None = None, resumed: int = 0,
                 signals: StopSignals | None = None, share_budget: bool = False,
                 state_interval: float = 10.0, goal: Goal | None = None,
                 failures: FailureWatch | None = None, reports: Reports | None = None,
                 step_budget: bool = False, group: WorkerGroup | None = None) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error={on_error!r} must be one of {ON_ERROR}")
        self.loss_fn, self.evolver, self.transport, self.layout = loss_fn, evolver, transport, layout
        self.time_limit, self.on_error, self.checkpoint, self.resumed = time_limit, on_error, checkpoint, resumed
        self.journal = journal or NullJournal()
        self.goal = goal or Goal()
        self.callbacks = callbacks if isinstance(callbacks, Callbacks) else Callbacks(callbacks)
        self.exchange = IslandExchange(transport, layout, policy, evolver.population, self.journal)
        self.rank, self.island, self.peers = transport.rank, self.exchange.island, self.exchange.peers
        self.island_rank = layout.workers(self.island).index(self.rank)
        self.reports = reports
        if reports is not None:
            reports.attach(transport, self.peers, self.journal)
        self.step_budget = step_budget
        self._run_loss = group.evaluate if group is not None else evaluate
        reserve = (reports.max_steps or 1) if step_budget and reports is not None else 1
        self.budget = Budget(transport, self.peers, budget, done=done, requeued=requeued, share=share_budget,
                             reserve=reserve)
        self.progress = ProgressReport(transport, evolver.population, progress_interval, total_budget, time_limit,
                                       self.goal, resumed=resumed)
        self.signals = signals or StopSignals(None)
        self.tally = Tally()
        self.stop_reason: str | None = None
        self.state_interval = state_interval
        self.failures = failures or FailureWatch(None)
        self._t0 = self._last_state = clock.now()
        self._freezer = SurvivorFreezer()
        threads_ok = transport.size > 1 and transport.threads_ok
        self._listener = StopListener(transport, self.signals, self.request_stop) if threads_ok else None
        if reports is not None and self._listener is not None:  # a report uses the transport while the loss runs
            reports.lock, reports.look = self._listener.lock, self._listener.look
        self._handlers: dict[int, Callable[[int, Any], None]] = {
            Tag.RESULT: self._on_peer_result,
            Tag.MIGRANT: lambda src, payload: self.exchange.on_migrants(payload),
            Tag.DEACTIVATE: lambda src, payload: self.exchange.on_departed(payload),
            Tag.PROGRESS: self.progress.on_message,
            Tag.STOP: lambda src, reason: self.request_stop(f"{reason} (on rank {src})", broadcast=False),
            Tag.ASK: self.budget.give,
            Tag.GIFT: lambda src, payload: self.budget.on_gift(src, *payload),
            Tag.RETIRED: lambda src, payload: self.budget.on_retired(src),
            Tag.NOTICE: lambda src, payload: self.exchange.on_notice(payload),
            Tag.RUNG: reports.on_rung if reports is not None else lambda src, payload: None,
        }

    @property
    def n_done(self) -> int:
        """Evaluations this worker finished, restored ones included."""
        return self.budget.done

    # --- the loop -------------------------------------------------------------------------------------
    def run(self) -> str:
        """Work until the budget, the time limit, a stop signal or an exhausted space; then terminate cleanly."""
        self.callbacks.on_start(SearchInfo(self.rank, self.transport.size, self.island, self.island_rank,
                                           self.layout, self.checkpoint, self.goal))
        self._t0 = clock.now()
        self.progress.start()
        if self._listener is not None:
            self._listener.start()
        try:
            reason = self._loop()
        finally:
            self._freezer.close()  # also when an evaluation raises (on_error="raise")
            if self._listener is not None:
                self._listener.close()
        self._finish(reason)
        return reason

    def _loop(self) -> str:
        last: Individual | None = None  # the latest result, shared with the configuration started next
        while True:
            self._receive(self.transport.poll())
            reason = self._check_stop()
            params = None
            if reason is None:
                try:
                    params = self._ask()
                except SpaceExhausted as e:
                    reason = f"space exhausted: {e}"
            self._share(last, params)
            if reason is not None:
                self.stop_reason = reason
                return reason
            self.budget.ask_ahead()  # the answers arrive while our last evaluations run
            last = self._record(self._evaluate(params))
            self._freezer.tick(len(self.evolver.population))
            self.exchange.maybe_emigrate(self.evolver.rng)
            self.progress.tick(self.tally.run)

    def _ask(self) -> dict[str, Any]:
        """The next configuration: an unfinished one restored from the checkpoint first, else a new child."""
        if self.budget.requeued:
            rec = self.budget.requeued.pop(0)
            return self.evolver.requeue(rec["params"], rec["id"], bool(rec.get("promoted")))
        while True:
            params = self.evolver.ask_or_promote()
            if not self.peers:
                return params
            late = self.transport.poll()  # what arrived while breeding (near a finite space's end: milliseconds)
            taken = self._taken(params, late)
            if taken:  # a peer started it and keeps it (it shared it before it could hear of ours)
                self.evolver.withdraw(params)
            self._receive(late)
            if not taken:
                return params

    def _taken(self, params: dict[str, Any], msgs: list[tuple[int, int, Any]]) -> bool:
        """Whether a peer's result among ``msgs`` started or finished ``params``."""
        key = self.evolver.space.key(params)
        for _, tag, payload in msgs:
            if tag == Tag.RESULT:
                ind, starting = payload[0], payload[1]
                if (starting is not None and self.evolver.space.key(starting) == key) or \
                        (ind is not None and self.evolver.space.key(ind.params) == key):
                    return True
        return False

    def _evaluate(self, params: dict[str, Any]) -> Individual:
        """Run the loss on ``params`` and tell the evolver; a failure is a result unless ``on_error="raise"``."""
        ind_id, gen = self.evolver.pending_id(params)
        start = clock.now()
        judged = self.evolver.space.key(params) not in self.evolver.promoting
        if not judged and self.evolver.promoted == 1:
            log.info("every configuration was tried: training pruned ones again to their end, the most promising first")
        self.journal.write(records.start(ind_id, params, self.island, gen, start, promoted=not judged))
        cap = self.budget.left() if self.step_budget and self.budget.limit is not None else None  # its last step
        reporter = self.reports.begin(ind_id, judged, cap) if self.reports is not None else None
        leader = self.evolver.population.best()
        ctx = EvalContext(ind_id, self.rank, self.island, self.island_rank, gen, self.checkpoint, reporter,
                          leader.loss if leader is not None else math.inf)
        with self._listener.evaluating() if self._listener is not None else nullcontext():
            out = self._run_loss(self.loss_fn, params, ctx, self.signals)
        if out.exception is not None and self.on_error == "raise":
            log.critical("evaluation %s failed with params %s; aborting all ranks\n%s", ind_id, params, out.error)
            self.journal.close()
            if self.transport.size > 1:
                self.transport.abort(1)
            raise out.exception
        ind = self.evolver.tell(params, out.loss, error=out.error, status=out.status, start=start, end=clock.now(),
                                step=reporter.last_step if reporter is not None else None)
        if out.error and out.status is None:
            log.warning("evaluation %s failed (params %s): %s", ind_id, params, out.error.splitlines()[-1])
        return ind

    def _record(self, ind: Individual) -> Individual | None:
        """Journal and count a finished evaluation; return it unless it was interrupted (not to be shared)."""
        self.journal.write(records.end(ind))
        if ind.status == INTERRUPTED:
            self.tally.interrupted += 1
            return None
        self.budget.done += steps_used(ind, self.reports.max_steps) if self.step_budget and self.reports else 1
        self.tally.run += 1
        self.tally.failed += ind.status == FAILED
        self.tally.pruned += ind.status == PRUNED
        self.tally.steps += ind.step or 0
        self._write_state()
        self._heard(ind)
        return ind

    def _heard(self, ind: Individual) -> None:
        """A result of this island (this worker's or a peer's): to the callbacks and the failure watch."""
        self.callbacks.on_result(ind)
        reason = self.failures.add(ind)
        if reason:
            self.request_stop(reason)

    def _share(self, ind: Individual | None, params: dict[str, Any] | None) -> None:
        """One message per island peer: the last result and the configuration starting now (so no peer breeds it),
        with how many evaluations this worker has not started (for budget sharing) and the digests of other
        islands' configurations this worker relays; the other islands hear of the configuration in a NOTICE."""
        if params is not None:
            self.exchange.started(params)
        if ind is not None or params is not None:
            self.transport.send_all(self.peers, Tag.RESULT, (ind, params, self.budget.unstarted(params is not None),
                                                             self.exchange.relayed()))

    def _check_stop(self) -> str | None:
        """Why no further evaluation starts (a stop, the budget, the time limit), or None."""
        if self.signals.reason:
            self.request_stop(self.signals.reason)
        if self.stop_reason:
            return self.stop_reason
        if self.budget.spent() and not self.budget.wait_for_more(self._wait):
            return "budget reached"
        if self.time_limit is not None and clock.now() - self._t0 >= self.time_limit:
            return f"time limit of {self.time_limit:g} s reached"
        return None

    def request_stop(self, reason: str, broadcast: bool = True) -> None:
        """Start no new evaluation; tell every other worker to do the same."""
        if self.stop_reason is None:
            self.stop_reason = reason
            log.warning("stopping: %s", reason)
            if broadcast:
                others = [r for r in range(self.transport.size) if r != self.rank]
                self.transport.send_all(others, Tag.STOP, reason)

    def _write_state(self, force: bool = False) -> None:
        """What resuming needs beyond the results (rng, counters): every ``state_interval`` seconds and at exit."""
        now = clock.now()
        if not force and now - self._last_state < self.state_interval:
            return
        self._last_state = now
        self.journal.write(records.state(self.rank, self.n_done, self.evolver.state_dict(population=False), now))

    # --- messages -------------------------------------------------------------------------------------
    def _receive(self, msgs: list[tuple[int, int, Any]]) -> None:
        """Handle one poll's messages by sender (each sender's in the order sent), not in the order of arrival."""
        for src, tag, payload in sorted(msgs, key=lambda m: m[0]):
            self._handlers[tag](src, payload)

    def _on_peer_result(self, src: int, payload: tuple[Individual | None, dict[str, Any] | None, int, Any]) -> None:
        ind, starting, unstarted, relayed = payload
        self.budget.heard(src, unstarted)
        if relayed:
            self.evolver.population.note(relayed)
        pop = self.evolver.population
        if ind is not None:
            pop.release(ind.params)
            if self.evolver.add(ind, active=ind.id not in self.exchange.policy.hops):  # unless it moved on already
                self._heard(ind)
        if starting is not None:
            pop.reserve(starting)

    def _wait(self, until: Callable[[], bool]) -> None:
        """Handle messages until ``until()`` (``Transport.wait``)."""
        self.transport.wait(until, self._receive)

    # --- the end --------------------------------------------------------------------------------------
    def _finish(self, reason: str) -> None:
        """Write the final state, tell the peers, and drain until every message addressed here arrived."""
        self._write_state(force=True)
        self.journal.write(records.done(reason, self.n_done, clock.now()))
        self.exchange.flush(force=True)
        self.budget.retire()
        self.transport.close()
        self._wait(self.transport.finished)
        self.progress.close()
        self.journal.close()

    def result(self, top_n: int = 10) -> SearchResult:
        """Gather every island's best to all workers (a collective: call on every worker after ``run``)."""
        return gather(self.transport, self.layout, self.island, self.evolver.population, self.tally,
                      self.stop_reason or "", top_n, self._t0, self.checkpoint, self.resumed, self.goal)
