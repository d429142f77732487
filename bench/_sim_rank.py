"""One rank of a real run for ``bench/sim_validate.py``: ``evohpo.optimize`` on the 5-D sphere, whose loss sleeps a
duration drawn exactly as ``evohpo.sim.simulate`` draws it (same ``Durations``, the rank's own
``np.random.default_rng([seed, rank, 7])``, one draw per evaluation, in order).

    mpiexec -n N python -m mpi4py bench/_sim_rank.py CONFIG_JSON OUT_JSON

Each rank times, on ``perf_counter`` (one clock for all ranks of a node): ``optimize`` from just before the call
(after a barrier) to its return, and every evaluation's sleep; with each evaluation's start and end it also notes
the main thread's CPU time (``thread_time``) and its time spent runnable but waiting for a core (the second field of
``/proc/thread-self/schedstat``, nanoseconds; 0 where the kernel has no schedstat). Rank 0 writes every rank's
record to OUT_JSON. With ``"calibrate": K`` in the configuration (one rank) it instead writes the optimizer's CPU
between two evaluations on ``COMM_SELF``, with sleeping and with instant evaluations, K runs each (``calibrate``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any


class RunQueue:
    """The time the opening thread has waited for a core (schedstat's second field), read in about a microsecond."""

    def __init__(self) -> None:
        try:
            self.fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self.fd = None

    def wait(self) -> float:
        """Seconds waited so far (0.0 without schedstat)."""
        if self.fd is None:
            return 0.0
        try:
            return int(os.pread(self.fd, 256, 0).split()[1]) * 1e-9
        except (OSError, IndexError, ValueError):
            return 0.0


def main(argv: list[str]) -> None:
    """Run one rank of the configuration in ``argv[0]``; rank 0 writes all records to ``argv[1]``."""
    import numpy as np
    from mpi4py import MPI

    from evohpo import optimize
    from evohpo.sim import Durations
    from evohpo.testing import functions

    cfg: dict[str, Any] = json.loads(argv[0])
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    fn = functions.get(cfg["problem"], cfg["dim"])
    durations = Durations(*cfg["durations"])
    options = dict(cfg["options"])

    # warm-up, untimed: the imports and first calls that optimize makes lazily (cmaes, numpy.linalg, ...)
    log = logging.getLogger("evohpo")
    log.disabled = True
    optimize(fn.loss, fn.space, comm=MPI.COMM_SELF, max_evaluations=cfg["warmup"], seed=cfg["seed"] + 1000,
             **{**options, "progress_interval": 1e9})
    log.disabled = False

    if cfg.get("calibrate"):
        calibrate(cfg, fn, durations, options, argv[1])
        return

    rng = np.random.default_rng([cfg["seed"], rank, 7])
    evals: list[tuple[float, ...]] = []  # (start, end, drawn, cpu start, cpu end, runq start, runq end)

    runq = RunQueue()

    def stamp() -> tuple[float, float, float]:
        """(wall, thread CPU, run-queue wait) in seconds, read in that order."""
        return time.perf_counter(), time.thread_time(), runq.wait()

    def loss(params: dict[str, Any]) -> float:
        seconds, fails = durations.draw(rng)
        q0, c0 = runq.wait(), time.thread_time()
        t0 = time.perf_counter()  # the sleep is timed alone: the other stamps fall in the gaps
        time.sleep(seconds)
        t1, c1, q1 = stamp()
        evals.append((t0, t1, seconds, c0, c1, q0, q1))
        if fails:
            raise RuntimeError(f"simulated failure after {seconds:.3g} s")
        return float(fn.loss(params))

    comm.Barrier()
    start, cpu0, runq0 = stamp()
    proc0 = time.process_time()
    result = optimize(loss, fn.space, max_evaluations=cfg["max_evaluations"], seed=cfg["seed"],
                      islands=cfg["islands"], **options)
    end, cpu1, runq1 = stamp()
    proc1 = time.process_time()
    record = {"rank": rank, "start": start, "end": end, "cpu": cpu1 - cpu0, "process_cpu": proc1 - proc0,
              "runq": runq1 - runq0, "start_stamp": [start, cpu0, runq0], "evals": evals,
              "reason": result.reason, "n_evaluations": result.n_evaluations}
    records = comm.gather(record, root=0)
    if rank == 0:
        out = {"size": size, "config": cfg, "ranks": records, "mpi": MPI.Get_library_version().splitlines()[0]}
        Path(argv[1]).write_text(json.dumps(out), encoding="utf-8")


def calibrate(cfg: dict[str, Any], fn: Any, durations: Any, options: dict[str, Any], out: str) -> None:
    """One process, no peers: the optimizer's CPU between two evaluations when they sleep the drawn durations
    (its caches go cold meanwhile) and when they return at once; written to ``out`` (milliseconds, medians)."""
    import statistics

    import numpy as np
    from mpi4py import MPI

    from evohpo import optimize

    log = logging.getLogger("evohpo")
    log.disabled = True
    found: dict[str, list[float]] = {"sleeping": [], "at_once": []}
    for k in range(cfg["calibrate"]):
        for mode in found:
            rng, stamps = np.random.default_rng([cfg["seed"], 0, 7]), []

            def loss(params: dict[str, Any], mode: str = mode, rng: Any = rng, stamps: list[float] = stamps) -> float:
                seconds, _ = durations.draw(rng)
                stamps.append(time.thread_time())
                if mode == "sleeping":
                    time.sleep(seconds)
                stamps.append(time.thread_time())
                return float(fn.loss(params))

            optimize(loss, fn.space, comm=MPI.COMM_SELF, max_evaluations=cfg["per_rank"], seed=cfg["seed"] + k,
                     **options)
            gaps = [stamps[i + 1] - stamps[i] for i in range(1, len(stamps) - 1, 2)]
            found[mode].append(1e3 * statistics.median(gaps))
    Path(out).write_text(json.dumps({k: statistics.median(v) for k, v in found.items()} | {"runs": found}),
                         encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
