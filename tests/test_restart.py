"""Checkpoint-restart under MPI: SIGKILL at random moments, SIGTERM on one rank, grace period, resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from evohpo.journal.directory import CheckpointMismatch
from evohpo.journal.reader import read_records
from evohpo.journal.restore import restore

HERE = Path(__file__).parent
MPIEXEC = Path(sys.executable).parent / "mpiexec"
pytestmark = [pytest.mark.mpi, pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")]


def start(ranks: int, piddir: Path | None = None, **opts) -> subprocess.Popen:
    cmd = [str(MPIEXEC), "-n", str(ranks), sys.executable, "-m", "mpi4py", str(HERE / "mpi_scenarios.py"),
           "search", json.dumps(opts)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EVOHPO_TEST_PIDDIR": str(piddir or "")}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[list[dict], str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, err[-4000:]
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    return json.loads(line[0][len("RESULT "):]), err


def finished_ends(directory: Path) -> Counter:
    """How often each id has a non-interrupted end record across all journals."""
    ends: Counter = Counter()
    for rec in read_records(directory):
        if rec["ev"] == "end" and rec["status"] != "interrupted":
            ends[rec["id"]] += 1
    return ends


def ended(directory: Path) -> int:
    """End records written so far (a raw count: safe while writers append)."""
    return sum(p.read_bytes().count(b'"ev":"end"') for p in directory.glob("journal-r*.jsonl"))


def wait_for_ends(directory: Path, n: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while ended(directory) < n:
        if time.time() > deadline:
            raise AssertionError(f"fewer than {n} end records after {timeout} s")
        time.sleep(0.01)


def wait_for_starts(directory: Path, n: int, timeout: float = 60) -> None:
    """Until the journals hold ``n`` start records (evaluations begun)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sum(p.read_bytes().count(b'"ev":"start"') for p in directory.glob("journal-r*.jsonl")) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} start records after {timeout} s")


def test_sigkill_at_random_moments_loses_nothing_and_repeats_nothing(tmp_path):
    budget, ranks, rng = 1500, 3, random.Random(11)
    opts = dict(max_evaluations=budget, checkpoint=str(tmp_path), sleep=[0.002, 0.02], islands=1, seed=4)
    kills = 0
    for _ in range(4):
        proc = start(ranks, **opts)
        # kill at a random point of progress (not of time: start-up takes 1-3 s depending on load)
        wait_for_ends(tmp_path, ended(tmp_path) + rng.randint(20, 150))
        time.sleep(rng.uniform(0.0, 0.05))  # and at a random moment within an evaluation
        if proc.poll() is not None:
            break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills >= 2, "the search finished before it could be killed twice: raise the budget"
    killed_with = sum(finished_ends(tmp_path).values())
    assert 0 < killed_with < budget
    seen, err = finish(start(ranks, **opts))
    assert "resumed" in err
    ends = finished_ends(tmp_path)
    assert max(ends.values()) == 1, [i for i, n in ends.items() if n > 1]
    assert sum(ends.values()) == budget
    restored = restore(tmp_path)
    assert restored.n_evaluations == budget and restored.unfinished == []
    same: dict[str, list] = {}
    for ind in restored.individuals:
        same.setdefault(json.dumps(ind.params, sort_keys=True), []).append(ind)
    for twice in (sorted(v, key=lambda i: i.start) for v in same.values() if len(v) > 1):
        # Two workers can breed the same child at the same moment, before either hears of the other (a rare
        # race of asynchronous breeding, restarts or not). What a restart must never do is train again what
        # had finished: that second start would come long after the first end (a restart takes seconds).
        assert len(twice) == 2 and twice[1].start < twice[0].end + 0.5, f"trained again after it finished: {twice}"


def test_sigterm_on_one_rank_stops_all_cleanly_and_the_next_run_resumes(tmp_path):
    budget, ranks = 400, 4
    opts = dict(max_evaluations=budget, checkpoint=str(tmp_path), sleep=[0.005, 0.02], seed=8, islands=2,
                migration_prob=0.5)
    piddir = tmp_path / "pids"
    piddir.mkdir()
    proc = start(ranks, piddir=piddir, **opts)
    wait_for_starts(tmp_path, 30)
    os.kill(int((piddir / "rank-2.pid").read_text()), signal.SIGTERM)
    seen, _ = finish(proc)
    assert all("SIGTERM" in w["reason"] for w in seen)
    first = sum(finished_ends(tmp_path).values())
    assert 0 < first < budget
    seen, err = finish(start(ranks, **opts))
    assert f"resumed {first} evaluations" in err
    assert sum(finished_ends(tmp_path).values()) == budget
    assert max(finished_ends(tmp_path).values()) == 1


