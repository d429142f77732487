"""run.py's command line: help with defaults, --propagator and --pop-size, per-dataset directories, the
fingerprint given to optimize, --fresh moving the TensorBoard runs, and a data error reported once under MPI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = Path(sys.executable).parent / "mpiexec"
sys.path.insert(0, str(ROOT))

import run  # noqa: E402
from evohpo.core.strategies import DEFAULT, STRATEGIES  # noqa: E402


def _probe(tmp_path: Path, *args: str) -> tuple[dict, subprocess.CompletedProcess]:
    """run.main(args) in a fresh process (cwd tmp_path) with optimize replaced; what optimize was given."""
    pytest.importorskip("lightning", reason="run.main builds the Lightning objective")
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "run_main_probe.py"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("OPTIMIZE ")]
    assert line, proc.stdout[-2000:]
    return json.loads(line[0][len("OPTIMIZE "):]), proc


def test_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run.parse_args(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "mpiexec -n 4 python -m mpi4py run.py" in text  # the description as written
    for default in ("(default: 10)", "(default: digits)", "(default: val_acc)", "(default: 0.1)", "(default: 0)",
                    "(default: 60.0)", "(default: checkpoints/run-DATASET)", "(default: runs/DATASET)",
                    f"(default: the library's, {DEFAULT})"):
        assert default in text, default
    assert "(default: None)" not in text and "(default: False)" not in text
    assert all(name in text for name in STRATEGIES)


def test_default_directories_depend_on_the_dataset() -> None:
    args = run.parse_args([])
    assert (args.checkpoint, args.log_dir) == ("checkpoints/run-digits", "runs/digits")
    args = run.parse_args(["--dataset", "mnist"])
    assert (args.checkpoint, args.log_dir) == ("checkpoints/run-mnist", "runs/mnist")
    args = run.parse_args(["--dataset", "mnist", "--checkpoint", "ck", "--log-dir", ""])
    assert (args.checkpoint, args.log_dir) == ("ck", "")


@pytest.mark.parametrize("name", ["ga", "cmaes", "random", "grid", "grid:3"])
def test_propagator_takes_a_strategy_name(name: str) -> None:
    assert run.parse_args(["--propagator", name]).propagator == name
    assert run.parse_args([]).propagator is None and run.parse_args([]).pop_size is None


@pytest.mark.parametrize(("argv", "message"), [
    (["--propagator", "simplex"], "--propagator: 'simplex' is not a strategy; choose from ga,"),
    (["--propagator", "grid:0"], "--propagator: propagator='grid:0'"),
    (["--pop-size", "0"], "--pop-size must be >= 1, got 0"),
    (["--pop-size", "x"], "--pop-size: invalid int value: 'x'"),
])
def test_bad_flags_name_the_flag_and_the_value(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run.parse_args(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_main_passes_the_flags_and_the_fingerprint_to_optimize(tmp_path: Path) -> None:
    seen, proc = _probe(tmp_path, "--propagator", "random", "--pop-size", "5", "--epochs", "2",
                        "--max-channels", "16", "--metric", "val_loss", "--generations", "3")
    assert (seen["propagator"], seen["pop_size"], seen["generations"]) == ("random", 5, 3)
    assert (seen["checkpoint"], seen["resume"], seen["trials"]) == ("checkpoints/run-digits", True,
                                                                    "runs/digits/trials")
    assert seen["fingerprint"] == {"dataset": "digits", "metric": "val_loss", "epochs": 2, "max_channels": 16}
    assert "channels" in seen["space"]


def test_fresh_moves_the_tensorboard_runs_to_a_backup(tmp_path: Path) -> None:
    logs = tmp_path / "runs" / "digits"
    (logs / "trials" / "trial-0-0").mkdir(parents=True)
    (logs / "trials" / "trial-0-0" / "events.out.tfevents.1").write_text("old")
    (logs / "search" / "island_0").mkdir(parents=True)
    seen, proc = _probe(tmp_path, "--fresh")
    assert seen["resume"] is False
    backups = list(logs.glob("backup-*"))
    assert len(backups) == 1, sorted(p.name for p in logs.iterdir())
    assert (backups[0] / "trials" / "trial-0-0" / "events.out.tfevents.1").read_text() == "old"
    assert (backups[0] / "search" / "island_0").is_dir()
    assert not (logs / "trials").exists() and not (logs / "search").exists()
    assert f"the earlier TensorBoard runs are now in {backups[0].relative_to(tmp_path)}" in proc.stdout
    _, proc = _probe(tmp_path, "--fresh")  # nothing left to move: no new backup, no line
    assert len(list(logs.glob("backup-*"))) == 1 and "TensorBoard runs are now in" not in proc.stdout


def test_fresh_moves_nothing_while_a_running_search_holds_the_checkpoint(tmp_path: Path) -> None:
    from evohpo.journal.directory import CheckpointInUse, DirectoryLock

    (tmp_path / "runs" / "trials").mkdir(parents=True)
    with DirectoryLock(tmp_path / "ckpt"), pytest.raises(CheckpointInUse, match="in use by another running"):
        run._backup_runs(str(tmp_path / "ckpt"), tmp_path / "runs")
    assert (tmp_path / "runs" / "trials").is_dir() and not list((tmp_path / "runs").glob("backup-*"))


@pytest.mark.mpi
@pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")
def test_a_data_error_is_printed_once_and_every_rank_exits_non_zero(tmp_path: Path) -> None:
    pytest.importorskip("torchvision")
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file where the data directory should be")
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, "-m", "mpi4py", str(ROOT / "run.py"), "--dataset", "mnist",
           "--data-dir", str(not_a_dir), "--checkpoint", str(tmp_path / "ckpt"), "--log-dir", ""]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert out.count("run.py: error loading dataset 'mnist' on rank 0 (and on 1 more):") == 1, out[-4000:]
    assert out.count("RuntimeError: dataset 'mnist' not found under") == 1, out[-6000:]  # one traceback
    assert "Traceback (most recent call last)" in out and "--data-dir" in out
    others = [ln for ln in out.splitlines() if "rank 1" in ln]
    assert len(others) <= 1, others  # rank 1 is quiet: at most the launcher's one-line abort notice
    assert not (tmp_path / "ckpt").exists()  # failed before the search touched the checkpoint


def test_pruner_step_budget_and_generations() -> None:
    args = run.parse_args([])
    assert (args.pruner, args.generations, args.step_budget, args.epochs) == ("none", 10, None, 5)
    args = run.parse_args(["--step-budget", "120", "--pruner", "median", "--epochs", "12"])
    assert (args.pruner, args.generations, args.step_budget, args.epochs) == ("median", None, 120, 12)
    assert run.parse_args(["--pruner", "none", "--generations", "3"]).generations == 3


@pytest.mark.parametrize(("argv", "message"), [
    (["--step-budget", "50", "--generations", "3"], "--step-budget 50 replaces --generations"),
    (["--step-budget", "0"], "--step-budget must be >= 1, got 0"),
    (["--pruner", "hyperband"], "--pruner: invalid choice: 'hyperband'"),
])
def test_bad_pruning_flags_are_refused(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run.parse_args(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


PROBE = """
import json, sys
from types import SimpleNamespace
sys.path.insert(0, {root!r})
import evohpo, run
seen = {{}}
def fake(objective, space, **kw):
    seen.update({{k: kw.get(k) for k in ("pruner", "max_steps", "step_budget", "generations", "checkpoint")}})
    best = SimpleNamespace(id="0-1", island=0, rank=0, params={{"lr": 0.01}})
    return SimpleNamespace(best=best, best_value=0.9, metric="val_acc", n_evaluations=3, n_failed=0, n_pruned=1,
                           resumed=0)
