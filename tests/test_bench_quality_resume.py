"""bench/quality.py --resume keeps results only while their table is unchanged (random search: no MPI, no peers)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from qualitybench.driver import Driver  # noqa: E402  (bench/quality.py's package)


def _table(best_mean: float) -> dict:
    rows = [{"params": {"a": a}, "val_error": [m, m, m], "mean": m} for a, m in enumerate([0.5, best_mean, 0.4])]
    return {"name": "tiny", "seeds": 3, "space": {"a": [0, 1, 2]}, "rows": rows}


def _run(tmp_path: Path, *extra: str) -> tuple[list[dict], str]:
    cmd = [sys.executable, str(ROOT / "bench" / "quality.py"), "--problems", f"table:{tmp_path / 'tiny.json'}@4",
           "--methods", "random", "--seeds", "2", "--json", str(tmp_path / "q.json"), "--out", str(tmp_path / "q.md"),
           *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((tmp_path / "q.json").read_text())["runs"], proc.stderr


def test_resume_drops_results_of_a_rebuilt_table(tmp_path: Path) -> None:
    table = tmp_path / "tiny.json"
    table.write_text(json.dumps(_table(0.1)))
    first, _ = _run(tmp_path)
    assert len(first) == 2 and all(r["status"] == "ok" and r["table_sha"] for r in first)

    kept, log = _run(tmp_path, "--resume")  # same table: nothing runs again
    assert kept == first and "0 results of since rebuilt" in log

    table.write_text(json.dumps(_table(0.3)))  # rebuilt: another best, so other regrets
    redone, log = _run(tmp_path, "--resume")
    assert "2 results of since rebuilt" in log
    assert {r["table_sha"] for r in redone}.isdisjoint({r["table_sha"] for r in first})
    # every lookup of a 4-lookup random search over 3 configurations finds the best: regret 0 either way,
    # but the incumbent's value is the new table's
    assert all(r["best"] == 0.3 for r in redone) and all(r["best"] == 0.1 for r in first)


def test_resume_runs_a_parallel_method_again_at_another_evaluation_cost(tmp_path: Path) -> None:
    (tmp_path / "tiny.json").write_text(json.dumps(_table(0.1)))
    pick = ("--methods", "evohpo", "--evohpo-strategies", "random", "--jobs", "1")
    first, _ = _run(tmp_path, *pick, "--eval-seconds", "0")
    assert len(first) == 2 and all(r["status"] == "ok" and r["eval_seconds"] == 0.0 for r in first)
    kept, log = _run(tmp_path, *pick, "--eval-seconds", "0", "--resume")
    assert kept == first and "; 0 results of other evohpo sources or another --eval-seconds" in log
    again, log = _run(tmp_path, *pick, "--resume")  # the default cost, 2 ms: measured again
    assert "; 2 results of other evohpo sources or another --eval-seconds" in log
    assert all(r["eval_seconds"] == 0.002 for r in again)
    assert "every evaluation sleeping 2 ms" in (tmp_path / "q.md").read_text()


def test_saves_from_many_threads_at_once_all_land_whole(tmp_path: Path) -> None:
    """Jobs that end at once each save the results file; none may fail or leave an older snapshot last."""
    out = tmp_path / "q.json"
    drv = Driver(argparse.Namespace(json=str(out)))
    errors: list[BaseException] = []

    def job(k: int) -> None:
        try:
            for j in range(20):
                with drv.lock:
                    drv.results[(f"p{k}", "m", j)] = {"problem": f"p{k}", "budget": 1, "method": "m", "seed": j}
                drv.save()
        except BaseException as e:  # noqa: BLE001 (the test reports what any thread raised)
            errors.append(e)

    threads = [threading.Thread(target=job, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(json.loads(out.read_text())["runs"]) == 8 * 20  # the last save holds every result
    assert [p.name for p in tmp_path.iterdir()] == ["q.json"]  # no temporary file left behind
