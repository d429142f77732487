"""A worker's budget: how many evaluations it may finish, and, with a shared total, the protocol that hands
unstarted evaluations between the workers of an island so that fast workers take over from slow ones.

The protocol (messages ASK, GIFT, RETIRED): a worker with ``ASK_LEAD`` or fewer evaluations left asks the peer
that last said it holds the most unstarted ones; the peer answers between two of its evaluations with a GIFT
of as many as evens the two out (possibly none) and how many it keeps. Out of evaluations with no such peer,
a worker asks every peer still working; when all of them give nothing, nobody has any to give and it stops
asking. A worker that stops answers no more ASKs: its RETIRED counts as its answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..journal.restore import RankPlan
from .transport import Tag, Transport

ASK_LEAD = 2  # ask peers for evaluations when this few of our own are left (they answer between evaluations)


class Budget:
    """The evaluations this worker may finish (``limit``; None: no count limit) and how many it finished.

    With a step budget the units are steps instead: an evaluation about to start holds ``reserve`` of them (the
    most one training may report) until it ends and its steps are counted.
    """

    def __init__(self, transport: Transport, peers: list[int], limit: int | None, *, done: int = 0,
                 requeued: Sequence[Mapping[str, Any]] = (), share: bool = False, reserve: int = 1) -> None:
        self.transport, self.peers = transport, peers
        self.limit = limit
        self.done = done  # finished, restored ones included
        self.requeued = list(requeued)  # to run first: restored unfinished ones (journal records), then warm-start ones
        self.share = share and limit is not None
        self.reserve = reserve
        self.retired: set[int] = set()
        self.asked: set[int] = set()  # peers whose answer to our ASK is outstanding
        self.spare: dict[int, int] = {}  # peer -> its unstarted evaluations, as last heard from it
        self.nobody_has_more = False  # every peer answered that it has nothing to give: asking cannot help
        self._round_gained = 0  # evaluations gifted in the current round
        self._round_left = 0  # what this worker had left when it asked
        self._round_everyone = False  # the current round asked every peer still working
        self._first_share = limit or 0  # what a peer not heard from yet is assumed to hold

    # --- counting -----------------------------------------------------------------------------------------
    def spent(self) -> bool:
        """Whether every evaluation of the limit finished."""
        return self.limit is not None and self.done >= self.limit

    def left(self) -> int:
        """Evaluations of the limit not finished yet (0 without a limit)."""
        return 0 if self.limit is None else max(0, self.limit - self.done)

    def unstarted(self, starting: bool = False) -> int:
        """Evaluations of the limit not started yet (``starting``: one is about to be)."""
        if self.limit is None:
            return 0
        return max(0, self.limit - self.done - self.reserve * (len(self.requeued) + starting))

    # --- sharing ------------------------------------------------------------------------------------------
    def ask_ahead(self) -> None:
        """Ask for more while the last evaluations still run, so that the answers are there when they end."""
        if self.share and self.limit - self.done <= ASK_LEAD * self.reserve:  # type: ignore[operator]
            self.ask()

    def wait_for_more(self, wait: Callable[[Callable[[], bool]], None]) -> bool:
        """Out of evaluations: handle messages (``wait(until)``) until a peer gives some or none can; True if
        some came (later answers are handled as they arrive)."""
        if not self.share:
            return False
        while self.spent() and not self.nobody_has_more:
            self.ask()  # a new round once the last one (asked with some left) is answered
            wait(lambda: not self.asked or not self.spent())
        return not self.spent()

    def ask(self) -> None:
        """Ask for evaluations, one round at a time: the peer that last said it has the most unstarted ones, if
        that is enough to give some (two more than we have left); out of evaluations with no such peer, every
        peer still working (their answers are authoritative: all none, and asking again cannot help)."""
        if not self.share or self.asked or self.nobody_has_more:
            return
        left = self.left()
        live = [p for p in self.peers if p not in self.retired]
        richest = max(live, key=lambda p: self.spare.get(p, self._first_share), default=None)
        if richest is not None and self.spare.get(richest, self._first_share) >= left + 2 * self.reserve:
            self.asked = {richest}
        elif left == 0:
            self.asked = set(live)
        self._round_gained, self._round_left, self._round_everyone = 0, left, self.asked == set(live)
        self.transport.send_all(sorted(self.asked), Tag.ASK, left)
        self.nobody_has_more = not live

    def give(self, asker: int, left: int) -> None:
        """Answer an ASK from a worker with ``left`` evaluations to run: as many of the evaluations this worker
        has not started as evens out the two. Rounded up while the asker still runs one (it will be free before
        this worker reaches its last), down once it is idle: then both are free now, and rounding up would let
        two idle workers hand one evaluation back and forth. Nothing once retired."""
        if self.transport.closing:
            return  # the asker counts our RETIRED as the answer
        unstarted = self.unstarted()
        gift = max(0, (unstarted - left + (left > 0)) // 2)
        self.limit = None if self.limit is None else self.limit - gift
        self.transport.send(asker, Tag.GIFT, (gift, unstarted - gift))

    def heard(self, peer: int, unstarted: int) -> None:
        """A peer said how many unstarted evaluations it holds (with each of its results)."""
        self.spare[peer] = unstarted

    def on_gift(self, peer: int, gift: int, unstarted: int) -> None:
        """A peer's answer to our ASK: ``gift`` evaluations are ours now; it keeps ``unstarted``."""
        self.limit += gift  # type: ignore[operator]
        self._answered(peer, gift, unstarted)

    def on_retired(self, peer: int) -> None:
        """A peer stopped: it gives nothing more (and counts as having answered)."""
        self.retired.add(peer)
        self._answered(peer, 0, 0)

    def retire(self) -> None:
        """This worker stopped: tell the peers, who stop asking it."""
        if self.share:
            self.transport.send_all(self.peers, Tag.RETIRED, None)

    def _answered(self, peer: int, gift: int, unstarted: int) -> None:
        self.spare[peer] = unstarted
        if peer in self.asked:
            self.asked.discard(peer)
            self._round_gained += gift
            if not self.asked and self._round_gained == 0 and self._round_left == 0 and self._round_everyone:
                self.nobody_has_more = True


