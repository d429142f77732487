"""The command line of bench/quality.py: the driver, ``--report-only``, and the workers' ``--worker`` mode."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from _common import BENCH, snapshot_evohpo, write_report

from . import driver
from .methods import worker
from .problems import SNAPSHOT_ENV
from .report import report
from .tasks import Task

DESCRIPTION = ("Search quality at equal budgets: evohpo strategies vs Propulate 1.2.2, Optuna TPE and CMA-ES, serial "
               "IPOP-CMA-ES (cmaes) and random search.")


def report_only(args: argparse.Namespace) -> None:
    """Rewrite the Markdown from ``--json`` alone: its methods, problems, results and times; nothing runs."""
    data = json.loads(Path(args.json).read_text())
    drv = driver.Driver(args)
    drv.meta = data["meta"]
    drv.job_times = dict(data.get("job_seconds", {}))
    for r in data["runs"]:
        drv.results[(f"{r['problem']}@{r['budget']}", r["method"], r["seed"])] = r
    tasks = [Task(k, int(b)) for k, _, b in (t.rpartition("@") for t in drv.meta["tasks"])]
    args.seeds, args.quick = drv.meta["seeds"], False
    minutes = drv.meta.get("minutes", 0.0)
    write_report(report(drv, tasks, list(drv.meta["methods"]), 60 * minutes), args.out)


def run(args: argparse.Namespace) -> None:
    """Take the lock of ``--json``, snapshot evohpo, run the cells and write both files."""
    lock = driver.take_lock(Path(args.json))
    try:
        with tempfile.TemporaryDirectory(prefix="quality-evohpo-") as snap:
            version = snapshot_evohpo(Path(snap), args.evohpo_ref, args.evohpo_tree)
            os.environ[SNAPSHOT_ENV] = snap
            drv, tasks, methods, elapsed = driver.run(args, version)
            out = write_report(report(drv, tasks, methods, elapsed), args.out)
            drv.say(f"wrote {out} and {args.json} ({elapsed / 60:.1f} min)")
    finally:
        lock.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the driver, the report or a worker."""
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--quick", action="store_true", help="3 seeds, a few problems (writes quality-quick.*)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per cell (default 10; --quick: 3)")
    parser.add_argument("--problems", default=None,
                        help="comma list: KEY, KEY@BUDGET, globs, 'tables', 'continuous', 'continuous2' (rotated / "
                        "ill-conditioned, 5-D and 20-D), table:NAME|PATH (mean over seeds), table1:NAME|PATH (single "
                        "run)")
    parser.add_argument("--evohpo-strategies", default="ga,plain-ga,adaptive,guided",
                        help="evohpo propagator= values, one column each (ga is the default propagator)")
    parser.add_argument("--methods", default=None, help="keep only these methods (e.g. evohpo,random; all: evohpo, "
                        "propulate, optuna (TPE), optuna-cmaes, cmaes-ipop, random)")
    parser.add_argument("--cap", action="append", default=None, metavar="METHOD=SEEDS[@GLOB|GLOB...]",
                        help="run METHOD on its first SEEDS seeds only (empty: all) and, with globs, only on matching "
                        "problems (e.g. optuna-cmaes=5@*-5d); repeatable; other cells read 'not run'")
    parser.add_argument("--reuse", action="append", default=None, metavar="JSON",
                        help="take the peers' ok results (not evohpo's) of this run's cells from another results file "
                        "(e.g. bench/results/quality.json) instead of running them; repeatable")
    parser.add_argument("--eval-seconds", type=float, default=0.002,
                        help="each evaluation of the parallel methods (evohpo, Propulate) sleeps this long (default "
                        "0.002; 0: none, where 4 ranks on 2 cores run in bursts of a scheduler time slice)")
    parser.add_argument("--jobs", type=int, default=2, help="jobs at once (at most one under mpiexec)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per seed before it is a timeout")
    parser.add_argument("--out", default=None, help="Markdown report (default bench/results/quality.md)")
    parser.add_argument("--json", default=None, help="per-seed results (default bench/results/quality.json)")
    parser.add_argument("--resume", action="store_true", help="keep the ok seed results already in --json")
    parser.add_argument("--keep-other-evohpo", action="store_true",
                        help="with --resume: keep the evohpo results of other evohpo sources too (e.g. to add a "
                        "strategy that is new in the tree); the report names the sources of each evohpo column")
    parser.add_argument("--report-only", action="store_true", help="only rewrite --out from --json; run nothing")
    parser.add_argument("--peers-venv", default=str(BENCH / ".peers-venv"))
    parser.add_argument("--evohpo-ref", default=None,
                        help="run evohpo from this git commit (read-only git archive) instead of the working tree")
    parser.add_argument("--evohpo-tree", default=None, metavar="DIR",
                        help="run evohpo from DIR/evohpo (e.g. a copy of the working tree made once, so that the "
                        "invocations of a --resume series keep one evohpo while others edit the tree)")
    # worker mode
    parser.add_argument("--worker", choices=["evohpo", "propulate", "optuna", "optuna-cmaes", "cmaes-ipop"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--problem", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="ga", help=argparse.SUPPRESS)
    parser.add_argument("--seed-list", default="0", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return
    args.seeds_given, args.json_given, args.out_given = args.seeds is not None, args.json is not None, \
        args.out is not None
    args.seeds = args.seeds if args.seeds is not None else 10
    args.json = args.json or str(driver.RESULTS / "quality.json")
    args.out = args.out or str(driver.RESULTS / "quality.md")
    if args.report_only:
        report_only(args)
        return
    if args.quick:  # before the lock: it is the lock of the file this run writes
        args.seeds = args.seeds if args.seeds_given else 3
        args.json = args.json if args.json_given else str(driver.RESULTS / "quality-quick.json")
        args.out = args.out if args.out_given else str(driver.RESULTS / "quality-quick.md")
    run(args)


if __name__ == "__main__":
    main()
