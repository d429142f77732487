"""A pruned search under ``mpiexec -n N python -m mpi4py tests/mpi_pruning.py CHECKPOINT [STEP_BUDGET]``.

Every rank trains curves of a zero-cost "training" (uneven epoch times: 0-2 ms per step), reporting each step;
the search prunes with ASHA under a step budget. Rank 0 prints one JSON line (prefixed ``RESULT``): per rank, how
many rung-1 values its board held as each of its trainings started, the statuses and steps of what it ran, and the
result's counts; ``test_reports_mpi.py`` asserts on it.
"""

from __future__ import annotations

import json
import math
import sys
import time

from mpi4py import MPI

import evohpo

R = 27


def main(checkpoint: str, step_budget: str = "1500") -> None:
    comm = MPI.COMM_WORLD
    boards: list[int] = []
    ran: list[tuple[str, int]] = []

    def loss(params: dict) -> float:
        reporter = evohpo.current().reporter
        boards.append(len(reporter.reports.board.values(1)))
        x = params["x"]
        value = math.inf
        try:
            for step in range(1, R + 1):
                time.sleep(0.002 * ((comm.rank + step) % 2))  # uneven epoch times across ranks
                value = (x - 0.3) ** 2 + 1.0 / step
                evohpo.report(step, value)
        finally:
            ran.append((evohpo.current().id, reporter.last_step))
        return value

    r = evohpo.optimize(loss, {"x": (0.0, 1.0)}, comm=comm, max_steps=R, step_budget=int(step_budget), seed=3,
                        checkpoint=checkpoint, progress_interval=1e9)
    seen = comm.gather({"rank": comm.rank, "boards": boards, "ran": ran, "n_steps": r.n_steps,
                        "n_pruned": r.n_pruned, "n_evaluations": r.n_evaluations, "reason": r.reason,
                        "best": r.best_value})
    if comm.rank == 0:
        print("RESULT " + json.dumps(seen), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
