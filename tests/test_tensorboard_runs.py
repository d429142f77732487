"""TensorBoard run directories: one per training attempt, named by trial id, never shared between ranks, and
moved to a backup by a fresh start (run.py --fresh)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from evohpo import load
from evohpo.core.context import EvalContext, evaluating
from evohpo.hpo.tensorboard import backup_runs, claim_run_dir

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = Path(sys.executable).parent / "mpiexec"


def test_a_run_name_taken_gets_the_next_attempt(tmp_path: Path) -> None:
    names = [claim_run_dir(tmp_path / "trials", "trial-3-7").name for _ in range(3)]
    assert names == ["trial-3-7", "trial-3-7.attempt-2", "trial-3-7.attempt-3"]
    assert claim_run_dir(tmp_path / "trials", "trial-3-8").name == "trial-3-8"
    assert all((tmp_path / "trials" / n).is_dir() for n in names)


@pytest.mark.parametrize("name", ["", "a/b", ".", ".."])
def test_a_run_name_must_be_one_directory(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match=f"run name={name!r}"):
        claim_run_dir(tmp_path, name)


def test_runs_claimed_at_once_are_never_shared(tmp_path: Path) -> None:
    start, claimed = threading.Barrier(8), []

    def claim() -> None:
        start.wait()
        claimed.extend(claim_run_dir(tmp_path, "trial-0-0") for _ in range(5))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == len(set(claimed)) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in claimed)


def test_backup_moves_the_runs_and_nothing_else(tmp_path: Path) -> None:
    assert backup_runs(tmp_path) is None and list(tmp_path.iterdir()) == []
    (tmp_path / "trials" / "trial-0-0").mkdir(parents=True)
    (tmp_path / "search" / "island_0").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("mine")
    first = backup_runs(tmp_path, stamp="20250101-120000")
    assert first == tmp_path / "backup-20250101-120000"
    assert (first / "trials" / "trial-0-0").is_dir() and (first / "search" / "island_0").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup-20250101-120000", "notes.txt"]
    (tmp_path / "trials").mkdir()
    assert backup_runs(tmp_path, stamp="20250101-120000") == tmp_path / "backup-20250101-120000-1"
    assert not (tmp_path / "trials").exists() and (first / "trials" / "trial-0-0").is_dir()


def _steps(run: Path) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run))
    acc.Reload()
    return [e.step for e in acc.Scalars("val_acc")]


def test_a_trial_run_again_gets_its_own_run_directory(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    pytest.importorskip("tensorboard")
    from evohpo.hpo.data import load_dataset
    from evohpo.hpo.model import DEFAULTS
    from evohpo.hpo.objective import LightningObjective

    params: dict[str, Any] = {**DEFAULTS, "conv_layers": 1, "channels": 8, "batch_size": 256}
    objective = LightningObjective(load_dataset("digits", max_train=256), epochs=2, patience=5, log_dir=tmp_path)
    ctx = EvalContext(id="3-7", rank=3, island=1, island_rank=0, generation=7)
    for _ in range(2):  # the same trial twice: re-run after a restart
        with evaluating(ctx):
            objective(params)
    objective(params)  # outside a search
    runs = sorted(p.name for p in tmp_path.iterdir())
    assert [r for r in runs if r.startswith("trial-")] == ["trial-3-7", "trial-3-7.attempt-2"]
    assert len([r for r in runs if r.startswith("local-")]) == 1
    for name in ("trial-3-7", "trial-3-7.attempt-2"):
        steps = _steps(tmp_path / name)
        assert len(steps) == 2 and len(set(steps)) == 2, (name, steps)  # one value per epoch, no step twice


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")
def test_run_py_one_run_per_training_and_fresh_moves_them(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    ckpt, logs = tmp_path / "ckpt", tmp_path / "runs"
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, "-m", "mpi4py", str(ROOT / "run.py"), "--generations", "2",
           "--epochs", "1", "--checkpoint", str(ckpt), "--log-dir", str(logs), "--max-channels", "8"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-4000:]
    ids = sorted(ind.id for ind in load(ckpt).individuals)
    assert len(ids) == 4 and sorted(p.name for p in (logs / "trials").iterdir()) == [f"trial-{i}" for i in ids]
    again = subprocess.run([*cmd, "--fresh"], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr[-4000:]
    (backup,) = logs.glob("backup-*")
    assert f"the earlier TensorBoard runs are now in {backup}" in again.stdout
    assert sorted(p.name for p in (backup / "trials").iterdir()) == [f"trial-{i}" for i in ids]
    assert (backup / "search").is_dir()
    new_ids = sorted(ind.id for ind in load(ckpt).individuals)
    assert sorted(p.name for p in (logs / "trials").iterdir()) == [f"trial-{i}" for i in new_ids]
    assert all(list(p.glob("events.out.tfevents.*")) for p in (logs / "trials").iterdir())
