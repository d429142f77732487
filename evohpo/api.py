"""``optimize``: build a worker for this rank, restore from a checkpoint, run the loop, gather the result."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .core.evolver import Evolver
from .core.guided import ModelGuided, guided_propagator
from .core.migration import IslandLayout, MigrationPolicy, topology_matrix
from .core.propagators import AdaptiveGA, Portfolio, Propagator, default_propagator, grid_search, random_search
from .core.space import Space
from .journal import checkpoint as ck
from .parallel.transport import as_transport
from .parallel.worker import Callback, LossFn, Result, StopSignals, Worker

log = logging.getLogger("evohpo")


STRATEGIES = ("ga", "plain-ga", "adaptive", "guided", "random", "grid")
GUIDED_POOL = 64  # individuals the model-guided propagator splits into good and the rest


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


def split(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` integers that differ by at most one."""
    base, extra = divmod(max(total, 0), parts)
    return [base + (i < extra) for i in range(parts)]


def make_propagator(propagator: str | Propagator | None, space: Space, pop_size: int, rank: int,
                    size: int) -> Propagator:
    """The strategy: "ga" (default), "plain-ga", "adaptive", "guided", "random", "grid" (split across ranks), or
    a propagator.

    "ga" is the GA with multi-scale mutation steps (``default_propagator``); "plain-ga" the same GA with one
    fixed step size, as in Propulate's operators. See the README's quality table for how they compare.
    "adaptive" picks between the GA and its adaptive-step variant by their recent success: more precise on
    smooth problems, worse on separable multimodal ones (schwefel, birastrigin), and 1.4x slower per step.
    """
    if propagator is None or propagator == "ga":
        return default_propagator(space, pop_size)
    if propagator == "plain-ga":
        return default_propagator(space, pop_size, sigma_min=None)
    if propagator == "guided":
        return guided_propagator(space, pop_size)
    if propagator == "adaptive":
        return Portfolio([default_propagator(space, pop_size), AdaptiveGA(space, pop_size)], decay=0.99)
    if propagator == "random":
        return random_search(space)
    if propagator == "grid":
        return grid_search(space, offset=rank, stride=size)
    if isinstance(propagator, str) or not callable(propagator):
        raise ValueError(f"propagator={propagator!r} must be one of {STRATEGIES} or a callable")
    return propagator