def share(total: int, parts: int, index: int) -> int:
    """Part ``index`` of ``total`` split into ``parts`` integers that differ by at most one (without building the
    list: every one of 16,384 workers computes its own)."""
    base, extra = divmod(max(total, 0), parts)
    return base + (index < extra)


def worker_limit(rank: int, size: int, generations: int | None, max_evaluations: int | None,
                 plan: RankPlan | None = None, step_budget: int | None = None) -> tuple[int | None, int]:
    """How many evaluations worker ``rank`` of ``size`` may finish (restored ones included; None: no limit), and how
    many it finished; in steps instead with a ``step_budget`` (``step_limit``).

    ``generations`` are per worker; what is left of ``max_evaluations`` after the restored ones (``plan``)
    is split evenly, on top of what each worker must re-run (``plan.queued``: unfinished ones per rank).
    """
    if step_budget is not None:
        return step_limit(rank, size, step_budget, plan), plan.steps if plan else 0
    done, total_done, queued = (plan.done, plan.total_done, plan.queued) if plan else (0, 0, {})
    limits = []
    if generations is not None:
        limits.append(generations)
    if max_evaluations is not None:
        left = max_evaluations - total_done - sum(queued.values())
        limits.append(done + queued.get(rank, 0) + share(left, size, rank))
    return min(limits) if limits else None, done


def search_total(generations: int | None, max_evaluations: int | None, workers: int) -> int | None:
    """The whole search's evaluations (for progress): the total, or ``generations`` per worker."""
    if max_evaluations is not None:
        return max_evaluations
    return generations * workers if generations is not None else None


def step_limit(rank: int, size: int, step_budget: int, plan: RankPlan | None = None) -> int:
    """How many steps worker ``rank`` of ``size`` may use (its restored ones included): what is left of
    ``step_budget`` after every journal's reported steps (``plan``), split evenly."""
    done, total_done = (plan.steps, plan.total_steps) if plan else (0, 0)
    return done + share(step_budget - total_done, size, rank)