evohpo.optimize = fake
code = run.main(sys.argv[1:])
print("OPTIMIZE " + json.dumps(seen, sort_keys=True), flush=True)
raise SystemExit(code)
"""


def _probe_pruning(tmp_path: Path, *args: str) -> tuple[dict, str]:
    """run.main(args) in a fresh process with optimize replaced: the pruning arguments it got, and the output."""
    pytest.importorskip("lightning", reason="run.main builds the Lightning objective")
    proc = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT)), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("OPTIMIZE ")]
    return json.loads(line[0][len("OPTIMIZE "):]), proc.stdout


def test_main_passes_the_pruner_and_the_budget(tmp_path: Path) -> None:
    seen, out = _probe_pruning(tmp_path, "--epochs", "7", "--step-budget", "70", "--pruner", "median",
                               "--checkpoint", "ck", "--log-dir", "")
    assert seen == {"pruner": "median", "max_steps": 7, "step_budget": 70, "generations": None, "checkpoint": "ck"}
    assert "1 pruned" in out and "best model: not kept (no weights of trial 0-1" in out
    seen, out = _probe_pruning(tmp_path, "--checkpoint", "ck", "--log-dir", "", "--fresh")
    assert (seen["pruner"], seen["max_steps"], seen["step_budget"], seen["generations"]) == ("none", 5, None, 10)


def test_a_fresh_search_moves_the_kept_weights_with_the_journals(tmp_path: Path) -> None:
    import evohpo

    evohpo.optimize(lambda p: p["x"], {"x": (0.0, 1.0)}, max_evaluations=2, checkpoint=str(tmp_path))
    kept = tmp_path / "models" / "trial-0-1.pt"  # trial ids repeat in a new search: the old weights must go
    kept.parent.mkdir()
    kept.write_bytes(b"weights")
    evohpo.optimize(lambda p: p["x"], {"x": (0.0, 1.0)}, max_evaluations=2, checkpoint=str(tmp_path), resume=False)
    backups = list(tmp_path.glob("backup-*/models/trial-0-1.pt"))
    assert len(backups) == 1 and backups[0].read_bytes() == b"weights" and not kept.exists()


def test_the_best_model_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = SimpleNamespace(best=SimpleNamespace(id="1-2"))
    run._report_model(result, str(tmp_path))
    assert "best model: not kept (no weights of trial 1-2" in capsys.readouterr().out
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "trial-1-2.pt").write_bytes(b"weights")
    run._report_model(result, str(tmp_path))
    assert f"best model: {tmp_path / 'models' / 'trial-1-2.pt'}" in capsys.readouterr().out
    run._report_model(SimpleNamespace(best=None), str(tmp_path))
    assert capsys.readouterr().out == ""
