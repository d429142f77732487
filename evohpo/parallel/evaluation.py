"""One evaluation: the loss function called in the evaluation's context, its outcome whatever happens inside."""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.context import EvalContext, evaluating
from ..core.goal import as_loss
from ..core.individual import INTERRUPTED, PRUNED
from ..core.reporting import Pruned
from .signals import EvaluationInterrupted, StopSignals

LossFn = Callable[[dict[str, Any]], float]


@dataclass(frozen=True)
class Outcome:
    """What an evaluation gave: a loss, or why not (``error``); ``status`` INTERRUPTED when a stop signal's grace
    period ran out, PRUNED when the pruner stopped it (its loss: the last one reported), else None (the evolver
    decides ok or failed); ``exception`` what the loss function raised; ``left`` whether it left in the middle
    (raised, was interrupted or called sys.exit: a collective of it may be waiting on other ranks) instead of
    returning or stopping at a report."""

    loss: float
    error: str | None = None
    status: str | None = None
    exception: Exception | None = None
    left: bool = False


def evaluate(loss_fn: LossFn, params: dict[str, Any], ctx: EvalContext, signals: StopSignals) -> Outcome:
    """Call ``loss_fn(params)`` with ``ctx`` as ``evohpo.current()``; an exception or a non-finite or non-numeric
    loss is an outcome with its error text (a failed training is a result, not the end of the search)."""
    signals.evaluating = True
    reporter = ctx.reporter
    try:
        with evaluating(ctx):
            value = loss_fn(params)
        if reporter is not None and reporter.pruned_at is not None:  # it caught Pruned and returned anyway
            return _pruned(reporter)
        loss = as_loss(value)
        if loss is None:
            msg = (f"TypeError: loss_fn returned {value!r} of type {type(value).__name__}: it must return a real "
                   "number (float, int or a 0-d array)")
            return Outcome(math.nan, msg, exception=TypeError(msg[len("TypeError: "):]))
        return Outcome(loss) if math.isfinite(loss) else Outcome(loss, f"loss_fn returned {loss!r}")
    except Pruned as e:
        if reporter is None or reporter.last_loss is None:  # raised by the loss function itself, before any report
            return Outcome(math.nan, str(e), status=PRUNED)
        return _pruned(reporter, str(e))
    except EvaluationInterrupted:
        return Outcome(math.nan, "interrupted: the grace period after a stop signal ran out", INTERRUPTED, left=True)
    except SystemExit as e:  # not an Exception: left alone, it would end this rank mid-search and hang its peers
        return Outcome(math.nan, f"loss_fn called sys.exit({e.code!r}); an evaluation cannot end the search "
                                 "(os._exit would end the job: the evaluation then re-runs on resume)", left=True)
    except Exception as e:
        return Outcome(math.nan, "".join(traceback.format_exception(type(e), e, e.__traceback__)).strip(),
                       exception=e, left=True)
    finally:
        signals.evaluating = False


def _pruned(reporter: Any, why: str | None = None) -> Outcome:
    """A training the pruner stopped: its last reported loss, and why (the reporter's reason first: a loss function
    may raise a Pruned of its own after catching the search's)."""
    return Outcome(reporter.last_loss, reporter.pruned_why or why, status=PRUNED)
