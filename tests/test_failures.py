"""A search whose loss function is broken stops with its error instead of burning the budget."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import evohpo
from evohpo.core.individual import Individual
from evohpo.parallel.failures import FailureWatch

MPIEXEC = Path(sys.executable).parent / "mpiexec"
SPACE = {"x": (0.0, 1.0)}


def _ind(ok: bool, k: int = 0) -> Individual:
    return Individual(str(k), {"x": 0.1 * k}, 0.5 if ok else float("nan"), status="ok" if ok else "failed",
                      error=None if ok else f"Traceback...\nRuntimeError: CUDA out of memory {k}")


def _broken(p: dict) -> float:
    raise RuntimeError("no such file: data.npz")


def test_the_first_failures_stop_the_search_with_the_error() -> None:
    r = evohpo.optimize(_broken, SPACE, max_evaluations=200, progress_interval=0)
    assert r.n_evaluations == 10 and r.n_failed == 10
    assert "first 10 evaluations all failed" in r.reason and "RuntimeError: no such file: data.npz" in r.reason


def test_max_failures_sets_the_count_and_none_never_stops() -> None:
    assert evohpo.optimize(_broken, SPACE, max_evaluations=40, max_failures=3, progress_interval=0).n_evaluations == 3
    r = evohpo.optimize(_broken, SPACE, max_evaluations=25, max_failures=None, progress_interval=0)
    assert r.n_evaluations == 25 and r.reason == "budget reached"


def test_one_success_first_means_failures_later_are_bad_luck_not_a_broken_loss() -> None:
    watch = FailureWatch(max_failures=3)
    assert watch.add(_ind(True)) is None
    assert all(watch.add(_ind(False, k)) is None for k in range(20))


def test_the_rate_rule_looks_at_the_last_window_only() -> None:
    watch = FailureWatch(max_failures=None, max_failure_rate=0.5, window=10)
    reasons = [watch.add(_ind(k % 3 != 0, k)) for k in range(30)]  # a third fail: never above half
    assert not any(reasons)
    reasons = [watch.add(_ind(False, k)) for k in range(6)]
    # the window held 2 failures (24, 27): 3 more make half (not more), the 4th 6 of 10
    assert reasons[:3] == [None] * 3 and "6 of the last 10 evaluations failed" in reasons[3]
    assert "CUDA out of memory 3" in reasons[3]


@pytest.mark.parametrize("kw, name", [({"max_failures": 0}, "max_failures"), ({"max_failures": 2.5}, "max_failures"),
                                      ({"max_failure_rate": 1.5}, "max_failure_rate"),
                                      ({"max_failure_rate": True}, "max_failure_rate")])
def test_bad_arguments_name_themselves(kw, name) -> None:
    with pytest.raises(ValueError, match=name):
        evohpo.optimize(_broken, SPACE, max_evaluations=5, **kw)


@pytest.mark.mpi
@pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")
def test_every_rank_stops_when_the_islands_evaluations_all_fail(tmp_path) -> None:
    script = tmp_path / "broken.py"
    script.write_text(textwrap.dedent("""
        import time
        from mpi4py import MPI
        import evohpo
        def loss(p):
            time.sleep(0.005)
            raise ValueError("bad path")
        r = evohpo.optimize(loss, {"x": (0.0, 1.0)}, max_evaluations=400, progress_interval=0)
        if MPI.COMM_WORLD.Get_rank() == 0:
            print("DONE", r.n_evaluations, r.reason)
    """))
    proc = subprocess.run([str(MPIEXEC), "-n", "4", sys.executable, "-m", "mpi4py", str(script)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("DONE"))
    total = int(line.split()[1])
    # (each rank ends the evaluation it is in, and may start one more before the stop reaches it; not 400)
    assert 10 <= total <= 18 and "all failed" in line and "ValueError: bad path" in line
