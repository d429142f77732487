"""Workers of several ranks under MPI (tests/mpi_group.py): 4 ranks = 2 workers x 2 and 6 ranks = 2 x 3, with losses
that all-reduce over the worker's communicator or a gloo process group, failures and different losses on a
non-root rank, pruning decided by the root, a stop signal in the middle of a training, and a restart with another
number of ranks per worker. A hang fails the test by its timeout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evohpo.journal.restore import restore

HERE = Path(__file__).parent
MPIEXEC = Path(sys.executable).parent / "mpiexec"
pytestmark = [pytest.mark.mpi, pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")]
SHAPES = [(4, 2), (6, 3)]


def run(scenario: str, ranks: int, k: int, checkpoint: Path, budget: int) -> dict:
    cmd = [str(MPIEXEC), "-n", str(ranks), sys.executable, "-m", "mpi4py", str(HERE / "mpi_group.py"), scenario,
           str(k), str(checkpoint), str(budget)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.split("RESULT ", 1)[1]
    return json.JSONDecoder().raw_decode(out)[0]


def workers(seen: dict, k: int) -> list[list[dict]]:
    """The ranks' records grouped by worker (world ranks in order)."""
    ranks = sorted(seen["ranks"], key=lambda r: r["world"])
    return [ranks[i:i + k] for i in range(0, len(ranks), k)]


def check_agreement(seen: dict, k: int, budget: int) -> None:
    """Every rank of a worker evaluated the same individuals in the same order, in a communicator of size k; the
    result is the same on every rank of the world."""
    first = seen["ranks"][0]
    for r in seen["ranks"]:
        assert (r["n_evaluations"], r["n_failed"], r["n_pruned"], r["best"]) == \
               (first["n_evaluations"], first["n_failed"], first["n_pruned"], first["best"])
    for w, group in enumerate(workers(seen, k)):
        ids = [c["id"] for c in group[0]["calls"]]
        assert ids, f"worker {w} evaluated nothing"
        for rank, r in enumerate(group):
            assert [c["id"] for c in r["calls"]] == ids
            assert {(c["worker"], c["rank"], c["size"]) for c in r["calls"]} == {(w, rank, k)}
    assert sum(len(g[0]["calls"]) for g in workers(seen, k)) == first["n_evaluations"] == budget


@pytest.mark.parametrize(("ranks", "k"), SHAPES)
def test_a_non_root_failure_or_a_different_loss_is_a_recorded_failure(ranks: int, k: int, tmp_path: Path) -> None:
    seen = run("mpi", ranks, k, tmp_path / "ckpt", 30)
    check_agreement(seen, k, 30)
    what = {c["id"]: c["what"] for r in seen["ranks"] if r["world"] % k == k - 1 for c in r["calls"]}
    failed = {f["id"]: f for f in seen["failed"]}
    assert set(failed) == {i for i, w in what.items() if w != "ok"} and failed
    for ind_id, f in failed.items():
        assert f["status"] == "failed"
        if what[ind_id] == "raised":
            assert f"rank {k - 1} of the worker failed first" in f["error"]
            assert f"ValueError: injected failure on rank {k - 1}" in f["error"]
        else:
            assert "returned different losses" in f["error"]
    assert seen["ranks"][0]["n_failed"] == len(failed)


@pytest.mark.parametrize(("ranks", "k"), SHAPES)
def test_ddp_with_gloo_survives_a_rank_failing_in_a_collective(ranks: int, k: int, tmp_path: Path) -> None:
    seen = run("torch", ranks, k, tmp_path / "ckpt", 40)
    check_agreement(seen, k, 40)
    failed = [f for f in seen["failed"] if f["status"] == "failed"]
    injected = [c for r in seen["ranks"] for c in r["calls"] if c["what"] == "raised"]
    assert len(failed) == len(injected) > 0
    for f in failed:  # the root waited in the all-reduce: it failed too, after the rank that raised
        assert f"rank {k - 1} of the worker failed first (then rank " in f["error"]
        assert "rank 0: RuntimeError" in f["error"].splitlines()[0]
        assert "injected failure" in f["error"].splitlines()[-1]
    for group in workers(seen, k):
        pruned = [[c["id"] for c in r["calls"] if c["what"] == "pruned"] for r in group]
        assert all(p == pruned[0] for p in pruned)  # the root decided, every rank stopped at the same step
        fails = sum(c["what"] == "raised" for c in group[-1]["calls"][:-1])  # (after the last call: no rebuild)
        for r in group:  # one setup per worker, one more after each failure broke the group; each well under 2 s
            assert len(r["setups"]) == 1 + fails
            assert max(r["setups"]) < 2.0
    assert seen["ranks"][0]["n_pruned"] > 0


