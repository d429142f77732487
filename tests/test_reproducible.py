"""One seed, one search: every strategy repeats its sequence at one rank; at two ranks under MPI, what does not
depend on when results arrive (the random draws, the GA's random start) repeats too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import evohpo
from evohpo.core.space import Choice, Float, Int
from evohpo.core.strategies import STRATEGIES
from evohpo.parallel.transport import local_transport

HERE = Path(__file__).parent
MPIEXEC = Path(sys.executable).parent / "mpiexec"
SPACE = {"x": Float(-2.0, 2.0), "y": Float(1e-3, 1.0, log=True), "n": Int(1, 8), "c": Choice(["a", "b", "c"]),
         "o": Choice([1, 2, 4, 8])}


def loss(p: dict) -> float:
    return (p["x"] - 0.3) ** 2 + abs(p["y"] - 0.1) + 0.01 * p["n"] + (p["c"] != "b") + 0.001 * p["o"]


def sequence(strategy: str, seed: int) -> list[dict]:
    seen: list[dict] = []

    def record(params: dict) -> float:
        seen.append(dict(params))
        return loss(params)

    evohpo.optimize(record, SPACE, comm=local_transport(), max_evaluations=60, propagator=strategy, seed=seed,
                    progress_interval=100.0)
    return seen


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_one_rank_repeats_its_sequence_for_one_seed(strategy: str) -> None:
    first = sequence(strategy, 1)
    assert len(first) == 60 and sequence(strategy, 1) == first
    other = sequence(strategy, 2)
    if strategy == "grid":
        assert other == first  # the grid's order is fixed by design: no draw in it
    else:
        assert other != first


def launch(seed: int, **opts) -> list[list[dict]]:
    """Each rank's configurations in the order evaluated (``tests/mpi_dedup.py sequence``)."""
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, "-m", "mpi4py", str(HERE / "mpi_dedup.py"), "sequence",
           json.dumps({"space": "continuous", "seed": seed, "sleep": 0.03, **opts})]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(line[0][len("RESULT "):])


@pytest.mark.mpi
@pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")
@pytest.mark.parametrize("strategy,first", [("random", 8), ("ga", 4)])
def test_two_ranks_repeat_what_does_not_depend_on_arrival_order(strategy: str, first: int) -> None:
    """Random search draws the same points whatever arrived; the GA's first ``first`` children per rank are
    random too (its pool of 16 cannot be full yet): both repeat for one seed, and differ for another."""
    opts = {"propagator": strategy, "generations": 8, "pop_size": 16}
    a, b = launch(5, **opts), launch(5, **opts)
    assert [r[:first] for r in a] == [r[:first] for r in b]
    assert all(len(r) == 8 for r in a + b)
    assert launch(6, **opts)[0][:first] != a[0][:first]
