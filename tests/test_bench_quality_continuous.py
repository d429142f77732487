"""bench/quality.py's rotated / ill-conditioned task group (``continuous2``), its serial peers (IPOP-CMA-ES from the
cmaes package, Optuna's CmaEsSampler), ``--cap``, ``--reuse`` and the report's comparisons. No MPI, no peers' venv:
the cmaes worker runs in-process (cmaes is one of evohpo's dependencies)."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from qualitybench import driver, methods, problems, report  # noqa: E402  (bench/quality.py's package)
from qualitybench import tasks as quality_tasks  # noqa: E402
from qualitybench.tasks import Task  # noqa: E402

BBOB = ("ellipsoid", "rot-ellipsoid", "discus", "bent-cigar", "sharp-ridge", "diff-powers", "rot-rastrigin",
        "schaffer-f7")


def test_continuous2_group() -> None:
    got = quality_tasks.select_tasks("continuous2", False)
    assert [t.id for t in got] == [f"{n}-5d@1000" for n in BBOB] + [f"{n}-20d@2000" for n in BBOB]
    assert [t.id for t in quality_tasks.select_tasks("rot-*-5d", False)] == ["rot-ellipsoid-5d@1000",
                                                                              "rot-rastrigin-5d@1000"]
    assert [t.id for t in quality_tasks.select_tasks("schaffer-f7-20d@400", False)] == ["schaffer-f7-20d@400"]
    # not in the default full run (Optuna's serial samplers would take minutes per seed there)
    assert not {t.key for t in quality_tasks.default_tasks(False)} & {t.key for t in got}


@pytest.mark.parametrize("key", ["rot-ellipsoid-5d", "schaffer-f7-20d", "bent-cigar-5d"])
def test_continuous2_problems(key: str) -> None:
    p = problems.make_problem(key)
    dim = int(key.rsplit("-", 1)[1].rstrip("d"))
    assert p.space == {f"x{i}": ("float", -5.0, 5.0, False) for i in range(dim)} and p.minimum == 0.0
    assert p.loss({f"x{i}": 0.0 for i in range(dim)}) > 0.0


def _space_problem(space: dict) -> problems.Problem:
    return problems.Problem("t", space, lambda p: 0.0, 0.0)


def test_unit_decoder() -> None:
    dec = methods.unit_decoder(_space_problem({
        "a": ("float", -2.0, 2.0, False), "lr": ("float", 1e-4, 1.0, True), "n": ("int", 1, 4),
        "act": ("choice", ("relu", "tanh", "gelu")), "b": ("choice", (16, 32))}))
    assert dec([0.0, 0.0, 0.0, 0.0, 0.0]) == {"a": -2.0, "lr": pytest.approx(1e-4), "n": 1, "act": "relu", "b": 16}
    assert dec([1.0, 1.0, 1.0, 1.0, 1.0]) == {"a": 2.0, "lr": pytest.approx(1.0), "n": 4, "act": "gelu", "b": 32}
    mid = dec([0.5, 0.5, 0.5, 0.5, 0.49])
    assert mid["a"] == 0.0 and mid["lr"] == pytest.approx(1e-2) and mid["n"] == 3 and mid["act"] == "tanh"
    assert mid["b"] == 16
    assert dec([-0.3, 1.7, 0.26, 0.34, 0.51]) == {"a": -2.0, "lr": pytest.approx(1.0), "n": 2, "act": "tanh",
                                                  "b": 32}  # clipped into the cube


def _worker(capsys: pytest.CaptureFixture, worker: str, problem: str, budget: int, seeds: str) -> list[dict]:
    args = argparse.Namespace(worker=worker, problem=problem, budget=budget, seed_list=seeds)
    methods.worker(args)
    out = capsys.readouterr().out.splitlines()
    return [json.loads(line[len(methods.MARK):]) for line in out if line.startswith(methods.MARK)]


def test_cmaes_ipop_exact_budget_seeded_and_better_than_random(capsys: pytest.CaptureFixture) -> None:
    a = _worker(capsys, "cmaes-ipop", "rot-ellipsoid-5d", 600, "0,1")
    b = _worker(capsys, "cmaes-ipop", "rot-ellipsoid-5d", 600, "0,1")
    assert [r["seed"] for r in a] == [0, 1] and all(r["n"] == 600 for r in a)
    assert [(r["best"], r["best_params"]) for r in a] == [(r["best"], r["best_params"]) for r in b]
    assert a[0]["best"] != a[1]["best"]
    p = problems.make_problem("rot-ellipsoid-5d")
    rnd = [methods.random_search(p, 600, s)["best"] for s in (0, 1)]
    assert max(r["best"] for r in a) * 100 < min(rnd)


def test_cmaes_ipop_restarts_double_the_population(capsys: pytest.CaptureFixture) -> None:
    """Converged on 2-D sphere, CMA-ES stops and restarts with twice the population (default 4 + 3 ln 2 = 6), still
    using exactly the budget; on a table too (choices by level)."""
    (rec,) = _worker(capsys, "cmaes-ipop", "sphere-2d", 2000, "0")
    assert rec["n"] == 2000 and rec["restarts"] >= 2 and rec["popsize"] == 6 * 2 ** rec["restarts"]
    assert rec["best"] < 1e-12
    (rec,) = _worker(capsys, "cmaes-ipop", "table:tree_digits", 2000, "0")
    assert rec["n"] == 2000 and rec["restarts"] >= 1
    assert set(rec["best_params"]) == set(problems.make_problem("table:tree_digits").space)


def test_optuna_cmaes_restart_keyword() -> None:
    assert methods.optuna_cmaes_kwargs("3.6.1") == {"restart_strategy": "ipop"}
    assert methods.optuna_cmaes_kwargs("4.3.0") == {"restart_strategy": "ipop"}
    assert methods.optuna_cmaes_kwargs("4.4.0") == {} == methods.optuna_cmaes_kwargs("5.0.0")
    assert methods.optuna_cmaes_kwargs("?") == {}


def test_caps() -> None:
    ms = ["evohpo:ga", "evohpo:cmaes", "optuna", "optuna-cmaes", "random"]
    caps = driver.parse_caps(["optuna-cmaes=5@*-5d|sphere-*", "optuna=@table*", "evohpo=3"], ms)
    assert caps["optuna-cmaes"] == (5, ["*-5d", "sphere-*"]) and caps["optuna"] == (None, ["table*"])
    assert caps["evohpo:ga"] == caps["evohpo:cmaes"] == (3, [])
    t5, t20, tab = Task("discus-5d", 1000), Task("discus-20d", 2000), Task("table1:knn_digits", 100)
    assert not driver.capped(caps, "optuna-cmaes", t5, 4) and driver.capped(caps, "optuna-cmaes", t5, 5)
    assert driver.capped(caps, "optuna-cmaes", t20, 0)
    assert not driver.capped(caps, "optuna", tab, 9) and driver.capped(caps, "optuna", t5, 0)
    assert not driver.capped(caps, "random", t20, 99) and driver.capped(caps, "evohpo:ga", t5, 3)
    assert driver.cap_text(caps)["optuna-cmaes"] == "seeds 0..4, only *-5d / sphere-*"
    with pytest.raises(SystemExit):
        driver.parse_caps(["nosuch=3"], ms)
    with pytest.raises(SystemExit):
        driver.parse_caps(["random=x"], ms)


def _cell(regrets: list[float] | None, n: int | None = None) -> dict:
    if not regrets:
        return {"regrets": [], "median": math.inf, "n_ok": 0, "n": n or 0, "why": "skipped" if n else None}
    q = report.quartiles(regrets)
    return {"regrets": regrets, "q": q, "median": report._shown(q[1]), "n_ok": len(regrets), "n": len(regrets),
            "why": None}


def test_report_comparisons() -> None:
    ms = ["evohpo:ga", "evohpo:cmaes", "propulate", "cmaes-ipop"]
    tasks = [Task("a-5d", 100), Task("b-5d", 100), Task("c-5d", 100)]
    summ = {
        "a-5d@100": {"evohpo:ga": _cell([1.0, 2.0, 3.0]), "evohpo:cmaes": _cell([0.5]), "propulate": _cell([2.0]),
                     "cmaes-ipop": _cell([0.1])},
        "b-5d@100": {"evohpo:ga": _cell([1.0]), "evohpo:cmaes": _cell([3.0]), "propulate": _cell([2.0]),
                     "cmaes-ipop": _cell([2.0])},
        "c-5d@100": {"evohpo:ga": _cell([1.0]), "evohpo:cmaes": _cell([1.0]), "propulate": _cell(None),
                     "cmaes-ipop": _cell([0.0])},
    }
    assert report.versus(summ, tasks, "evohpo:ga", "propulate") == [1, 1, 0]
    assert report.versus(summ, tasks, "evohpo:cmaes", "propulate") == [1, 0, 1]
    assert report.complete(summ, tasks, ms) == ["evohpo:ga", "evohpo:cmaes", "cmaes-ipop"]
    ranks = report.mean_ranks(summ, tasks, ["evohpo:ga", "evohpo:cmaes", "cmaes-ipop"])
    assert ranks == pytest.approx({"evohpo:ga": (3 + 1 + 2.5) / 3, "evohpo:cmaes": (2 + 3 + 2.5) / 3,
                                   "cmaes-ipop": (1 + 2 + 1) / 3})
    lines = report.regret_table(summ, tasks, ms, n_seeds=3)
    text = "\n".join(lines)
    assert "not run" in text and "(1 seeds)" in text and "2 [1.5, 2.5]" in text
    assert "| **vs Propulate 1.2.2**: better / tie / worse median | | 1/1/0 | 1/0/1 |" in text
    assert "| **vs IPOP-CMA-ES (cmaes)**: better / tie / worse median | | 1/0/2 | 0/0/3 |" in text
    assert "3.00 (2 rows)" in text  # Propulate: ranks 3.5 (tied with ga) and 2.5 (tied with IPOP) in its 2 rows
    bullets = "\n".join(report.summary(summ, tasks, ms))
    assert "IPOP-CMA-ES (cmaes) 1.33, evohpo ga 2.17, evohpo cmaes 2.50" in bullets
    assert "vs Propulate 1.2.2 (2 problems run)" in bullets


def test_fmt_thousands() -> None:
    assert report.fmt(3834.2) == "3834" and report.fmt(999.4) == "999" and report.fmt(12345.0) == "1.23e+4"


def _table(best_mean: float) -> dict:
    rows = [{"params": {"a": a}, "val_error": [m, m, m], "mean": m} for a, m in enumerate([0.5, best_mean, 0.4])]
    return {"name": "tiny", "seeds": 3, "space": {"a": [0, 1, 2]}, "rows": rows}


def _run(tmp_path: Path, name: str, *extra: str) -> tuple[dict, str, str]:
    cmd = [sys.executable, str(ROOT / "bench" / "quality.py"), "--problems", f"table:{tmp_path / 'tiny.json'}@4",
           "--methods", "random", "--json", str(tmp_path / f"{name}.json"), "--out", str(tmp_path / f"{name}.md"),
           *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((tmp_path / f"{name}.json").read_text()), (tmp_path / f"{name}.md").read_text(), proc.stderr


def test_cap_and_reuse_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "tiny.json").write_text(json.dumps(_table(0.1)))
    first, md, _ = _run(tmp_path, "a", "--seeds", "2", "--cap", "random=1")
    assert [r["seed"] for r in first["runs"]] == [0]
    assert "(1 seeds)" in md and "random: seeds 0..0" in md
    full, _, _ = _run(tmp_path, "b", "--seeds", "3")
    # reuse b's three seeds into a fresh file: nothing runs, each result says where it came from
    again, md, log = _run(tmp_path, "c", "--seeds", "3", "--reuse", str(tmp_path / "b.json"))
    assert "reusing 3 peers' seed results" in log and "0 jobs" in log
    assert [r["seed"] for r in again["runs"]] == [0, 1, 2]
    assert all(r["reused_from"].startswith("b.json (") for r in again["runs"])
    assert [r["best"] for r in again["runs"]] == [r["best"] for r in full["runs"]]
    assert "Reused, not re-run (`--reuse`), from b.json" in md and "random 3" in md
    # a rebuilt table is not reused
    (tmp_path / "tiny.json").write_text(json.dumps(_table(0.3)))
    _, _, log = _run(tmp_path, "d", "--seeds", "3", "--reuse", str(tmp_path / "b.json"))
    assert "reusing 0 peers' seed results" in log


def test_snapshot_of_another_tree(tmp_path: Path) -> None:
    """``--evohpo-tree DIR``: the snapshot is DIR/evohpo, with the working tree's hash when DIR is a copy of it."""
    import shutil

    from _common import snapshot_evohpo

    shutil.copytree(ROOT / "evohpo", tmp_path / "copy" / "evohpo", ignore=shutil.ignore_patterns("__pycache__"))
    sha = snapshot_evohpo(tmp_path / "a", None, tmp_path / "copy")
    assert (tmp_path / "a" / "evohpo" / "testing" / "functions.py").is_file()
    assert sha == snapshot_evohpo(tmp_path / "b", None)
    (tmp_path / "copy" / "evohpo" / "extra.py").write_text("X = 1\n")
    assert snapshot_evohpo(tmp_path / "c", None, tmp_path / "copy") != sha


