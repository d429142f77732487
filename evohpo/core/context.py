"""What the running evaluation is: lets a plain ``loss_fn(params)`` learn its id, rank and island."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class EvalContext:
    """The evaluation in progress on this worker."""

    id: str
    rank: int
    island: int
    island_rank: int
    generation: int
    checkpoint: str | None = None


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
