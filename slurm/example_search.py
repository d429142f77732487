"""A small resumable evohpo search for trying the SLURM scripts without GPUs, torch or data.

    srun -n 4 python -m mpi4py slurm/example_search.py --checkpoint DIR --evaluations 200 --sleep 0.5
    sbatch slurm/cpu.sbatch slurm/example_search.py --evaluations 200 --sleep 0.5

Every evaluation is a 3-D sphere loss that sleeps ``--sleep`` seconds (a stand-in for a training), so the
whole budget takes about ``evaluations * sleep / ranks`` seconds of wall time and can be made to outlast
one allocation. Rank 0 prints one line ``EXAMPLE_RESULT {json}`` at the end of every run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="directory of the per-rank journals")
    p.add_argument("--evaluations", type=int, default=200, help="total evaluations over all runs and ranks")
    p.add_argument("--sleep", type=float, default=0.5, help="seconds each evaluation takes")
    p.add_argument("--grace", type=float, default=10.0, help="seconds a running evaluation may finish after "
                   "SIGUSR1/SIGTERM")
    p.add_argument("--time-limit", type=float, default=None, help="seconds of this run after which no "
                   "evaluation starts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fresh", action="store_true", help="start over (old journals go to a backup folder)")
    args = p.parse_args(argv)
    if args.evaluations < 1:
        p.error(f"--evaluations must be >= 1, got {args.evaluations}")
    if args.sleep < 0:
        p.error(f"--sleep must be >= 0, got {args.sleep}")
    return args


def sphere(params: dict[str, float], pause: float) -> float:
    """sum x_i^2, after sleeping ``pause`` seconds."""
    time.sleep(pause)
    return sum(v * v for v in params.values())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mpi4py import MPI

    import evohpo

    comm = MPI.COMM_WORLD
    space = {f"x{i}": evohpo.Float(-5.0, 5.0) for i in range(3)}
    t0 = time.time()
    result = evohpo.optimize(lambda p: sphere(p, args.sleep), space, comm=comm,
                             max_evaluations=args.evaluations, time_limit=args.time_limit,
                             checkpoint=args.checkpoint, resume=not args.fresh, seed=args.seed,
                             grace_period=args.grace, progress_interval=5.0)
    if comm.Get_rank() == 0:
        summary = {"reason": result.reason, "n_evaluations_this_run": result.n_evaluations,
                   "n_interrupted": result.n_interrupted, "ranks": comm.Get_size(),
                   "best": None if result.best is None else result.best.loss, "wall": round(time.time() - t0, 2),
                   "restart": int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0),
                   "job": os.environ.get("SLURM_JOB_ID")}
        print("EXAMPLE_RESULT " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
