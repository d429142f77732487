"""What per-step reports and pruning cost: microseconds per ``evohpo.report`` call, and the idle fraction of a pruned
search on several ranks with uneven epoch times.

    python bench/pruning_overhead.py            # writes bench/results/pruning_overhead.md
    python bench/pruning_overhead.py --quick    # fewer calls and a shorter MPI run

1. A report's cost, in one process (``optimize`` with one worker and a journal on disk): the loss function makes
   ``R`` reports per training and times each call with ``perf_counter``; the median and the 99th percentile per call
   are shown for calls between rungs (check, journal append) and at rungs (the pruner's decision on the board, the
   rung value added), with boards of growing size (the cost must not grow with the search).
2. Idle at 8 ranks (``mpiexec -n 8``, 2 cores): every rank trains curves whose steps sleep 5-15 ms times a factor
   of its own (1.0 to 1.9: uneven epoch times), ASHA under a step budget, with and without pruning. Idle = 1 - time
   training (inside the loss function, minus the time inside ``report``) summed over ranks / (ranks x the longest
   optimize call, started after a warm-up search that imports what a search uses); the part after a rank's last
   training ended (waiting for the slowest) is shown apart.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
R = 27
MARK = "@@PRUNING "


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else math.nan


def report_cost(trainings: int) -> dict:
    """Time every report call of a one-worker search with a journal: between rungs and at rungs, early and late."""
    import evohpo

    at_rung, between, late_rung = [], [], []
    rungs = set(evohpo.ASHA().rungs(R))

    def loss(params: dict) -> float:
        gen = evohpo.current().generation
        for step in range(1, R + 1):
            value = (params["x"] - 0.3) ** 2 + 1.0 / step
            t0 = time.perf_counter()
            try:
                evohpo.report(step, value, train_loss=value)
            finally:
                dt = time.perf_counter() - t0
                (at_rung if step in rungs else between).append(dt)
                if step in rungs and gen >= trainings - trainings // 10:
                    late_rung.append(dt)
        return value

    with tempfile.TemporaryDirectory() as d:
        r = evohpo.optimize(loss, {"x": (0.0, 1.0)}, max_evaluations=trainings, max_steps=R, checkpoint=d,
                            progress_interval=1e9, seed=0)
    return {"trainings": trainings, "pruned": r.n_pruned, "steps": r.n_steps,
            "between_us": [1e6 * statistics.median(between), 1e6 * _percentile(between, 0.99)],
            "at_rung_us": [1e6 * statistics.median(at_rung), 1e6 * _percentile(at_rung, 0.99)],
            "late_rung_us": [1e6 * statistics.median(late_rung), 1e6 * _percentile(late_rung, 0.99)],
            "calls": len(between) + len(at_rung)}


def _control(step: int, value: float) -> bool:
    """A few dict and float operations, as a yardstick for a report's cost right after a wake-up."""
    rec = {"ev": "report", "id": "0-1", "step": step, "loss": float(value), "t": time.time()}
    return math.isfinite(value) and len(rec) > 0


def mpi_worker(pruner: str, step_budget: int) -> None:
    """One rank of the idle run (under mpiexec): prints its training time, report time and wall."""
    from mpi4py import MPI

    import evohpo

    comm = MPI.COMM_WORLD
    rng = random.Random(comm.rank)
    factor = 1.0 + 0.9 * comm.rank / max(1, comm.size - 1)
    inside, in_report, last_end, calls = 0.0, 0.0, 0.0, 0
    durations: list[float] = []
    control: list[float] = []

    def loss(params: dict) -> float:
        nonlocal inside, in_report, last_end, calls
        t0 = time.perf_counter()
        try:
            value = math.inf
            for step in range(1, R + 1):
                time.sleep(factor * rng.uniform(0.005, 0.015))
                value = (params["x"] - 0.3) ** 2 + (1.0 + params["y"]) / step
                if step % 2 == 0:  # a control: what any small Python function costs right after a wake-up here
                    t1 = time.perf_counter()
                    _control(step, value)
                    control.append(time.perf_counter() - t1)
                t1 = time.perf_counter()
                try:
                    evohpo.report(step, value)
                finally:
                    durations.append(time.perf_counter() - t1)
                    in_report += durations[-1]
                    calls += 1
            return value
        finally:
            last_end = time.perf_counter()
            inside += last_end - t0

    # start-up (imports, the strategy's first use) is a constant per search, not idle between trainings: warm it
    evohpo.optimize(lambda p: 0.0, {"x": (0.0, 1.0), "y": (0.0, 1.0)}, comm=MPI.COMM_SELF, max_evaluations=2,
                    progress_interval=1e9)
    comm.Barrier()
    start = time.perf_counter()
    r = evohpo.optimize(loss, {"x": (0.0, 1.0), "y": (0.0, 1.0)}, comm=comm, max_steps=R, pruner=pruner,
                        step_budget=step_budget, progress_interval=1e9, seed=1)
    wall = time.perf_counter() - start
    print(MARK + json.dumps({"rank": comm.rank, "inside": inside, "report": in_report, "calls": calls,
                             "wall": wall, "tail": start + wall - last_end,
                             "median": statistics.median(durations[0::2]), "p99": _percentile(durations, 0.99),
                             "control": statistics.median(control),
                             "n_steps": r.n_steps,
                             "n_pruned": r.n_pruned, "n_evaluations": r.n_evaluations}), flush=True)


