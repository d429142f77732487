"""What the running evaluation is: lets a plain ``loss_fn(params)`` learn its id, rank and island."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EvalContext:
    """The evaluation in progress on this worker: ``rank`` is the worker's (the rank of the search that writes its
    journal; with ``ranks_per_worker=k`` the same on the worker's k ranks, which ``comm.Get_rank()`` tells apart)."""

    id: str
    rank: int
    island: int
    island_rank: int
    generation: int
    checkpoint: str | None = None
    reporter: Any = field(default=None, compare=False, repr=False)  # takes ``evohpo.report`` (``core.reporting``)
    island_best: float = math.inf  # the best loss its island knew when it started (minus the value when maximizing)
    group: Any = field(default=None, compare=False, repr=False)  # the worker's ranks (``parallel.group``), k > 1

    @property
    def comm(self) -> Any:
        """The MPI communicator of the ranks that evaluate this individual together (``ranks_per_worker``), or
        None when one rank does (``ranks_per_worker=1``)."""
        return self.group.comm if self.group is not None else None


_current: ContextVar[EvalContext | None] = ContextVar("evohpo_eval_context", default=None)


def current() -> EvalContext | None:
    """The context of the evaluation running now, or None outside an evaluation."""
    return _current.get()


@contextlib.contextmanager
def evaluating(ctx: EvalContext) -> Iterator[EvalContext]:
    """Set ``ctx`` as the current evaluation for the duration of the block."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
