"""A search of W simulated workers: ``evohpo.optimize`` itself on every worker, in virtual time, and what it cost.

Each simulated worker calls the real ``optimize`` with a ``SimTransport``; its loss sleeps a drawn duration in
virtual time and returns a test function's value (``evohpo.testing.functions``). The report says where the
workers' time went: evaluating (utilization), waiting at the end (after a worker's last evaluation), receiving
(the modelled MPI cost of every message taken in) and the rest between evaluations (the optimizer's own CPU,
sends, waiting for evaluations from peers); messages and bytes per evaluation; the best loss against time.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..api import optimize
from ..core import clock
from ..core.context import current
from ..core.migration import IslandLayout
from ..parallel.result import SearchResult
from ..parallel.transport import Tag
from ..testing import functions
from .costs import CostModel
from .durations import Durations
from .engine import Engine
from .transport import SimTransport


@dataclass
class SimReport:
    """What a simulated search did, in virtual seconds (``real`` is the simulator's own run time)."""

    workers: int
    islands: int
    durations: str
    evaluations: int
    failed: int
    wall: float  # virtual seconds from the start until the last worker finished
    utilization: float  # share of the workers' time spent evaluating
    idle_end: float  # share spent after their last evaluation (draining, termination, the final gather)
    idle_receive: float  # share spent receiving messages before that
    idle_between: float  # the rest: the optimizer's CPU, sends, waiting for evaluations from peers
    # in the loop (until a worker's last evaluation started), per evaluation: CPU per gap between two evaluations,
    # messages and bytes per evaluation started
    cpu_per_evaluation: float  # the optimizer's own CPU, seconds (measured or given)
    messages_per_evaluation: float
    bytes_per_evaluation: float
    # what each worker spends once: starting (optimize's set-up) and ending (budget sharing's last round, retiring,
    # draining, the final reduction)
    start_cpu_per_worker: float
    end_cpu_per_worker: float
    end_messages_per_worker: float
    messages_by_tag: dict[str, float]  # per evaluation, by kind of message (RESULT, NOTICE, PROGRESS, ...)
    best: float | None
    reason: str
    real: float
    events: int
    curve: list[tuple[float, float]] = field(default_factory=list)  # (virtual time, best loss so far)
    # every evaluation: (rank, id, start, end, loss; NaN when it failed)
    trace: list[tuple[int, str, float, float, float]] = field(default_factory=list, repr=False)

    @property
    def idle(self) -> float:
        return 1.0 - self.utilization

    def to_dict(self, curve: bool = True) -> dict[str, Any]:
        out = asdict(self)
        out.pop("trace")
        if not curve:
            out.pop("curve")
        return out


def simulate(workers: int, islands: int | None = None, *, max_evaluations: int | None = None,
             durations: Durations | None = None, problem: str = "sphere", dim: int = 5,
             costs: CostModel | None = None, cpu: str | float = "measured", cpu_scale: float = 1.0,
             seed: int = 0, quiet: bool = True, options: Mapping[str, Any] | None = None,
             loss: Callable[[dict[str, Any]], float] | None = None, space: Mapping[str, Any] | None = None,
             keep: Callable[[int, SearchResult], Any] | None = None) -> SimReport:
    """Run ``optimize`` on ``workers`` simulated workers in ``islands`` islands (None: ``optimize``'s default, one per
    64 workers; ``options``: more ``optimize`` arguments, e.g. ``propagator`` or ``migration_prob``);
    ``max_evaluations`` defaults to 8 per worker.

    ``loss``/``space`` replace the test function (``problem`` in ``dim`` dimensions); ``keep(rank, result)`` sees
    every worker's ``SearchResult``. ``cpu="measured"``: the optimizer's CPU is what the real code takes here
    (times ``cpu_scale``); a number: that many seconds per evaluation (a seed then gives the same trace anywhere).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r} must be a positive int")
    layout = IslandLayout.make(workers, islands, (options or {}).get("island_sizes"))
    durations = durations or Durations()
    if loss is None:
        fn = functions.get(problem, dim)
        loss, space = fn.loss, fn.space
    elif space is None:
        raise ValueError("space must be given with loss")
    budget = 8 * workers if max_evaluations is None and "generations" not in (options or {}) else max_evaluations
    engine = Engine(workers, costs, cpu=cpu, cpu_scale=cpu_scale)
    trace: list[tuple[int, str, float, float, float]] = []
    first: list[SearchResult] = []  # rank 0's (every worker's best and reason are the same)

    def body(rank: int) -> None:
        rng = np.random.default_rng([seed, rank, 7])

        def timed(params: dict[str, Any]) -> float:
            seconds, fails = durations.draw(rng)
            start, end = engine.sleep(seconds)
            with engine.hidden():
                value = math.nan if fails else float(loss(params))
                ctx = current()
                trace.append((rank, ctx.id if ctx else "", start, end, value))
            if fails:
                raise RuntimeError(f"simulated failure after {seconds:.3g} s")
            return value

        result = optimize(timed, space, comm=SimTransport(engine, rank), islands=islands,
                          max_evaluations=budget, seed=seed, **dict(options or {}))
        if rank == 0:
            first.append(result)
        if keep is not None:
            with engine.hidden():
                keep(rank, result)

    started = time.perf_counter()
    with _quiet(quiet), clock.using(engine.now), _no_collector():
        engine.run(body)
    return _report(engine, first[0], trace, layout.n_islands, durations, time.perf_counter() - started)


@contextlib.contextmanager
def _no_collector() -> Iterator[None]:
    """Python's cyclic garbage collector off while the simulation runs: its pauses grow with the memory of all the
    simulated workers together and would be charged to whichever worker happened to trigger one (a real rank's own
    collections are what ``SurvivorFreezer`` keeps short); reference counting still frees nearly everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    """No log lines and no progress bar from thousands of simulated workers (errors still show)."""
    if not quiet:
        yield
        return
    log = logging.getLogger("evohpo")
    handler, level = logging.NullHandler(), log.level
    log.addHandler(handler)
    log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # not a terminal: no tqdm bar
            yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def _report(engine: Engine, first: SearchResult, trace: list[tuple[int, str, float, float, float]],
            islands: int, durations: Durations, real: float) -> SimReport:
    procs = engine.procs
    wall = max(p.finished_at for p in procs)
    total = wall * len(procs)
    busy = sum(p.evaluating for p in procs)
    end = sum(wall - p.last_end if p.n_evaluations else wall for p in procs)
    receive = sum(p.receive_in_loop for p in procs)
    n = sum(p.n_evaluations for p in procs)
    loop = max(1, sum(max(0, p.n_evaluations - 1) for p in procs))  # the gaps between evaluations
    ok = sorted((t[3], t[4]) for t in trace if not math.isnan(t[4]))
    curve, best = [], math.inf
    for t, v in ok:
        if v < best:
            best = v
            curve.append((t, v))
    share = (lambda x: x / total) if total > 0 else (lambda x: 0.0)
    return SimReport(
        workers=len(procs), islands=islands, durations=durations.describe(), evaluations=n,
        failed=sum(1 for t in trace if math.isnan(t[4])), wall=wall, utilization=share(busy), idle_end=share(end),
        idle_receive=share(receive), idle_between=share(total - busy - end - receive),
        cpu_per_evaluation=sum(p.cpu_in_loop for p in procs) / loop,
        messages_per_evaluation=sum(p.messages_in_loop for p in procs) / max(n, 1),  # each start shared once
        bytes_per_evaluation=sum(p.bytes_in_loop for p in procs) / max(n, 1),
        start_cpu_per_worker=sum(p.cpu_startup for p in procs) / len(procs),
        end_cpu_per_worker=sum(p.cpu - p.cpu_startup - p.cpu_in_loop for p in procs) / len(procs),
        end_messages_per_worker=sum(p.sent_messages - p.messages_in_loop for p in procs) / len(procs),
        messages_by_tag={Tag(tag).name: count / max(n, 1) for tag, count in sorted(engine.by_tag.items())},
        best=None if first.best is None else first.best.loss, reason=first.reason, real=real, events=engine.events,
        curve=curve,
        trace=sorted(trace, key=lambda t: (t[2], t[0])))
