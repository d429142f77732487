"""The main job: every MPI rank trains a small CNN with Lightning and evohpo evolves its hyperparameters.

    mpiexec -n 4 python -m mpi4py run.py                      # digits, offline, a few minutes on a laptop
    mpiexec -n 8 python -m mpi4py run.py --dataset mnist --data-dir /scratch/data --islands 2
    mpiexec -n 4 python -m mpi4py run.py --epochs 27 --step-budget 300 --pruner asha  # 300 epochs in all, pruned
    tensorboard --logdir runs                                 # trials (HParams) and the search's progress

Every training reports its validation score after each epoch; --pruner asha stops the unpromising ones early. The
weights of the best training are kept in CHECKPOINT/models/. Run it again with the same --checkpoint to resume an
interrupted search; --fresh starts over (the old journals, weights and TensorBoard runs are moved to backups).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from evohpo.core.pruners import PRUNERS
from evohpo.core.strategies import DEFAULT, STRATEGIES, grid_points

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
T = TypeVar("T")
DIRECTIONS = {"val_acc": "maximize", "val_loss": "minimize"}  # --metric: what the search optimizes, and how
GENERATIONS = 10  # --generations without --step-budget


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The description as written; every option's help ends with its default, unless None or False (whose
    help says what they mean)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" not in text and not any(action.default is v for v in (None, False, argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


def _propagator(name: str) -> str:
    """--propagator: a strategy of evohpo.core.strategies.STRATEGIES or grid:N."""
    try:
        if name in STRATEGIES or grid_points(name) is not None:
            return name
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    raise argparse.ArgumentTypeError(f"{name!r} is not a strategy; choose from {', '.join(STRATEGIES)} or grid:N")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; every default works on a fresh machine without internet."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default="digits", help="digits ships with scikit-learn")
    p.add_argument("--data-dir", default=None, help="where torchvision datasets are, or are downloaded to "
                                                    "(default: $EVOHPO_DATA or ~/.cache/evohpo/data)")
    p.add_argument("--generations", type=int, default=None,
                   help=f"evaluations per worker (default: {GENERATIONS}); --step-budget replaces it")
    p.add_argument("--step-budget", type=int, default=None, metavar="EPOCHS",
                   help="the search's budget in epochs trained, all ranks together, instead of --generations "
                        "(pruned trainings cost only the epochs they trained)")
    p.add_argument("--islands", type=int, default=1, help="number of islands (at most the number of ranks)")
    p.add_argument("--migration-prob", type=float, default=0.1, help="chance per evaluation that emigrants leave")
    p.add_argument("--pollinate", action="store_true", help="send copies of emigrants instead of moving them")
    p.add_argument("--checkpoint", default=None,
                   help="directory of the per-rank journals (default: checkpoints/run-DATASET)")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming from --checkpoint")
    p.add_argument("--epochs", type=int, default=5,
                   help="maximum epochs per training, the search's max_steps (early stopping and pruning may cut)")
    p.add_argument("--pruner", choices=PRUNERS, default="none",
                   help="how unpromising trainings are stopped from their epoch reports: asha (asynchronous "
                        "successive halving: the best third at each rung go on), median (those worse than the "
                        "median at a rung stop) or none (measured on this CNN with --epochs 27: asha finds the same "
                        "best accuracy with a third of the epochs, bench/results/pruning-cnn-27.md; with few epochs "
                        "per training it pays less)")
    p.add_argument(
        "--max-channels",
        type=int,
        default=None,
        help="widest first conv block in the space (default: 32 for digits, 64 for the others)",
    )
    p.add_argument("--propagator", type=_propagator, default=None, metavar="STRATEGY",
                   help=f"how children are bred: one of {', '.join(STRATEGIES)}, or grid:N "
                        f"(default: the library's, {DEFAULT})")
    p.add_argument("--pop-size", type=int, default=None,
                   help="breeding pool per island (default: the library's, max(8, 2 x the island's workers))")
    p.add_argument("--seed", type=int, default=0, help="seed of the search and of every training")
    p.add_argument("--log-dir", default=None, help="TensorBoard directory, '' for none (default: runs/DATASET)")
    p.add_argument("--metric", choices=tuple(DIRECTIONS), default="val_acc",
                   help="what the search optimizes: val_acc is maximized, val_loss minimized")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds after which no training starts (default: none)")
    p.add_argument("--ranks-per-worker", type=int, default=1, metavar="K",
                   help="ranks that train each configuration together with DDP, one device each (the ranks must "
                        "be a multiple of K; budgets and islands count workers of K ranks)")
    p.add_argument("--grace-period", type=float, default=60.0,
                   help="seconds a running training may finish after SIGTERM/SIGUSR1 before it is interrupted")
    args = p.parse_args(argv)
    if args.max_channels is None:
        args.max_channels = 32 if args.dataset == "digits" else 64
    if args.checkpoint is None:
        args.checkpoint = f"checkpoints/run-{args.dataset}"  # another dataset is another search
    if args.log_dir is None:
        args.log_dir = f"runs/{args.dataset}"
    for name in ("generations", "step_budget", "islands", "epochs", "max_channels", "pop_size", "ranks_per_worker"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0.0 <= args.migration_prob <= 1.0:
        p.error(f"--migration-prob must be in [0, 1], got {args.migration_prob}")
    if args.time_limit is not None and args.time_limit <= 0:
        p.error(f"--time-limit must be > 0, got {args.time_limit}")
    if args.step_budget is not None and args.generations is not None:
        p.error(f"--step-budget {args.step_budget} replaces --generations: give one of them, not both")
    if args.step_budget is None and args.generations is None:
        args.generations = GENERATIONS
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
    if size % args.ranks_per_worker:
        if rank == 0:
            print(f"run.py: error: --ranks-per-worker {args.ranks_per_worker} must divide the number of ranks "
                  f"({size})", file=sys.stderr)
        return 2
    workers = size // args.ranks_per_worker
    if args.islands > workers:
        if rank == 0:
            print(f"run.py: error: --islands must be <= the number of workers ({workers}: {size} ranks, "
                  f"{args.ranks_per_worker} per worker), got {args.islands}", file=sys.stderr)
        return 2
    device = setup_device(comm)  # collective: node-local rank -> GPU, or a share of the CPU cores
    data = _collective(comm, f"loading dataset {args.dataset!r}",  # one download per node
                       lambda: load_dataset(args.dataset, args.data_dir, comm=comm))
    log_dir = Path(args.log_dir) if args.log_dir else None
    if args.fresh and log_dir is not None:
        runs = _collective(comm, "moving the earlier search's TensorBoard runs to a backup",
                           lambda: _backup_runs(args.checkpoint, log_dir), root_only=True)
        if rank == 0 and runs is not None:
            print(f"--fresh: the earlier TensorBoard runs are now in {runs} (the earlier journals and kept weights, "
                  f"if any, go to {args.checkpoint}/backup-*)", flush=True)
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
        generations=args.generations,  # None with --step-budget
        step_budget=args.step_budget,
        max_steps=args.epochs,  # every training reports once per epoch
        pruner=args.pruner,
        propagator=args.propagator,
        pop_size=args.pop_size,
        migration_prob=args.migration_prob,
        pollinate=args.pollinate,
        seed=args.seed,
        checkpoint=args.checkpoint,
        fingerprint={"dataset": args.dataset, "metric": args.metric, "epochs": args.epochs,
                     "max_channels": args.max_channels},
        resume=not args.fresh,
        time_limit=args.time_limit,
        grace_period=args.grace_period,
        ranks_per_worker=args.ranks_per_worker,
        direction=DIRECTIONS[args.metric],
        metric=args.metric,
        callbacks=[] if log_dir is None else [TensorBoardProgress(log_dir / "search")],
    )
    if rank == 0:
        _report(result, device.accelerator, size, args.ranks_per_worker)
        _report_model(result, args.checkpoint)
        print(f"journals: {args.checkpoint} (python -m evohpo summary {args.checkpoint})")
        if log_dir is not None:
            print(f"TensorBoard: {log_dir} (tensorboard --logdir {log_dir})")
    return 0


def _collective(comm: Any, what: str, fn: Callable[[], T], *, root_only: bool = False) -> T:
    """``fn()`` on every rank (on rank 0 only with ``root_only``, its value then broadcast), then a collective:
    when it raised anywhere, rank 0 prints the first error once, with its traceback, and every rank exits
    with status 1, the others quietly."""
    rank, value, error = comm.Get_rank(), None, None
    if not root_only or rank == 0:
        try:
            value = fn()
        except Exception:
            error = traceback.format_exc()
    failed = [(r, text) for r, text in enumerate(comm.allgather(error)) if text is not None]
    if failed:
        if rank == 0:
            r, text = failed[0]
            others = f" (and on {len(failed) - 1} more)" if len(failed) > 1 else ""
            print(f"run.py: error {what} on rank {r}{others}:\n{text}", file=sys.stderr, end="", flush=True)
        raise SystemExit(1)
    return comm.bcast(value, root=0) if root_only else value  # type: ignore[return-value]


def _backup_runs(checkpoint: str, log_dir: Path) -> Path | None:
    """Move an earlier search's TensorBoard runs out of ``log_dir`` (--fresh; ``optimize(resume=False)`` moves the
    journals and the kept weights), unless a running search holds ``checkpoint`` (then CheckpointInUse, and nothing
    moves); where they went (None: there was nothing to move)."""
    from evohpo.hpo.tensorboard import backup_runs
    from evohpo.journal.directory import DirectoryLock

    with DirectoryLock(checkpoint):
        return backup_runs(log_dir)


def _report(result: Any, accelerator: str, size: int, ranks_per_worker: int = 1) -> None:
    """Print the best configuration and its validation score."""
    best = result.best
    if best is None:
        print(f"no successful evaluation ({result.n_evaluations} done, {result.n_failed} failed)")
        return
    name = {"val_acc": "val accuracy", "val_loss": "val loss"}.get(result.metric, result.metric)
    score = f"{name} {result.best_value:.4f}"
    pruned = getattr(result, "n_pruned", 0)
    print(
        f"best: {score} (id {best.id}, island {best.island}, rank {best.rank}) after "
        f"{result.n_evaluations} evaluations in this run ({result.n_failed} failed"
        f"{f', {pruned} pruned' if pruned else ''}"
        f"{f', {result.resumed} resumed' if result.resumed else ''}) on {size} ranks ({accelerator})"
        f"{f', {size // ranks_per_worker} workers of {ranks_per_worker}' if ranks_per_worker > 1 else ''}"
    )
    print("params:", json.dumps({k: _plain(v) for k, v in best.params.items()}, sort_keys=True))


def _report_model(result: Any, checkpoint: str) -> None:
    """Print where the best training's weights are (``evohpo.hpo.best_model_path``), or that they were not kept."""
    from evohpo.hpo import best_model_path

    best = getattr(result, "best", None)
    if best is None:
        return
    path = best_model_path(checkpoint, best.id)
    if path is not None:
        print(f"best model: {path} (evohpo.hpo.load_model)")
    else:
        print(f"best model: not kept (no weights of trial {best.id} in {Path(checkpoint) / 'models'}; a training "
              "keeps them when it beats the best its island knew when it started)")


def _plain(v: Any) -> Any:
    """A JSON-friendly value with floats rounded for reading."""
    if isinstance(v, float) and math.isfinite(v):
        return float(f"{v:.4g}")
    return v


if __name__ == "__main__":
    raise SystemExit(main())