def signal_while_evaluating(tmp_path: Path, ranks: int, signalled: list[int], **opts) -> tuple[list[dict], float]:
    """Start a search, send SIGUSR1 to the ``signalled`` ranks once every rank began its first evaluation; what
    every rank saw, and when the signals went out."""
    piddir = tmp_path / "pids"
    piddir.mkdir()
    proc = start(ranks, piddir=piddir, **opts)
    wait_for_starts(tmp_path, ranks)
    t0 = time.time()
    for rank in signalled:
        os.kill(int((piddir / f"rank-{rank}.pid").read_text()), signal.SIGUSR1)
    return finish(proc)[0], t0


def test_grace_period_interrupts_a_long_evaluation_which_runs_first_after_restart(tmp_path):
    opts = dict(generations=3, checkpoint=str(tmp_path), sleep=[3.0, 3.0], seed=1, grace_period=0.3)
    seen, t0 = signal_while_evaluating(tmp_path, 2, [0, 1], **opts)
    assert time.time() - t0 < 2.5, "the grace period was not enforced"
    assert all(w["n_interrupted"] == 2 for w in seen)  # the result counts both ranks' interruptions
    restored = restore(tmp_path)
    assert restored.n_evaluations == 0 and len(restored.unfinished) == 2
    interrupted = {u["id"] for u in restored.unfinished}
    opts["sleep"] = [0.01, 0.01]
    finish(start(2, **opts))
    restored = restore(tmp_path)
    assert restored.n_evaluations == 6 and interrupted <= {i.id for i in restored.individuals}


def test_different_space_is_refused_and_fresh_keeps_a_backup(tmp_path):
    from evohpo import optimize

    optimize(lambda p: p["x"] ** 2, {"x": (-1.0, 1.0)}, generations=5, checkpoint=str(tmp_path))
    with pytest.raises(CheckpointMismatch, match="'y'"):
        optimize(lambda p: p["x"] ** 2, {"x": (-1.0, 1.0), "y": (0, 3)}, generations=5, checkpoint=str(tmp_path))
    r = optimize(lambda p: p["x"] ** 2, {"x": (-1.0, 1.0), "y": (0, 3)}, generations=5, checkpoint=str(tmp_path),
                 resume=False)
    assert r.n_evaluations == 5
    backups = list(tmp_path.glob("backup-*"))
    assert len(backups) == 1 and list(backups[0].glob("journal-r*.jsonl"))
    r = optimize(lambda p: p["x"] ** 2, {"x": (-1.0, 1.0), "y": (0, 3)}, generations=8, checkpoint=str(tmp_path))
    assert r.n_evaluations == 3  # resumed: 5 done, 3 more to reach 8 per worker
    assert restore(tmp_path).n_evaluations == 8


def test_resume_with_fewer_ranks_redistributes_and_meets_the_budget(tmp_path):
    budget = 600
    opts = dict(max_evaluations=budget, checkpoint=str(tmp_path), sleep=[0.01, 0.02], islands=2, seed=6,
                time_limit=1.0)
    finish(start(4, **opts))
    first = sum(finished_ends(tmp_path).values())
    assert 0 < first < budget
    opts.pop("time_limit")
    seen, err = finish(start(2, **opts), timeout=180)
    assert f"resumed {first} evaluations" in err
    ends = finished_ends(tmp_path)
    assert sum(ends.values()) == budget and max(ends.values()) == 1
    assert {w["island"] for w in seen} == {0, 1}
    for w in seen:  # each of the two workers holds its island's evaluations from the 4-rank run too
        assert any(i.split("-")[0] in ("2", "3") if w["island"] == 1 else i.split("-")[0] in ("0", "1")
                   for i in w["archive"])


def test_a_signal_to_one_rank_gives_every_rank_the_grace_period(tmp_path):
    """SIGUSR1 to one rank of four during 8 s evaluations, grace 0.5 s: the peers hear its STOP while they train
    (the stop listener) and interrupt their evaluations too, instead of training to the end."""
    opts = dict(generations=3, checkpoint=str(tmp_path), sleep=[8.0, 8.0], seed=2, grace_period=0.5)
    seen, t0 = signal_while_evaluating(tmp_path, 4, [1], **opts)
    assert time.time() - t0 < 5.0, "the peers trained to the end"  # 8 s without the listener
    assert all(w["n_interrupted"] == 4 for w in seen)
    assert all("SIGUSR1" in w["reason"] for w in seen)
    assert len(restore(tmp_path).unfinished) == 4
