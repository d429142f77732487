"""``optimize``: check the arguments, build this rank's worker from the layers, run it, gather the result."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .core.evolver import Evolver
from .core.goal import Goal
from .core.individual import Individual
from .core.migration import IslandLayout, MigrationPolicy, make_topology
from .core.propagators import BreedFn, Propagator
from .core.pruners import Pruner, describe, make_pruner
from .core.space import Space
from .core.strategies import DEFAULT, ends_by_itself, make_propagator
from .journal.directory import model_path, search_meta
from .parallel.budget import search_total, worker_limit
from .parallel.callbacks import Callback, Callbacks
from .parallel.evaluation import LossFn
from .parallel.failures import FailureWatch
from .parallel.group import WorkerSplit
from .parallel.reports import Reports, board_from_curves
from .parallel.result import SearchResult
from .parallel.resume import apply_plan, open_checkpoint, stored_meta
from .parallel.signals import StopSignals
from .parallel.transport import as_transport
from .parallel.warmstart import already_run, configurations, enqueue
from .parallel.worker import Worker
from .results.tables import check_metric

log = logging.getLogger("evohpo")


def setup_logging(rank: int, level: int = logging.INFO) -> None:
    """Rank-prefixed log lines on stderr, unless the application configured logging itself."""
    if log.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s [rank {rank}] %(levelname)s %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(level)


def _positive(name: str, value: Any, kind: type = int) -> None:
    if value is None:
        return
    ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
    if not ok or value <= 0:
        raise ValueError(f"{name}={value!r} must be a positive {kind.__name__} or None")


def optimize(loss_fn: LossFn, space: Mapping[str, Any], *, comm: Any = None, islands: int | None = None,
             island_sizes: Sequence[int] | None = None, generations: int | None = None,
             max_evaluations: int | None = None, time_limit: float | None = None, pop_size: int | None = None,
             migration_prob: float = 0.1, topology: str | Sequence[Sequence[float]] = "complete",
             emigrants: int = 1, emigrant_selection: str = "best", pollinate: bool = False,
             propagator: str | Propagator | BreedFn | None = None, seed: int = 0, checkpoint: str | None = None,
             resume: bool = True, on_error: str = "record",
             callbacks: Sequence[Callback | Callable[[Individual], Any]] = (),
             grace_period: float | None = 60.0, progress_interval: float = 5.0, top_n: int = 10,
             fsync_interval: float = 10.0, direction: str | None = None, metric: str | None = None,
             initial: Any = None, fingerprint: Any = None, max_failures: int | None = 10,
             max_failure_rate: float | None = None, pruner: str | Pruner | None = None,
             max_steps: int | None = None, step_budget: int | None = None,
             ranks_per_worker: int = 1) -> SearchResult:
    """Minimize (or maximize) ``loss_fn(params) -> float`` over ``space`` on every rank of ``comm``; the result
    on all ranks.

    Args:
        comm: an MPI communicator (default COMM_WORLD; one process without mpirun works too) or a Transport.
        islands: how many (default: as many as the search resumed had, else one per 64 ranks, rounded up: every
            result goes to every worker of its island, so bigger islands cost each worker more messages per
            evaluation); ``island_sizes`` their sizes.
        generations: evaluations per worker (Propulate's meaning); ``max_evaluations``: in total, shared so that
            fast workers take over from slow ones; ``time_limit``: seconds after which no evaluation starts.
        pop_size: breeding pool per island (default max(8, 2 x island workers)); ``migration_prob``: chance
            per island per evaluation that emigrants leave; ``pollinate`` sends copies.
        propagator: a name of ``core.strategies.STRATEGIES`` ("auto" by default: CMA-ES on floats, the GA and
            CMA-ES screened by TPE's density ratio on choices, else the two unscreened), a ``Propagator`` or a function.
            A grid search ("grid", "grid:N" for N values per numeric parameter, or a ``GridSearch``) is split
            among the workers and ends the search when every point is evaluated: it needs no budget.
        checkpoint: the per-rank journals' directory, resumed unless ``resume=False`` (old files to a backup).
        fingerprint: what identifies the objective (a JSON-able mapping or string, e.g. the dataset and the
            epochs), kept in meta.json; a resume with another fingerprint is refused, naming both values.
        on_error: "record" keeps failed evaluations as ``failed`` individuals; "raise" aborts every rank;
            ``callbacks``: ``Callback`` objects (on_start, on_result, on_end), or functions ``fn(individual)``.
        max_failures: stop once this many evaluations failed before any succeeded (a broken loss function,
            not an unlucky one; None: never); ``max_failure_rate``: stop once more than this share of the last 50
            evaluations of an island failed (None: never). The reason names the last error.
        pruner: early stopping of trainings that report with ``evohpo.report(step, value)``: "asha" (asynchronous
            successive halving; the default when ``max_steps`` is given), "median", "none" (the default without
            ``max_steps``: reports are recorded, nothing is pruned) or an object with ``rungs(max_steps)`` and
            ``keep(value, others)`` (``core.pruners``). A pruned training is a result of status "pruned".
        max_steps: the most steps (e.g. epochs) one training reports; the rungs of the pruner lie below it.
        step_budget: the search's budget in steps reported across all workers (shared, like ``max_evaluations``;
            needs ``max_steps``; instead of ``generations``/``max_evaluations``), a hard limit: no training starts
            once it is used up, and one that reaches the last step its worker has left is stopped there (pruned).
        ranks_per_worker: how many ranks evaluate each individual together (e.g. a DDP training over k GPUs): the
            ranks of ``comm`` form workers of k consecutive ranks of one node; each worker's first rank breeds,
            shares and writes the journal, and all k call ``loss_fn``, which finds the worker's communicator in
            ``evohpo.current().comm`` (``parallel.group``). Budgets, islands and checkpoints count workers.
        grace_period: seconds a running evaluation may finish after SIGTERM/SIGUSR1/SIGINT (None: no limit).
        initial: configurations to evaluate first, dealt to the workers (a list of dicts), or a finished
            search (its directory or ``evohpo.load(DIR)``) whose best that fit ``space`` are (``parallel.warmstart``).
        direction: "minimize" or "maximize" the returned value, called ``metric`` in results and log lines (by
            default the objective's own ``direction`` and ``metric`` attributes, else "minimize" and "loss");
            inside, the search minimizes ``Individual.loss``, minus the value when maximizing (``core.goal``).
    """
    space = Space(space)
    _check(loss_fn, generations, max_evaluations, time_limit, pop_size, top_n)
    _check_steps(max_steps, step_budget, generations, max_evaluations)
    _check_numbers(grace_period, progress_interval, fsync_interval, seed, checkpoint)
    pruning = make_pruner(pruner, max_steps)
    failures = FailureWatch(max_failures, max_failure_rate)
    goal = Goal.of(loss_fn, direction, metric)
    check_metric(goal.metric)
    hooks = Callbacks(callbacks)  # checked before anything is written

    with contextlib.ExitStack() as stack:
        signals = stack.enter_context(StopSignals(grace_period))  # from the start: a signal in start-up is not fatal
        workers = stack.enter_context(WorkerSplit(comm, ranks_per_worker))
        if workers.follower:  # one of a worker's other ranks: evaluates what its root sends, returns the result
            return workers.follow(goal.signed(loss_fn), signals)
        comm = workers.comm
        transport = as_transport(comm)
        rank, size = transport.rank, transport.size
        setup_logging(rank)
        stored = stored_meta(str(checkpoint), resume, transport) if checkpoint is not None else None
        layout = IslandLayout.make(size, _islands(islands, island_sizes, stored, size), island_sizes)
        policy = MigrationPolicy(make_topology(topology, layout.n_islands), migration_prob, emigrants,
                                 emigrant_selection, pollinate)
        propagator = _strategy(propagator, stored)
        _check_budget(propagator, generations, max_evaluations or step_budget, time_limit)  # (a resumed grid: none)
        evolver = _evolver(space, propagator, pop_size, layout, rank, size, seed)
        warm = configurations(initial, space, sum(pop_size or max(8, 2 * s) for s in layout.sizes))
        directory = plan = None
        if checkpoint is not None:
            meta = search_meta(space.describe(), list(layout.sizes), size, propagator, goal, fingerprint,
                               describe(pruning), max_steps, ranks_per_worker)
            directory, plan = open_checkpoint(str(checkpoint), meta, resume, transport, layout, fsync_interval)
            if plan is not None:
                apply_plan(plan, evolver, policy, seed)
        first = enqueue(warm, evolver, layout, rank, already_run(str(checkpoint), space) if warm and plan else set(),
                        search_total(generations, max_evaluations, size))
        reports = Reports(pruning, max_steps, goal, board_from_curves(pruning.rungs(max_steps), plan.curves)
                          if plan else None)
        limit, done = worker_limit(rank, size, generations, max_evaluations, plan, step_budget)
        try:
            worker = Worker(goal.signed(loss_fn), evolver, transport, layout, policy,
                            budget=limit, share_budget=generations is None, done=done,
                            requeued=[*(plan.requeued if plan else ()), *first], resumed=plan.total_done if plan else 0,
                            total_budget=search_total(generations, max_evaluations, size), time_limit=time_limit,
                            journal=directory.journal if directory else None, on_error=on_error, callbacks=hooks,
                            progress_interval=progress_interval, signals=signals,
                            checkpoint=None if checkpoint is None else str(checkpoint), goal=goal,
                            failures=failures, reports=reports, step_budget=step_budget is not None,
                            group=workers.group)
            result = _run(worker, hooks, top_n)
        finally:
            if directory is not None:
                directory.close()  # (the journal is closed by the run already, unless it raised); unlock
            if transport is not comm:  # ours (a Dup of the communicator), not one the caller handed in
                transport.free()
        workers.result = result  # (for the worker's other ranks)
    _log_done(result, checkpoint, rank)
    return result


def _strategy(propagator: Any, stored: dict[str, Any] | None) -> Any:
    """The strategy asked for; else the one of the search a resume continues (the GA for searches from before
    meta.json named it); else the default."""
    if propagator is not None:
        return propagator
    return stored.get("strategy", "ga") if stored is not None else DEFAULT


def _islands(islands: int | None, island_sizes: Any, stored: dict[str, Any] | None, size: int) -> int | None:
    """The islands asked for; else, resuming, as many as the search had (the number of ranks may have changed, and
    with it the default); else None: the default layout."""
    if islands is not None or island_sizes is not None or stored is None:
        return islands
    old = stored.get("islands")
    return len(old) if isinstance(old, list) and 1 <= len(old) <= size else None


def _evolver(space: Space, propagator: Any, pop_size: int | None, layout: IslandLayout, rank: int, size: int,
             seed: int) -> Evolver:
    """The evolver of worker ``rank``: its island's pool (default max(8, 2 x island workers)), its strategy,
    its own random stream."""
    island = layout.island_of(rank)
    pop_size = pop_size or max(8, 2 * layout.sizes[island])
    breed = make_propagator(propagator, space, pop_size, rank, size)
    breed.join(island, layout.workers(island))
    return Evolver(space, breed, pop_size, seed=np.random.SeedSequence([seed, rank]), name=str(rank), island=island,
                   rank=rank)


def _log_done(result: SearchResult, checkpoint: Any, rank: int) -> None:
    """Rank 0's line on what the search found."""
    if rank == 0 and result.best is not None:
        where = f"; journals in {checkpoint}" if checkpoint else ""
        if checkpoint and model_path(checkpoint, result.best.id).is_file():
            where += f"; its weights in {model_path(checkpoint, result.best.id)}"
        pruned = f", {result.n_pruned} pruned ({result.n_steps} steps reported)" if result.n_steps else ""
        log.info("done (%s): %d evaluations, %d failed%s; best %s %.6g with %s (id %s, island %d)%s",
                 result.reason, result.n_evaluations, result.n_failed, pruned, result.metric, result.best_value,
                 result.best.params, result.best.id, result.best.island, where)


def _check(loss_fn: Any, generations: Any, max_evaluations: Any, time_limit: Any, pop_size: Any,
           top_n: Any) -> None:
    """ValueError (TypeError for the loss) naming the argument and its value."""
    for name, value in (("generations", generations), ("max_evaluations", max_evaluations),
                        ("pop_size", pop_size), ("top_n", top_n)):
        _positive(name, value)
    _positive("time_limit", time_limit, float)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn={loss_fn!r} must be callable as loss_fn(params) -> float")


def _check_steps(max_steps: Any, step_budget: Any, generations: Any, max_evaluations: Any) -> None:
    """ValueError naming the argument for a bad ``max_steps`` or ``step_budget``, or a step budget beside an
    evaluation budget."""
    _positive("max_steps", max_steps)
    _positive("step_budget", step_budget)
    if step_budget is not None and max_steps is None:
        raise ValueError(f"step_budget={step_budget!r} needs max_steps (the most steps one training reports)")
    if step_budget is not None and (generations is not None or max_evaluations is not None):
        raise ValueError(f"step_budget={step_budget!r} is the search's budget in steps: give it instead of "
                         f"generations={generations!r} or max_evaluations={max_evaluations!r}")


def _check_numbers(grace_period: Any, progress_interval: Any, fsync_interval: Any, seed: Any,
                   checkpoint: Any = None) -> None:
    """ValueError naming the argument and its value for the timing arguments, the seed and the checkpoint."""
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise ValueError(f"checkpoint={checkpoint!r} must be a directory path (str or os.PathLike) or None")
    def real(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v

    if grace_period is not None and not (real(grace_period) and grace_period >= 0):
        raise ValueError(f"grace_period={grace_period!r} must be seconds >= 0, or None for no limit")
    for name, value in (("progress_interval", progress_interval), ("fsync_interval", fsync_interval)):
        if not (real(value) and value >= 0):
            raise ValueError(f"{name}={value!r} must be seconds >= 0")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} must be an integer >= 0")


def _check_budget(strategy: Any, generations: Any, max_evaluations: Any, time_limit: Any) -> None:
    """A budget is needed unless the strategy ends the search by itself (a grid search)."""
    if generations is None and max_evaluations is None and time_limit is None and not ends_by_itself(strategy):
        raise ValueError("give a budget: generations, max_evaluations or time_limit (all are None); only a grid "
                         "search (propagator='grid', 'grid:N' or a GridSearch) ends by itself")


def _run(worker: Worker, hooks: Callbacks, top_n: int) -> SearchResult:
    """Run the worker's loop and gather the result; the callbacks hear of the end either way."""
    try:
        worker.run()
        result = worker.result(top_n)
    except BaseException:
        hooks.on_end(None)
        raise
    hooks.on_end(result)
    return result
