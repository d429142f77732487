"""The main job: every MPI rank trains a small CNN with Lightning and evohpo evolves its hyperparameters.

    mpiexec -n 4 python -m mpi4py run.py                      # digits, offline, a few minutes on a laptop
    mpiexec -n 8 python -m mpi4py run.py --dataset mnist --data-dir /scratch/data --islands 2
    tensorboard --logdir runs                                 # trials (HParams) and the search's progress

Run it again with the same --checkpoint to resume an interrupted search; --fresh starts over (the old
journals are moved to a backup).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; every default works on a fresh machine without internet."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default="digits", help="digits ships with scikit-learn")
    p.add_argument("--data-dir", default=None, help="where torchvision datasets are (or are downloaded to)")
    p.add_argument("--generations", type=int, default=10, help="evaluations per worker")
    p.add_argument("--islands", type=int, default=1, help="number of islands (at most the number of ranks)")
    p.add_argument("--migration-prob", type=float, default=0.1, help="chance per evaluation that emigrants leave")
    p.add_argument("--pollinate", action="store_true", help="send copies of emigrants instead of moving them")
    p.add_argument("--checkpoint", default="checkpoints/run", help="directory of the per-rank journals")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming from --checkpoint")
    p.add_argument("--epochs", type=int, default=5, help="maximum epochs per training (early stopping may cut)")
    p.add_argument(
        "--max-channels",
        type=int,
        default=None,
        help="widest first conv block in the space (default: 32 for digits, 64 for the others)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-dir", default="runs", help="TensorBoard directory ('' for none)")
    p.add_argument("--metric", choices=("val_acc", "val_loss"), default="val_acc", help="what the search minimises")
    p.add_argument("--time-limit", type=float, default=None, help="seconds after which no training starts")
    p.add_argument("--grace-period", type=float, default=60.0,
                   help="seconds a running training may finish after SIGTERM/SIGUSR1 before it is interrupted")
    args = p.parse_args(argv)
    if args.max_channels is None:
        args.max_channels = 32 if args.dataset == "digits" else 64
    for name in ("generations", "islands", "epochs", "max_channels"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0.0 <= args.migration_prob <= 1.0:
        p.error(f"--migration-prob must be in [0, 1], got {args.migration_prob}")
    if args.time_limit is not None and args.time_limit <= 0:
        p.error(f"--time-limit must be > 0, got {args.time_limit}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the search on every rank of MPI.COMM_WORLD; rank 0 prints the best configuration."""
    args = parse_args(argv)
    from mpi4py import MPI

    import evohpo
    from evohpo.hpo.data import load_dataset
    from evohpo.hpo.devices import setup_device
    from evohpo.hpo.model import cnn_space
    from evohpo.hpo.objective import LightningObjective
    from evohpo.hpo.tensorboard import TensorBoardProgress

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    if args.islands > size:
        raise SystemExit(f"--islands must be <= the number of ranks ({size}), got {args.islands}")
    device = setup_device(comm)  # collective: node-local rank -> GPU, or a share of the CPU cores
    data = load_dataset(args.dataset, args.data_dir, comm=comm)  # collective: one download per node
    log_dir = Path(args.log_dir) if args.log_dir else None
    objective = LightningObjective(
        data,
        device=device,
        epochs=args.epochs,
        metric=args.metric,
        log_dir=None if log_dir is None else log_dir / "trials",
        seed=args.seed,
    )
    result = evohpo.optimize(
        objective,
        cnn_space(args.max_channels),
        comm=comm,
        islands=args.islands,
        generations=args.generations,
        migration_prob=args.migration_prob,
        pollinate=args.pollinate,
        seed=args.seed,
        checkpoint=args.checkpoint,
        resume=not args.fresh,
        time_limit=args.time_limit,
        grace_period=args.grace_period,
        callbacks=[] if log_dir is None else [TensorBoardProgress(log_dir / "search")],
    )
    if rank == 0:
        _report(result, args.metric, device.accelerator, size)
        print(f"journals: {args.checkpoint} (python -m evohpo summary {args.checkpoint})")
        if log_dir is not None:
            print(f"TensorBoard: {log_dir} (tensorboard --logdir {log_dir})")
    return 0


def _report(result: Any, metric: str, accelerator: str, size: int) -> None:
    """Print the best configuration and its validation score."""
    best = result.best
    if best is None:
        print(f"no successful evaluation ({result.n_evaluations} done, {result.n_failed} failed)")
        return
    score = f"val accuracy {-best.loss:.4f}" if metric == "val_acc" else f"val loss {best.loss:.4f}"
    print(
        f"best: {score} (id {best.id}, island {best.island}, rank {best.rank}) after "
        f"{result.n_evaluations} evaluations in this run ({result.n_failed} failed"
        f"{f', {result.resumed} resumed' if result.resumed else ''}) on {size} ranks ({accelerator})"
    )
    print("params:", json.dumps({k: _plain(v) for k, v in best.params.items()}, sort_keys=True))


def _plain(v: Any) -> Any:
    """A JSON-friendly value with floats rounded for reading."""
    if isinstance(v, float) and math.isfinite(v):
        return float(f"{v:.4g}")
    return v


if __name__ == "__main__":
    raise SystemExit(main())
