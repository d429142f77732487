"""The command line of bench/pruning.py: the driver, ``--report-only`` and the workers' ``--worker`` mode."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from _common import BENCH, snapshot_evohpo, write_report

from . import driver
from .methods import worker

DESCRIPTION = ("Learning-curve benchmarks at equal step budgets: evohpo with and without pruning vs DEHB, Optuna "
               "TPE with Hyperband / successive halving, random search and the 1-step top-K baseline.")
STEP_SECONDS = 0.001  # with zero-cost steps, 4 ranks on 2 cores race: ~25% duplicate trainings (see pruning.py)
DEFAULT_TABLES = ("cnn_digits_curves", "mlp_digits_curves", "sgd_digits_curves", "hgb_digits_curves")


def write(args: argparse.Namespace) -> None:
    """The Markdown (``--out``) from the JSON (``--json``), whose summary it updates."""
    from .report import report

    data = json.loads(Path(args.json).read_text())
    md, summ = report(data)
    data["summary"] = summ
    Path(args.json).write_text(json.dumps(data, separators=(",", ":")) + "\n")
    write_report(md, args.out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--quick", action="store_true",
                        help="2 seeds, 1 table, budget 10 x R (writes to a temporary folder unless --json/--out)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..S-1 (default 10; --quick: 2)")
    parser.add_argument("--tables", default=None, help="comma list of curve tables (names or paths; default: the "
                        f"four of {', '.join(DEFAULT_TABLES)} that exist)")
    parser.add_argument("--budgets", default=None, help="budgets as multiples of R, comma list (default 20,60)")
    parser.add_argument("--methods", default=None, help=f"comma list of {', '.join(driver.METHODS)} (default all)")
    parser.add_argument("--jobs", type=int, default=2, help="jobs at once (at most one under mpiexec)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per seed before it is a timeout")
    parser.add_argument("--json", default=None, help="per-seed results (default bench/results/pruning.json)")
    parser.add_argument("--out", default=None, help="Markdown report (default bench/results/pruning.md)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the ok seed results in --json (evohpo's only from the same evohpo sources)")
    parser.add_argument("--report-only", action="store_true", help="only rewrite --out from --json")
    parser.add_argument("--peers-venv", default=str(BENCH / ".peers-venv"))
    parser.add_argument("--evohpo-ref", default=None,
                        help="run evohpo from this git commit instead of the working tree")
    parser.add_argument("--evohpo-tree", default=None, metavar="DIR",
                        help="run evohpo from DIR/evohpo (a copy of the working tree made once, so that the "
                        "invocations of a --resume series keep one evohpo while others edit the tree)")
    # worker mode
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed-list", default="0", help=argparse.SUPPRESS)
    parser.add_argument("--step-seconds", type=float, default=STEP_SECONDS,
                        help=f"evohpo: seconds each step of a training takes (a sleep; default {STEP_SECONDS})")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return
    quick_dir = tempfile.mkdtemp(prefix="pruning-quick-") if args.quick else None
    args.json = args.json or (f"{quick_dir}/pruning.json" if quick_dir else str(driver.RESULTS / "pruning.json"))
    args.out = args.out or (f"{quick_dir}/pruning.md" if quick_dir else str(driver.RESULTS / "pruning.md"))
    if args.report_only:
        write(args)
        return
    from curves.curves import names

    args.seeds = args.seeds if args.seeds is not None else (2 if args.quick else 10)
    if args.tables:
        args.table_list = [t.strip() for t in args.tables.split(",") if t.strip()]
    else:
        have = names()
        args.table_list = [t for t in DEFAULT_TABLES if t in have][:1 if args.quick else None]
        if not args.table_list:
            raise SystemExit(f"no curve table of {DEFAULT_TABLES} in bench/curves (have {have}): build them, or "
                             "give --tables")
    args.mult_list = [int(b) for b in (args.budgets or ("10" if args.quick else "20,60")).split(",") if b.strip()]
    args.method_list = ([m.strip() for m in args.methods.split(",") if m.strip()] if args.methods
                        else list(driver.METHODS))
    unknown = set(args.method_list) - set(driver.METHODS)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; known: {driver.METHODS}")
    with tempfile.TemporaryDirectory(prefix="pruning-evohpo-") as snap:
        version = snapshot_evohpo(Path(snap), args.evohpo_ref, args.evohpo_tree)
        os.environ[driver.SNAPSHOT_ENV] = snap
        drv, elapsed = driver.run(args, version)
    write(args)
    drv.say(f"wrote {args.out} and {args.json} ({elapsed / 60:.1f} min)")


if __name__ == "__main__":
    main()
