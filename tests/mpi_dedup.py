"""Scenarios for duplicates and reproducibility, run under ``mpiexec -n N python -m mpi4py tests/mpi_dedup.py
NAME [JSON options]``.

``dedup``: every rank runs ``evohpo.optimize`` on one of the small discrete ``SPACES``, records every configuration
its loss was called with, and rank 0 prints ``RESULT {"evaluations", "distinct", "reasons"}``.
``sequence``: the same with a fixed evaluation time, and rank 0 prints ``RESULT [[params of rank 0 in order], ...]``
(two runs with one seed are compared by ``test_reproducible.py``).
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np
from mpi4py import MPI

import evohpo
from evohpo import Choice, Float, Int
from evohpo.core.migration import IslandLayout

COMM = MPI.COMM_WORLD
RANK = COMM.Get_rank()

SPACES = {
    "s15": {"a": Choice(["x", "y", "z"]), "b": Choice([1, 2, 3, 4, 5])},
    "s27": {"a": Int(0, 2), "b": Int(0, 2), "c": Choice(["p", "q", "r"])},
    "continuous": {"x": Float(-2.0, 4.0), "y": Float(0.01, 10.0, log=True), "n": Int(1, 8)},
    "mixed-float": {"lr": Float(1e-4, 1e-1, log=True), "layers": Int(1, 4), "w": Choice([16, 32, 64, 128]),
                    "act": Choice(["relu", "tanh", "gelu"])},
    "mixed": {"a": Int(0, 9), "b": Int(0, 9), "w": Choice([16, 32, 64, 128]), "act": Choice(["relu", "tanh", "gelu"])},
}


def loss_of(params: dict) -> float:
    """A smooth loss over the discrete spaces above, lowest at one configuration."""
    ints = [v for v in params.values() if isinstance(v, int)]
    floats = [v for v in params.values() if isinstance(v, float)]
    words = [v for v in params.values() if isinstance(v, str)]
    return (sum((v - 2.0) ** 2 for v in ints) + sum(w not in ("y", "q", "gelu") for w in words)
            + sum((math.log10(abs(v) + 1e-9) + 2.0) ** 2 for v in floats)) / 10.0


def main() -> None:
    name = sys.argv[1]
    opts = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    space = SPACES[opts.pop("space", "s15")]
    sleep = opts.pop("sleep", [0.002, 0.01])
    rng = np.random.default_rng([opts.get("seed", 0), RANK, 99])
    calls: list[dict] = []

    def loss(params: dict) -> float:
        calls.append(dict(params))
        time.sleep(float(rng.uniform(*sleep)) if isinstance(sleep, list) else float(sleep))
        return loss_of(params)

    COMM.Barrier()
    result = evohpo.optimize(loss, space, progress_interval=100.0, **opts)
    everyone = COMM.gather({"calls": calls, "reason": result.reason})
    if RANK != 0:
        return
    if name == "sequence":
        print("RESULT " + json.dumps([w["calls"] for w in everyone]), flush=True)
        return
    keys = [tuple(c[k] for k in space) for w in everyone for c in w["calls"]]
    layout = IslandLayout.make(COMM.Get_size(), opts.get("islands", 1))
    per_island = [{tuple(c[k] for k in space) for r in layout.workers(i) for c in everyone[r]["calls"]}
                  for i in range(layout.n_islands)]
    print("RESULT " + json.dumps({"evaluations": len(keys), "distinct": len(set(keys)),
                                  "within": len(keys) - sum(map(len, per_island)),  # repeats on one island
                                  "reasons": [w["reason"] for w in everyone]}), flush=True)


if __name__ == "__main__":
    main()