def test_keep_other_evohpo_keeps_and_names_the_sources(tmp_path: Path) -> None:
    """``--resume --keep-other-evohpo``: an evohpo result of other sources stays (nothing runs: no MPI here), and
    the report names each evohpo column's sources."""
    (tmp_path / "tiny.json").write_text(json.dumps(_table(0.1)))
    first, _, _ = _run(tmp_path, "k", "--seeds", "1")
    sha = first["runs"][0]["table_sha"]
    fake = {"problem": first["runs"][0]["problem"], "budget": 4, "method": "evohpo:ga", "status": "ok", "seed": 0,
            "best": 0.1, "best_params": {"a": 1}, "n": 4, "distinct": 3, "wall": 0.1, "inside": 0.0,
            "regret": 0.0, "table_sha": sha, "evohpo_version": "0123456789ab", "eval_seconds": 0.002}
    first["runs"].append(fake)
    first["meta"]["evohpo_sources"] = {"0123456789ab": "an older tree, sources sha256 0123456789ab"}
    (tmp_path / "k.json").write_text(json.dumps(first))
    data, md, log = _run(tmp_path, "k", "--seeds", "1", "--resume", "--keep-other-evohpo", "--methods",
                         "random,evohpo:ga", "--evohpo-strategies", "ga")
    assert "0 results of other evohpo sources" in log and "0 jobs" in log
    assert fake in data["runs"]
    assert "evohpo columns by sources (`--resume --keep-other-evohpo`): evohpo ga: an older tree" in md
    assert "| evohpo ga | random |" in md
