"""Under mpiexec: a maximizing search on every rank; rank 0 prints every rank's result values as RESULT <json>.

    mpiexec -n 2 python -m mpi4py tests/mpi_direction.py CHECKPOINT_DIR
"""

from __future__ import annotations

import json
import sys

from mpi4py import MPI

import evohpo
from evohpo import Choice, Float


def accuracy(p: dict) -> float:
    return 0.9 - (p["x"] - 0.3) ** 2 - (0.1 if p["act"] == "tanh" else 0.0)


result = evohpo.optimize(accuracy, {"x": Float(0.0, 1.0), "act": Choice(["relu", "tanh"])}, generations=20,
                         seed=5, checkpoint=sys.argv[1], direction="maximize", metric="val_acc",
                         progress_interval=0.0)
mine = {"direction": result.direction, "metric": result.metric, "best_value": result.best_value,
        "top_values": result.top_values}
everyone = MPI.COMM_WORLD.gather(mine)
if MPI.COMM_WORLD.rank == 0:
    print("RESULT " + json.dumps(everyone), flush=True)
