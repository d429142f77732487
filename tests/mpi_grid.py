"""A grid search under ``mpiexec -n N python -m mpi4py tests/mpi_grid.py FORM [CHECKPOINT]`` without a budget.

FORM: "name" for ``propagator="grid:3"``, "object" for a ``GridSearch`` instance, "resume" for a search stopped
after 10 evaluations (in CHECKPOINT) and resumed without a budget. Rank 0 prints one JSON line (prefixed
``RESULT``): per rank, the keys of the configurations it evaluated (in both runs), its stop reason and the
number of evaluations of the whole (last) run; ``test_grid.py`` asserts on it.
"""

from __future__ import annotations

import json
import sys

from mpi4py import MPI

import evohpo
from evohpo.core.space import Space

SPACE = Space({"a": ("x", "y", "z"), "b": (0, 4), "c": (0.0, 1.0)})  # 27 points with 3 per numeric parameter


def main(form: str, checkpoint: str | None = None) -> None:
    comm = MPI.COMM_WORLD
    own: list[str] = []

    def loss(params: dict) -> float:
        own.append(json.dumps(SPACE.key(params)))
        return float(params["b"]) + params["c"]

    propagator = evohpo.grid_search(SPACE, points=3) if form == "object" else "grid:3"
    kw = {"comm": comm, "propagator": propagator, "seed": 4, "progress_interval": 1e9, "checkpoint": checkpoint}
    if form == "resume":
        first = evohpo.optimize(loss, SPACE, max_evaluations=10, **kw)
        assert first.n_evaluations == 10, first
    r = evohpo.optimize(loss, SPACE, **kw)
    seen = comm.gather({"rank": comm.rank, "own": own, "reason": r.reason, "n_evaluations": r.n_evaluations})
    if comm.rank == 0:
        print("RESULT " + json.dumps(seen), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