def idle_run(ranks: int, pruner: str, step_budget: int) -> dict:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    cmd = [str(mpiexec), "-n", str(ranks), sys.executable, "-m", "mpi4py", __file__, "--mpi-worker", pruner,
           str(step_budget)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True).stdout
    decode = json.JSONDecoder().raw_decode  # (ranks' lines may interleave: read each record from its mark)
    rows = [decode(chunk)[0] for chunk in out.split(MARK)[1:]]
    assert len(rows) == ranks, out
    wall = max(r["wall"] for r in rows)
    training = sum(r["inside"] - r["report"] for r in rows)
    tail = sum(r["tail"] - (wall - r["wall"]) * 0 for r in rows)  # after each rank's last training, to its end
    tail += sum(wall - r["wall"] for r in rows)
    return {"ranks": ranks, "pruner": pruner, "step_budget": step_budget, "wall": wall,
            "idle": 1 - training / (ranks * wall), "idle_end": tail / (ranks * wall),
            "report_us": 1e6 * sum(r["report"] for r in rows) / max(1, sum(r["calls"] for r in rows)),
            "report_median_us": 1e6 * statistics.median(r["median"] for r in rows),  # the ranks' medians
            "report_p99_us": 1e6 * max(r["p99"] for r in rows),
            "control_us": 1e6 * statistics.median(r["control"] for r in rows),
            "n_steps": rows[0]["n_steps"], "n_pruned": rows[0]["n_pruned"], "n_evaluations": rows[0]["n_evaluations"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--mpi-worker", nargs=2, metavar=("PRUNER", "STEP_BUDGET"))
    p.add_argument("--out", default=str(HERE / "results" / "pruning_overhead.md"))
    args = p.parse_args()
    if args.mpi_worker:
        mpi_worker(args.mpi_worker[0], int(args.mpi_worker[1]))
        return
    sizes = [200, 2000] if args.quick else [200, 2000, 20000]
    costs = [report_cost(n) for n in sizes]
    budget = 8 * (300 if args.quick else 2400)
    idle = [idle_run(8, pruner, budget) for pruner in ("asha", "none")]
    lines = [f"# What reports and pruning cost ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
             f"`python bench/pruning_overhead.py{' --quick' if args.quick else ''}`.", "",
             "## A report's cost (one worker, journal on disk, ASHA; microseconds per `evohpo.report` call)", "",
             "| trainings | pruned | reports | between rungs: median / p99 | at rungs: median / p99 | "
             "at rungs, last 10% of the search: median / p99 |", "|---:|---:|---:|---:|---:|---:|"]
    for c in costs:
        lines.append(f"| {c['trainings']:,} | {c['pruned']:,} | {c['calls']:,} | {c['between_us'][0]:.1f} / "
                     f"{c['between_us'][1]:.1f} | {c['at_rung_us'][0]:.1f} / {c['at_rung_us'][1]:.1f} | "
                     f"{c['late_rung_us'][0]:.1f} / {c['late_rung_us'][1]:.1f} |")
    lines += ["", f"## Idle at 8 ranks, uneven epoch times (5-15 ms per step x 1.0-1.9 by rank, R = {R} steps)", "",
              "| pruner | step budget | steps used | trainings | pruned | wall s | idle (end part) | "
              "report us/call: median / p99 / mean | control us |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in idle:
        lines.append(f"| {r['pruner']} | {r['step_budget']:,} | {r['n_steps']:,} | {r['n_evaluations']:,} | "
                     f"{r['n_pruned']:,} | {r['wall']:.1f} | {100 * r['idle']:.2f}% ({100 * r['idle_end']:.2f}%) | "
                     f"{r['report_median_us']:.1f} / {r['report_p99_us']:.0f} / {r['report_us']:.0f} | "
                     f"{r['control_us']:.1f} |")
    lines += ["", "Under MPI every report is timed right after its step's sleep (odd steps; the median over calls, "
              "then over ranks): 8 ranks share 2 cores here, and Python right after a wake-up runs from cold caches or "
              "waits for a core. The control column is a trivial function (a 5-key dict, a float check) timed the "
              "same way on even steps: it costs 0.3 us warm. The mean is what the idle column charges."]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps({"costs": costs, "idle": idle}, indent=1))


if __name__ == "__main__":
    main()