def optimize(loss_fn: LossFn, space: Mapping[str, Any], *, comm: Any = None, islands: int = 1,
             island_sizes: Sequence[int] | None = None, generations: int | None = None,
             max_evaluations: int | None = None, time_limit: float | None = None, pop_size: int | None = None,
             migration_prob: float = 0.1, topology: str | Sequence[Sequence[float]] = "complete",
             emigrants: int = 1, emigrant_selection: str = "best", pollinate: bool = False,
             propagator: str | Propagator | None = None, seed: int = 0, checkpoint: str | None = None,
             resume: bool = True, on_error: str = "record", callbacks: Sequence[Callback] = (),
             grace_period: float | None = 60.0, progress_interval: float = 5.0, top_n: int = 10,
             fsync_interval: float = 10.0) -> Result:
    """Minimize ``loss_fn(params) -> float`` over ``space`` on every rank of ``comm``; the result on all ranks.

    Args:
        comm: an MPI communicator (default COMM_WORLD; one process without mpirun works too) or a Transport.
        generations: evaluations per worker; ``max_evaluations``: in total; ``time_limit``: seconds of wall
            time after which no evaluation starts. At least one budget is needed.
        pop_size: breeding pool size per island (default max(8, 2 x island workers)).
        migration_prob: chance per island per evaluation that emigrants leave; ``pollinate`` sends copies.
        propagator: "ga" (default), "plain-ga", "adaptive", "guided", "random", "grid" or a propagator
            (``prop(parents, rng) -> offspring``).
        checkpoint: a directory for the per-rank journals; a search there is resumed unless ``resume=False``,
            which moves the old journals to a timestamped backup.
        on_error: "record" keeps failed evaluations as ``failed`` individuals; "raise" aborts every rank.
        grace_period: seconds a running evaluation may finish after SIGTERM/SIGUSR1 (None: no limit).
    """
    space = Space(space)
    for name, value in (("generations", generations), ("max_evaluations", max_evaluations),
                        ("pop_size", pop_size), ("top_n", top_n)):
        _positive(name, value)
    _positive("time_limit", time_limit, float)
    if generations is None and max_evaluations is None and time_limit is None:
        raise ValueError("give a budget: generations, max_evaluations or time_limit (all are None)")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn={loss_fn!r} must be callable as loss_fn(params) -> float")

    with StopSignals(grace_period) as signals:  # from the start: a signal during start-up is not fatal
        transport = as_transport(comm)
        rank, size = transport.rank, transport.size
        setup_logging(rank)
        layout = IslandLayout.make(size, islands, island_sizes)
        island = layout.island_of(rank)
        pop_size = pop_size or max(8, 2 * layout.sizes[island])
        policy = MigrationPolicy(topology_matrix(topology, layout.n_islands), migration_prob, emigrants,
                                 emigrant_selection, pollinate)
        prop = make_propagator(propagator, space, pop_size, rank, size)
        evolver = Evolver(space, prop, pop_size, seed=np.random.SeedSequence([seed, rank]), name=str(rank),
                          island=island, rank=rank, pool_size=GUIDED_POOL if isinstance(prop, ModelGuided) else None)

        journal, done, total_done, requeued, queued = None, 0, 0, [], Counter()
        if checkpoint is not None:
            journal, done, total_done, requeued, queued = _open_checkpoint(
                str(checkpoint), resume, fsync_interval, space, layout, transport, evolver, policy, seed)

        budgets = []
        if generations is not None:
            budgets.append(generations)
        if max_evaluations is not None:  # what is left, split so that each rank can re-run its unfinished ones
            left = max_evaluations - total_done - sum(queued.values())
            budgets.append(done + queued[rank] + split(left, size)[rank])
        total = max_evaluations if max_evaluations is not None else (generations * size if generations else None)
        worker = Worker(loss_fn, evolver, transport, layout, policy, budget=min(budgets) if budgets else None,
                        time_limit=time_limit, journal=journal, on_error=on_error, callbacks=callbacks,
                        progress_interval=progress_interval, total_budget=total, done=done, requeued=requeued,
                        checkpoint=None if checkpoint is None else str(checkpoint), resumed=total_done,
                        signals=signals, share_budget=generations is None)
        try:
            worker.run()
            result = worker.result(top_n)
        finally:
            worker.journal.close()  # (done by the run already, unless it raised): fsync, unlock the directory
            if transport is not comm:  # ours (a Dup of the communicator), not one the caller handed in
                transport.free()
        if rank == 0 and result.best is not None:
            where = f"; journals in {checkpoint}" if checkpoint else ""
            log.info("done (%s): %d evaluations, %d failed; best loss %.6g with %s (id %s, island %d)%s",
                     result.reason, result.n_evaluations, result.n_failed, result.best.loss, result.best.params,
                     result.best.id, result.best.island, where)
        return result


def _open_checkpoint(checkpoint: str, resume: bool, fsync_interval: float, space: Space, layout: IslandLayout,
                     transport: Any, evolver: Evolver, policy: MigrationPolicy,
                     seed: int) -> tuple[Any, int, int, list[dict[str, Any]], Counter[int]]:
    """Prepare (rank 0) or resume the checkpoint directory and open this rank's journal.

    Returns (journal, own done, total done, this rank's unfinished to run first, unfinished per rank).
    """
    rank, size = transport.rank, transport.size
    meta = {"format": ck.FORMAT, "space": space.describe(), "islands": list(layout.sizes), "ranks": size}
    outcome: Any = None
    lock = ck.DirectoryLock(checkpoint)
    if rank == 0:
        try:
            lock.acquire()  # before prepare: a running search's journals are neither read nor moved
            outcome = ck.prepare(checkpoint, meta, resume)
        except Exception as e:  # every rank raises it, not only rank 0
            outcome = e
            lock.release()
    try:
        return _resume_and_open(checkpoint, outcome, fsync_interval, transport, evolver, policy, layout, seed, lock)
    except BaseException:
        lock.release()  # a later search in this process must be able to take it
        raise


