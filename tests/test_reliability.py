"""What a loss function can do to a search: exit, return a non-number; what a user can pass at the boundary;
Ctrl-C as a stop signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import evohpo
from evohpo.parallel.signals import StopSignals

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = Path(sys.executable).parent / "mpiexec"
SPACE = {"x": (0.0, 1.0)}


def _search(loss, **kw) -> evohpo.SearchResult:
    kw.setdefault("max_evaluations", 6)
    return evohpo.optimize(loss, SPACE, progress_interval=0, **kw)


@pytest.mark.parametrize("code", [None, 0, 3])
def test_sys_exit_in_the_loss_is_a_failed_evaluation_and_the_search_goes_on(code) -> None:
    calls = []

    def loss(p):
        calls.append(p)
        if len(calls) == 2:
            sys.exit(code) if code is not None else sys.exit()
        return p["x"]

    result = _search(loss)
    assert len(calls) == 6 and result.n_evaluations == 6 and result.n_failed == 1
    failed = [ind for ind in result.archive if ind.status == "failed"]
    assert f"sys.exit({code!r})" in failed[0].error


@pytest.mark.parametrize("value", ["0.5", True, (1.0,), None, np.array([0.5]), [0.5]])
def test_a_loss_that_is_not_a_real_number_is_a_failed_evaluation_naming_its_type(value) -> None:
    result = _search(lambda p: value, max_evaluations=2)
    assert result.n_failed == 2 and result.best is None
    err = next(ind.error for ind in result.archive if ind.status == "failed")
    assert f"of type {type(value).__name__}" in err


@pytest.mark.parametrize("value", [np.float32(0.25), np.int64(1), np.array(0.5), 2])
def test_numpy_scalars_and_ints_are_losses(value) -> None:
    result = _search(lambda p: value, max_evaluations=2)
    assert result.n_failed == 0 and result.best.loss == pytest.approx(float(value))


def test_a_maximized_string_is_rejected_too() -> None:
    result = _search(lambda p: "0.9", max_evaluations=2, direction="maximize")
    assert result.n_failed == 2


@pytest.mark.parametrize("kw, name", [({"grace_period": "x"}, "grace_period"), ({"grace_period": -1}, "grace_period"),
                                      ({"progress_interval": -1}, "progress_interval"), ({"seed": "a"}, "seed"),
                                      ({"seed": -2}, "seed"), ({"callbacks": [1]}, "callbacks"),
                                      ({"fsync_interval": float("nan")}, "fsync_interval")])
def test_bad_arguments_name_themselves_before_anything_runs(kw, name) -> None:
    calls = []
    with pytest.raises(ValueError, match=name):
        evohpo.optimize(lambda p: calls.append(p) or 0.0, SPACE, max_evaluations=2, **kw)
    assert calls == []


def test_sigint_is_a_stop_signal_and_a_second_one_interrupts() -> None:
    with StopSignals(None) as signals:
        os.kill(os.getpid(), signal.SIGINT)
        assert signals.reason == "received SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_during_a_search_stops_it_cleanly_and_it_resumes(tmp_path) -> None:
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, evohpo
        n = []
        def loss(p):
            n.append(1)
            if len(n) == 3:
                os.kill(os.getpid(), signal.SIGINT)
            return p["x"]
        r = evohpo.optimize(loss, {{"x": (0.0, 1.0)}}, max_evaluations=20, checkpoint={str(tmp_path / "ck")!r},
                            progress_interval=0)
        print("REASON", r.reason, r.n_evaluations)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "REASON received SIGINT 3" in proc.stdout and "KeyboardInterrupt" not in proc.stderr
    again = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert "REASON received SIGINT" in again.stdout  # stopped again at its third new evaluation...
    assert len(evohpo.load(tmp_path / "ck")) == 6  # ...keeping all 6 (a stopped search is not finished)


@pytest.mark.mpi
@pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")
def test_sys_exit_on_some_ranks_does_not_hang_the_job(tmp_path) -> None:
    script = tmp_path / "exit.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        import numpy as np
        from mpi4py import MPI
        import evohpo
        rng = np.random.default_rng(MPI.COMM_WORLD.Get_rank())
        def loss(p):
            time.sleep(0.005)
            if rng.random() < 0.2:
                sys.exit(0)
            return p["x"]
        r = evohpo.optimize(loss, {"x": (0.0, 1.0)}, max_evaluations=60, progress_interval=0)
        if MPI.COMM_WORLD.Get_rank() == 0:
            print("DONE", r.n_evaluations, r.n_failed)
    """))
    proc = subprocess.run([str(MPIEXEC), "-n", "4", sys.executable, "-m", "mpi4py", str(script)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith("DONE")]
    assert done and int(done[0][1]) == 60 and 0 < int(done[0][2]) < 60