@pytest.mark.parametrize("scenario", ["stop", "stop-mpi"])
def test_a_stop_signal_interrupts_every_rank_and_a_restart_with_another_k_reruns_it(scenario: str,
                                                                                      tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    seen = run(scenario, 4, 2, ckpt, 12)
    assert all("SIGTERM" in r["reason"] for r in seen["ranks"])
    last = {r["world"]: r["calls"][-1]["what"] for r in seen["ranks"]}
    assert last[0] == "EvaluationInterrupted"  # its grace period ran out
    stopped = [w for w in (0, 2) if last[w] == "EvaluationInterrupted"]  # (worker 1 may have been between two)
    for root in stopped:  # a collective broke (stop), or the root's grace period reached the follower (stop-mpi)
        assert last[root + 1] in (("EvaluationInterrupted", "RuntimeError") if scenario == "stop" else
                                  ("EvaluationInterrupted",))
    state = restore(ckpt)
    interrupted = {u["id"] for u in state.unfinished}
    assert len(interrupted) == len(stopped) and state.n_evaluations == seen["ranks"][0]["n_evaluations"]
    ranks, k = (6, 3) if scenario == "stop" else (6, 2)  # resumed as 2 workers of 3 ranks, or 3 workers of 2
    again = run(scenario, ranks, k, ckpt, 12)
    assert again["ranks"][0]["reason"] == "budget reached"
    rerun = {c["id"] for r in again["ranks"] for c in r["calls"]}
    assert interrupted <= rerun
    done = restore(ckpt)
    assert done.n_evaluations == 12 and not done.unfinished


@pytest.mark.parametrize(("ranks", "k"), SHAPES)
def test_a_users_lightning_trainer_becomes_ddp_over_the_worker(ranks: int, k: int, tmp_path: Path) -> None:
    seen = run("lightning", ranks, k, tmp_path / "ckpt", 30)
    check_agreement(seen, k, 30)
    finished = [c for r in seen["ranks"] for c in r["calls"] if c["what"] == "ok" and "world_size" in c]
    assert finished and all(c["world_size"] == k for c in finished)  # one DDP training of k processes
    injected = {c["id"] for r in seen["ranks"] for c in r["calls"] if c["what"] == "raised"}
    failed = {f["id"]: f for f in seen["failed"] if f["status"] == "failed"}
    assert set(failed) == injected and injected  # the root waited in DDP's all-reduce: failed, not hung
    for f in failed.values():
        assert f["error"].startswith(f"rank {k - 1} of the worker failed first")
        assert f["error"].endswith(f"ValueError: injected failure on rank {k - 1} of the worker")
    for group in workers(seen, k):
        pruned = [[c["id"] for c in r["calls"] if c["what"] == "pruned"] for r in group]
        assert all(p == pruned[0] for p in pruned)


def test_a_soak_of_ddp_individuals_with_injected_failures_never_hangs() -> None:
    """bench/ddp_soak.py --quick: 40 DDP individuals on 2 x 2 ranks, a quarter with failures injected on either rank
    (before the process group, in the middle of a training), different losses and NaN: every one is recorded as
    expected, nothing hangs, and each process group setup takes well under 2 s."""
    sys.path.insert(0, str(HERE.parent / "bench"))
    try:
        import ddp_soak
    finally:
        sys.path.pop(0)
    s = ddp_soak.summarize(ddp_soak.run(40, timeout=200))
    assert not s["hung"] and s["n"] == 40 and s["reason"] == "budget reached"
    assert all(good == n for n, good in s["rows"].values())
    assert sum(n for kind, (n, _) in s["rows"].items() if kind != "ok") > 0
    assert s["setup_max"] < 2.0
