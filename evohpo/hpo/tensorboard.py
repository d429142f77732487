"""TensorBoard: each island's best loss as the search goes (a ``Callback``)."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from ..core.individual import Individual
from ..parallel.callbacks import Callback, SearchInfo


class TensorBoardProgress(Callback):
    """A callback that plots each island's best loss as the search goes.

    Only the first worker of an island writes (``island_rank`` 0, learned from the search at its start
    unless given); it logs ``best_loss/island_{k}`` against the number of evaluations its island has seen
    (with wall-clock times, so TensorBoard's "Relative" axis shows time) and ``best_loss_by_time/island_{k}``
    against seconds since the start. The event files are closed when the search ends.
    """

    def __init__(self, log_dir: str | os.PathLike[str], island_rank: int | None = None) -> None:
        if island_rank is not None and island_rank < 0:
            raise ValueError(f"island_rank must be >= 0, got {island_rank=}")
        self.log_dir = Path(log_dir)
        self.island_rank = island_rank
        self.start = time.time()
        self._writers: dict[int, Any] = {}
        self._seen: dict[int, int] = {}
        self._best: dict[int, float] = {}

    def on_start(self, search: SearchInfo) -> None:
        if self.island_rank is None:
            self.island_rank = search.island_rank
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
        best = self._best[k]
        writer.add_scalar(f"best_loss/island_{k}", best, global_step=n, walltime=now)
        writer.add_scalar(f"best_loss_by_time/island_{k}", best, global_step=max(0, round(now - self.start)))
        if math.isfinite(loss):
            writer.add_scalar(f"loss/island_{k}", loss, global_step=n, walltime=now)

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
