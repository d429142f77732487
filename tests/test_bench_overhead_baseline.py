"""bench/overhead.py --baseline: the evohpo snapshot (working tree or a commit, subpackages included), the test
functions from either layout, and the report's baseline columns from made-up runs. No MPI."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import overhead  # noqa: E402  (bench/overhead.py)
from _common import snapshot_evohpo, worker_env  # noqa: E402

OLD = "8e15be0"  # before the test functions moved from evohpo/benchmarks.py to evohpo/testing/functions.py


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def _sources(tree: Path) -> set[str]:
    return {str(f.relative_to(tree)) for f in tree.rglob("*.py") if "__pycache__" not in f.parts}


needs_old = pytest.mark.skipif(_git("cat-file", "-e", f"{OLD}^{{commit}}").returncode != 0,
                               reason=f"commit {OLD} not in this clone")


def test_snapshot_of_the_working_tree_copies_every_subpackage(tmp_path: Path) -> None:
    sha = snapshot_evohpo(tmp_path / "a", None)
    assert _sources(tmp_path / "a" / "evohpo") == _sources(ROOT / "evohpo")
    assert (tmp_path / "a" / "evohpo" / "testing" / "functions.py").is_file()
    assert snapshot_evohpo(tmp_path / "b", None) == sha
    if not _git("status", "--porcelain", "--", "evohpo").stdout.strip():  # clean: the same as HEAD's archive
        assert snapshot_evohpo(tmp_path / "head", "HEAD") == sha


@needs_old
def test_snapshot_of_a_commit_and_its_test_functions(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    assert snapshot_evohpo(old, OLD) != snapshot_evohpo(new, None)
    assert (old / "evohpo" / "benchmarks.py").is_file() and not (old / "evohpo" / "testing").exists()
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); from _common import evohpo_functions\n"
            "import evohpo; f = evohpo_functions()\n"
            "print(evohpo.__file__, f.__file__, f.__name__, f.get('sphere', 5).minimum)")
    for tree, name in ((old, "evohpo.benchmarks"), (new, "evohpo.testing.functions")):
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=worker_env(tree), capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        package, functions, module, minimum = out.stdout.split()
        assert Path(package).is_relative_to(tree) and Path(functions).is_relative_to(tree)
        assert module == name and float(minimum) == 0.0


def _run(side: str, rate: float, ratio: float = 1.1, idle: float = 0.02, **kw) -> overhead.Run:
    wall, ranks = 1.0, 2
    per_rank = [{"wall": wall, "n": int(rate * wall / ranks), "inside": wall * (1 - idle), "first": 1e-4,
                 "last": 1e-4 * ratio, "span": wall, "ratio": ratio, "ratio_median": ratio} for _ in range(ranks)]
    return overhead.Run(side, ranks, 200, per_rank=per_rank, **kw)


def _report(with_baseline: bool) -> str:
    base = (lambda rate, **kw: _run("baseline", rate, **kw)) if with_baseline else (lambda rate, **kw: None)
    results = {(2, 200): overhead.Row(_run("evohpo", 4000), _run("propulate", 1000), base(2000, ratio=1.5))}
    idle = {2: overhead.Row(_run("evohpo", 40, task="sleep"), _run("propulate", 40, task="sleep"),
                            base(40, idle=0.05, task="sleep"))}
    pairs = [(_run("evohpo", 4000), _run("evohpo", 3600, checkpoint=True))]
    base_pairs = [(_run("baseline", 2000), _run("baseline", 1000, checkpoint=True))] if with_baseline else None
    ckpt = overhead.Checkpoint(pairs, results[(2, 200)].pro, None, base_pairs)
    current = overhead.Sources("working tree", ROOT, "abc")
    baseline = overhead.Sources(OLD, ROOT, "def") if with_baseline else None
    cfg = {"idle_evals": 30, "extra": [(2, 200)]}
    return overhead.report(argparse.Namespace(quick=True), cfg, {200: [2]}, results, idle, ckpt, 1.0, (0.0,),
                           Path(sys.executable), None, current, baseline)


def test_report_shows_the_baseline_beside_the_current_runs() -> None:
    md = _report(True)
    assert f"Baseline: evohpo at {OLD}, sources sha256 def" in md
    assert "| evohpo evals/s | baseline evals/s | current/baseline | Propulate evals/s |" in md
    assert "| 2 | 200 | 4,000 | 2,000 | 2.00x | 1,000 | 4.0x | 1.10 / 1.10 | 1.50 / 1.50 | 1.10 / 1.10 |" in md
    assert "| evohpo idle | baseline idle | Propulate idle |" in md and "| 5.0% (5.0% + 0.0%) |" in md
    assert "| 4,000 | 3,600 | 11.1% | 2,000 | 1,000 | 100.0% | 1,000 | - |" in md
    assert "## Current vs baseline" in md and "geometric mean 2.00x over 1 settings" in md
    assert "| baseline | 2 x 200 | zero + checkpoint |" in md


def test_report_without_a_baseline_has_no_baseline_columns() -> None:
    md = _report(False)
    assert "baseline" not in md.lower()
    assert "| 2 | 200 | 4,000 | 1,000 | 4.0x | 1.10 / 1.10 | 1.10 / 1.10 |" in md
    assert "| 2 x 200 | 4,000 | 3,600 | 11.1% | 1,000 | - |" in md
