"""Scenarios run under ``mpiexec -n N python -m mpi4py tests/mpi_scenarios.py NAME [JSON options]``.

Every rank runs ``evohpo.optimize``; rank 0 prints one JSON line (prefixed ``RESULT``) with what every rank
saw, and the tests in ``test_mpi.py`` assert on it (``contract``: the scenarios of ``contract.py``, checked by
``test_contract.py``).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

import evohpo
from evohpo.testing import functions as benchmarks

COMM = MPI.COMM_WORLD
RANK = COMM.Get_rank()


def sphere(sleep: tuple[float, float] | None = None, fail_every: int = 0, seed: int = 0, slow_rank0: float = 1.0):
    """A 3-D sphere loss; optionally sleeps a random time, raises or returns NaN on a share of calls."""
    problem = benchmarks.get("sphere", 3)
    rng = np.random.default_rng([seed, RANK])
    calls = {"n": 0, "raised": 0, "nan": 0, "inside": 0.0}

    def loss(params):
        t0 = time.perf_counter()
        calls["n"] += 1
        try:
            if sleep:
                time.sleep(rng.uniform(*sleep) * (slow_rank0 if RANK == 0 else 1.0))
            if fail_every and calls["n"] % fail_every == 0:
                if calls["n"] % (2 * fail_every) == 0:
                    calls["nan"] += 1
                    return math.nan
                calls["raised"] += 1
                raise RuntimeError(f"synthetic failure {calls['n']} on rank {RANK}")
            return problem.loss(params)
        finally:
            calls["inside"] += time.perf_counter() - t0

    return problem, loss, calls


def first_poll_after_a_pause(rounds: int = 20) -> None:
    """Every other rank sends rank 0 a message while it sleeps (making no MPI progress); rank 0 polls once.

    Prints how many messages each single poll returned: a result that arrived during an evaluation must be seen
    by the first poll after it, not one evaluation later.
    """
    from evohpo.parallel.transport import MPITransport, Tag

    transport = MPITransport(COMM)
    seen = []
    for _ in range(rounds):
        COMM.Barrier()
        if RANK == 0:
            time.sleep(0.05)
            seen.append(len(transport.poll()))
        else:
            transport.send(0, Tag.PROGRESS, (RANK, 0.0))
    transport.close()
    while not transport.finished():
        transport.poll()
    transport.free()
    if RANK == 0:
        print("RESULT " + json.dumps(seen), flush=True)


def contract_scenarios(names: list[str]) -> None:
    """The scenarios of ``tests/contract.py``, one after the other, each the same ``optimize`` call that
    ``contract.run_threads`` makes in threads; rank 0 prints one ``RESULT {name: [observation per rank]}`` line.
    The stop signal is real here: the signalled rank sends itself SIGUSR1 from inside its loss."""
    import contract

    from evohpo.core.migration import IslandLayout

    size, out = COMM.Get_size(), {}
    for name in names:
        sc = contract.SCENARIOS[name]
        kwargs = sc.kwargs(size)
        layout = IslandLayout.make(size, kwargs.get("islands", 1), kwargs.get("island_sizes"))
        loss, log = contract.make_loss(sc, RANK, size, lambda: os.kill(os.getpid(), signal.SIGUSR1))
        COMM.Barrier()
        t0 = time.time()
        result = evohpo.optimize(loss, sc.space_dict(), **kwargs)
        wall = time.time() - t0
        seen = COMM.gather(contract.observe(result, log, RANK, layout.island_of(RANK), t0, wall))
        if RANK == 0:
            out[name] = seen
    if RANK == 0:
        print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    name = sys.argv[1]
    if name == "first_poll":
        return first_poll_after_a_pause()
    if name == "contract":
        return contract_scenarios(json.loads(sys.argv[2])["scenarios"])
    if os.environ.get("EVOHPO_TEST_PIDDIR"):  # lets a test signal one chosen rank
        Path(os.environ["EVOHPO_TEST_PIDDIR"], f"rank-{RANK}.pid").write_text(str(os.getpid()))
    opts = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    problem, loss, calls = sphere(tuple(opts.pop("sleep")) if "sleep" in opts else None,
                                  opts.pop("fail_every", 0), opts.get("seed", 0), opts.pop("slow_rank0", 1.0))
    if name == "raise":
        def loss(params):  # noqa: F811 - rank 1 fails at once
            if RANK == 1:
                raise ValueError("deliberate failure on rank 1")
            time.sleep(0.01)
            return 0.0
    t0 = time.perf_counter()
    result = evohpo.optimize(loss, problem.space, progress_interval=0.2, **opts)
    wall = time.perf_counter() - t0
    island = [i for i in range(len(result.islands)) if RANK in _workers(opts, i)][0]
    mine = {
        "rank": RANK, "island": island, "wall": wall, "calls": calls, "reason": result.reason,
        "archive": sorted(i.id for i in result.archive), "active": sorted(result.active),
        "own": sorted(i.id for i in result.archive if i.rank == RANK),
        "failed_errors": [i.error for i in result.archive if i.status == "failed" and i.rank == RANK],
        "n_interrupted": result.n_interrupted,
        "messages": result.messages,
        "result": {"best": result.best.loss if result.best else None, "n_evaluations": result.n_evaluations,
                   "n_failed": result.n_failed, "islands": [i.loss if i else None for i in result.islands],
                   "top": [i.loss for i in result.top]},
    }
    everyone = COMM.gather(mine)
    if RANK == 0:
        print("RESULT " + json.dumps(everyone), flush=True)


def _workers(opts: dict, island: int) -> list[int]:
    from evohpo.core.migration import IslandLayout

    layout = IslandLayout.make(COMM.Get_size(), opts.get("islands", 1), opts.get("island_sizes"))
    return layout.workers(island)


if __name__ == "__main__":
    main()