def _resume_and_open(checkpoint: str, outcome: Any, fsync_interval: float, transport: Any, evolver: Evolver,
                     policy: MigrationPolicy, layout: IslandLayout, seed: int,
                     lock: ck.DirectoryLock) -> tuple[Any, int, int, list[dict[str, Any]], Counter[int]]:
    """Every rank: learn rank 0's outcome, restore the journals when resuming, open this rank's journal."""
    rank = transport.rank
    done, total_done, requeued, queued = 0, 0, [], Counter()
    outcome = transport.allgather(outcome)[0]
    if isinstance(outcome, Exception):
        raise outcome
    if outcome == "resume":
        restored = ck.restore(checkpoint)
        done, total_done, requeued, queued = _apply_restore(restored, evolver, policy, layout, rank, seed)
        log.info("resumed %d evaluations from %s (this rank: %d done, %d unfinished to run first)",
                 total_done, checkpoint, done, len(requeued))
    transport.allgather(None)  # nobody writes before everyone has read the journals
    journal = ck.Journal(checkpoint, rank, fsync_interval=fsync_interval)
    journal.lock = lock if lock.held else None
    if outcome == "resume":
        journal.write({"ev": "resume", "resumed": total_done, "unfinished": len(requeued), "t": time.time()})
    return journal, done, total_done, requeued, queued


def _apply_restore(restored: Any, evolver: Evolver, policy: MigrationPolicy, layout: IslandLayout, rank: int,
                   seed: int) -> tuple[int, int, list[dict[str, Any]], Counter[int]]:
    """Fill this worker's island from the journals.

    Returns (own done, total done, this rank's unfinished to run first, how many unfinished each rank got).
    """
    island = layout.island_of(rank)
    for ind in restored.individuals:  # each lives on the island it last migrated to
        if ind.island == island:
            evolver.add(ind)
    for isl, ind in restored.copies:
        if isl == island:
            evolver.add(ind)
    for rec in restored.unfinished:  # in flight somewhere on the island: nobody breeds them again
        if rec["island"] % layout.n_islands == island:
            evolver.population.reserve(rec["params"])
    policy.hops.update(restored.hops)
    state = restored.states.get(rank)
    if state is not None:
        evolver.load_state_dict({"rng": state["rng"], "generation": state["gen"],
                                 **({"propagator": state["propagator"]} if "propagator" in state else {})})
    else:
        evolver.rng = np.random.default_rng(np.random.SeedSequence([seed, rank, restored.n_evaluations]))
    prefix = f"{rank}-"
    used = [int(i.id[len(prefix):]) for i in restored.individuals if i.id.startswith(prefix)]
    used += [int(u["id"][len(prefix):]) for u in restored.unfinished if u["id"].startswith(prefix)]
    evolver.generation = max([evolver.generation, *(g + 1 for g in used)])
    owners = []
    for k, rec in enumerate(restored.unfinished):  # re-run on its own rank, else by a worker of its island
        workers = layout.workers(rec["island"] % layout.n_islands)
        owners.append(rec["rank"] if rec["rank"] in workers else workers[k % len(workers)])
    mine = [rec for rec, owner in zip(restored.unfinished, owners) if owner == rank]
    return restored.evaluations.get(rank, 0), restored.n_evaluations, mine, Counter(owners)
