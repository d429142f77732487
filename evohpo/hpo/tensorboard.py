"""TensorBoard: each island's best value as the search goes (a ``Callback``), one run directory per training
attempt, and the backup of an earlier search's runs."""

from __future__ import annotations

import itertools
import math
import os
import time
from pathlib import Path
from typing import Any

from ..core.goal import Goal
from ..core.individual import Individual
from ..parallel.callbacks import Callback, SearchInfo

RUNS = ("trials", "search")  # what a log directory holds: one run per training, the search's progress


def claim_run_dir(root: str | os.PathLike[str], name: str) -> Path:
    """Create and return a run directory of its own under ``root``: ``name`` the first time, else
    ``name.attempt-2``, ``name.attempt-3``, ... (a training re-run after a restart, or one of the same name on
    another rank). Creating a directory is atomic, so no two processes ever get the same one."""
    if not name or "/" in name or os.sep in name or name in (".", ".."):
        raise ValueError(f"run name={name!r} must be a non-empty directory name without '/'")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    attempt = 1
    while True:
        run = root / (name if attempt == 1 else f"{name}.attempt-{attempt}")
        try:
            run.mkdir()
            return run
        except FileExistsError:
            attempt += 1


def backup_runs(log_dir: str | os.PathLike[str], stamp: str | None = None) -> Path | None:
    """Move an earlier search's runs (``log_dir``/trials and ``log_dir``/search) into a new
    ``log_dir``/backup-YYYYmmdd-HHMMSS[-n] folder, as a fresh start does with a checkpoint's journals;
    return that folder, or None when there was nothing to move."""
    log_dir = Path(log_dir)
    present = [log_dir / name for name in RUNS if (log_dir / name).exists()]
    if not present:
        return None
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    for n in itertools.count():
        target = log_dir / (f"backup-{stamp}" if n == 0 else f"backup-{stamp}-{n}")
        try:
            target.mkdir()
            break
        except FileExistsError:
            continue
    for path in present:
        os.replace(path, target / path.name)
    return target


class TensorBoardProgress(Callback):
    """A callback that plots each island's best value as the search goes.

    Only the first worker of an island writes (``island_rank`` 0, learned from the search at its start
    unless given); it logs ``best_loss/island_{k}`` against the number of evaluations its island has seen
    (with wall-clock times, so TensorBoard's "Relative" axis shows time) and ``best_loss_by_time/island_{k}``
    against seconds since the start. "loss" stands for the search's metric (``best_val_acc/island_0`` for
    ``metric="val_acc"``), with the values as the objective returned them. The event files are closed when the
    search ends.
    """

    def __init__(self, log_dir: str | os.PathLike[str], island_rank: int | None = None) -> None:
        if island_rank is not None and island_rank < 0:
            raise ValueError(f"island_rank must be >= 0, got {island_rank=}")
        self.log_dir = Path(log_dir)
        self.island_rank = island_rank
        self.start = time.time()
        self._writers: dict[int, Any] = {}
        self._seen: dict[int, int] = {}
        self._best: dict[int, float] = {}  # signed losses
        self.goal = Goal()

    def on_start(self, search: SearchInfo) -> None:
        if self.island_rank is None:
            self.island_rank = search.island_rank
        self.goal = search.goal
        self.start = time.time()

    def on_result(self, individual: Individual) -> None:
        """Record one individual added to this worker's island."""
        if self.island_rank != 0:
            return
        k = int(individual.island)
        self._seen[k] = n = self._seen.get(k, 0) + 1
        loss = float(individual.loss)
        if getattr(individual, "status", "ok") == "ok" and math.isfinite(loss):
            self._best[k] = min(self._best.get(k, math.inf), loss)
        if k not in self._best:
            return
        writer = self._writer(k)
        now = float(individual.end) if getattr(individual, "end", 0.0) else time.time()
        best, metric = float(self.goal.value(self._best[k])), self.goal.metric
        writer.add_scalar(f"best_{metric}/island_{k}", best, global_step=n, walltime=now)
        writer.add_scalar(f"best_{metric}_by_time/island_{k}", best, global_step=max(0, round(now - self.start)))
        if math.isfinite(loss):
            writer.add_scalar(f"{metric}/island_{k}", float(self.goal.value(loss)), global_step=n, walltime=now)

    def _writer(self, island: int) -> Any:
        """The event writer of ``island``, created on first use."""
        if island not in self._writers:
            from torch.utils.tensorboard import SummaryWriter

            self._writers[island] = SummaryWriter(str(self.log_dir / f"island_{island}"), flush_secs=10)
        return self._writers[island]

    def flush(self) -> None:
        """Write what is buffered."""
        for writer in self._writers.values():
            writer.flush()

    def on_end(self, result: Any) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the event files."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
