"""The worker's collaborators on their own, in one process: one evaluation, the progress report, gathering."""

from __future__ import annotations

import math
import threading

import evohpo
from evohpo.core.context import EvalContext
from evohpo.core.individual import INTERRUPTED, Individual
from evohpo.core.migration import IslandLayout
from evohpo.core.population import Population
from evohpo.core.space import Space
from evohpo.parallel.evaluation import evaluate
from evohpo.parallel.progress import ProgressReport
from evohpo.parallel.result import Tally, gather
from evohpo.parallel.signals import EvaluationInterrupted, StopSignals
from evohpo.parallel.transport import Tag, ThreadHub

SPACE = Space({"x": (0.0, 1.0)})
CTX = EvalContext("3-7", rank=3, island=1, island_rank=0, generation=7)


def test_an_evaluation_is_an_outcome_whatever_the_loss_does() -> None:
    signals = StopSignals(None)
    seen = []

    def loss(p):
        seen.append((evohpo.current(), signals.evaluating))
        return p["x"] * 2

    assert evaluate(loss, {"x": 0.25}, CTX, signals).loss == 0.5
    assert seen == [(CTX, True)] and not signals.evaluating and evohpo.current() is None
    nan = evaluate(lambda p: math.nan, {"x": 0.0}, CTX, signals)
    assert nan.error == "loss_fn returned nan" and nan.exception is None
    boom = ValueError("boom")

    def raising(p):
        raise boom

    out = evaluate(raising, {"x": 0.0}, CTX, signals)
    assert out.exception is boom and "Traceback" in out.error and out.error.endswith("ValueError: boom")
    text = evaluate(lambda p: "abc", {"x": 0.0}, CTX, signals)
    assert isinstance(text.exception, TypeError) and "of type str" in text.error

    def interrupted(p):
        raise EvaluationInterrupted()

    stop = evaluate(interrupted, {"x": 0.0}, CTX, signals)
    assert stop.status == INTERRUPTED and "grace period" in stop.error and not signals.evaluating


def ind(i: int, loss: float, island: int = 0, status: str = "ok") -> Individual:
    return Individual(id=f"{island}-{i}", params={"x": i / 100}, loss=loss, status=status, island=island)


def test_progress_goes_to_rank_0_which_shows_the_sum_and_the_best() -> None:
    t0, t1 = ThreadHub(2).transports()
    pops = [Population(SPACE, 4), Population(SPACE, 4)]
    pops[1].add(ind(1, 0.5))
    reports = [ProgressReport(t, p, interval=0.0, total=10, time_limit=None) for t, p in zip((t0, t1), pops)]
    shown = []

    class Bar:
        def update(self, done, best, rate, elapsed):
            shown.append((done, best))

        def close(self):
            shown.append("closed")

    assert reports[1].bar is None  # only rank 0 shows anything
    reports[0].bar = Bar()
    reports[1].tick(run=3)
    [(src, tag, payload)] = t0.poll()
    assert (src, tag, payload) == (1, Tag.PROGRESS, (3, 0.5))
    reports[0].on_message(src, payload)
    reports[0].tick(run=2)  # rank 0 has no ok result yet: inf
    assert shown == [(5, 0.5)]
    reports[0].interval = 1e9
    reports[0].tick(run=4)  # not due: nothing shown, nothing sent
    reports[0].close()
    assert shown == [(5, 0.5), "closed"]


def test_gather_gives_every_worker_the_same_result() -> None:
    transports = ThreadHub(3).transports()
    layout = IslandLayout.make(3, 2)  # islands [2, 1]
    pops = [Population(SPACE, 8) for _ in range(3)]
    for k, pop in enumerate(pops):
        island = layout.island_of(k)
        for i in range(5):
            pop.add(ind(10 * k + i, loss=(10 * k + i) / 10, island=island))
        pop.add(ind(99 + k, math.inf, island, status="failed"))
    out = [None] * 3

    def run(k: int) -> None:
        out[k] = gather(transports[k], layout, layout.island_of(k), pops[k], Tally(run=5 + k, failed=1),
                        "budget reached", top_n=4, started=0.0)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    first = out[0]
    assert [i.id for i in first.top] == ["0-0", "0-1", "0-2", "0-3"] and first.best.id == "0-0"
    assert [i.id for i in first.islands] == ["0-0", "1-20"]
    assert (first.n_evaluations, first.n_failed, first.n_interrupted) == (18, 3, 0)
    for r in out:
        assert (r.top, r.islands, r.n_evaluations, r.reason) == (first.top, first.islands, 18, "budget reached")
    assert len(out[2].archive) == 6 and out[2].active == {f"1-{20 + i}" for i in range(5)}  # its own island
