"""Pruning under MPI at 2 and 4 ranks: rung values reach the island's other ranks, every rank agrees on the
counts, the step budget holds, and a resumed search keeps every curve (tests/mpi_pruning.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evohpo.journal.restore import restore

HERE = Path(__file__).parent
MPIEXEC = Path(sys.executable).parent / "mpiexec"
R = 27
pytestmark = [pytest.mark.mpi, pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")]


def run(ranks: int, checkpoint: Path, budget: int) -> list[dict]:
    cmd = [str(MPIEXEC), "-n", str(ranks), sys.executable, "-m", "mpi4py", str(HERE / "mpi_pruning.py"),
           str(checkpoint), str(budget)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.parametrize("ranks", [2, 4])
def test_ranks_share_rung_values_and_the_step_budget(ranks: int, tmp_path: Path) -> None:
    seen = run(ranks, tmp_path / "ckpt", 1500)
    first = seen[0]
    for w in seen:  # the result is the same on every rank
        assert (w["n_steps"], w["n_pruned"], w["n_evaluations"], w["best"]) == \
               (first["n_steps"], first["n_pruned"], first["n_evaluations"], first["best"])
        assert w["reason"] == "budget reached"
        # its board holds the other ranks' trainings: more rung-1 values than it had run itself when it started
        assert any(count > started for started, count in enumerate(w["boards"]))
    assert first["n_steps"] == 1500  # the budget, exactly: the last trainings stop where it ends
    assert first["n_pruned"] > first["n_evaluations"] // 2
    ran = {ind_id: step for w in seen for ind_id, step in w["ran"]}
    assert sum(ran.values()) == first["n_steps"] and len(ran) == first["n_evaluations"]


def test_a_resumed_search_keeps_every_curve(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    first = run(4, ckpt, 800)[0]
    second = run(2, ckpt, 1600)[0]  # resumed on fewer ranks, with more budget
    assert first["n_steps"] == 800 and first["n_steps"] + second["n_steps"] == 1600
    loaded = restore(ckpt)
    assert loaded.n_evaluations == first["n_evaluations"] + second["n_evaluations"] and not loaded.unfinished
    for ind in loaded.individuals:
        assert [s for s, _ in loaded.curves[ind.id]] == list(range(1, ind.step + 1))
    assert sum(loaded.steps.values()) == first["n_steps"] + second["n_steps"]
