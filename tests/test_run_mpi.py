"""The main job end to end: run.py on 2 MPI ranks, 2 trainings each, on digits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from evohpo import load

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = Path(sys.executable).parent / "mpiexec"
pytestmark = [pytest.mark.mpi, pytest.mark.slow,
              pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")]
pytest.importorskip("lightning", reason="the main job needs the torch extra")


def test_run_py_two_ranks_two_generations(tmp_path):
    ckpt, logs = tmp_path / "ckpt", tmp_path / "runs"
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, "-m", "mpi4py", str(ROOT / "run.py"), "--generations", "2",
           "--epochs", "2", "--checkpoint", str(ckpt), "--log-dir", str(logs), "--max-channels", "8"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "best: val accuracy" in proc.stdout and f"journals: {ckpt}" in proc.stdout
    res = load(ckpt)
    assert res.counts["evaluations"] == 4 and res.counts["in_flight"] == 0
    best = res.best(1)[0]
    assert -1.0 <= best.loss < -0.3  # negative validation accuracy, better than a poor guess on 10 classes
    accuracy = float(proc.stdout.split("best: val accuracy ")[1].split()[0])
    assert accuracy == pytest.approx(-best.loss, abs=1e-4)
    assert (res.direction, res.metric) == ("maximize", "val_acc") and res.value(best) == -best.loss
    assert list((logs / "trials").rglob("events.out.tfevents.*")), "no TensorBoard run per training"


def test_run_py_trains_each_configuration_with_ddp_over_two_ranks(tmp_path, capsys):
    """run.py --ranks-per-worker 2 on 4 ranks: 2 workers, each configuration one DDP training of 2 processes (each
    its shard of the data); one TensorBoard run and one journal per worker; ASHA prunes from the root's reports."""
    ckpt, logs = tmp_path / "ckpt", tmp_path / "runs"
    cmd = [str(MPIEXEC), "-n", "4", sys.executable, "-m", "mpi4py", str(ROOT / "run.py"), "--generations", "3",
           "--epochs", "3", "--checkpoint", str(ckpt), "--log-dir", str(logs), "--max-channels", "8",
           "--ranks-per-worker", "2", "--pruner", "asha"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "on 4 ranks (cpu), 2 workers of 2" in proc.stdout
    res = load(ckpt)
    assert res.counts["evaluations"] == 6 and res.counts["in_flight"] == 0 and res.counts["failed"] == 0
    assert sorted(p.name for p in ckpt.glob("journal-*.jsonl")) == ["journal-r0000.jsonl", "journal-r0001.jsonl"]
    runs = sorted(p.name for p in (logs / "trials").iterdir())
    assert len(runs) == 6 and not any("attempt" in r for r in runs)  # the root logs; its peer does not
    assert -1.0 <= res.best(1)[0].loss < -0.3
    assert res.meta["ranks_per_worker"] == 2
    from evohpo.results.cli import main
    main(["summary", str(ckpt)])
    assert "workers: 2 of 2 ranks each" in capsys.readouterr().out
