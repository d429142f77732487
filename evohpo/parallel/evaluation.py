"""One evaluation: the loss function called in the evaluation's context, its outcome whatever happens inside."""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.context import EvalContext, evaluating
from ..core.individual import INTERRUPTED
from .signals import EvaluationInterrupted, StopSignals

LossFn = Callable[[dict[str, Any]], float]


@dataclass(frozen=True)
class Outcome:
    """What an evaluation gave: a loss, or why not (``error``); ``status`` INTERRUPTED when a stop signal's grace
    period ran out (else the evolver decides ok or failed); ``exception`` what the loss function raised."""

    loss: float
    error: str | None = None
    status: str | None = None
    exception: Exception | None = None


def evaluate(loss_fn: LossFn, params: dict[str, Any], ctx: EvalContext, signals: StopSignals) -> Outcome:
    """Call ``loss_fn(params)`` with ``ctx`` as ``evohpo.current()``; an exception or a non-finite or non-numeric
    loss is an outcome with its error text (a failed training is a result, not the end of the search)."""
    signals.evaluating = True
    try:
        with evaluating(ctx):
            loss = float(loss_fn(params))
        return Outcome(loss) if math.isfinite(loss) else Outcome(loss, f"loss_fn returned {loss!r}")
    except EvaluationInterrupted:
        return Outcome(math.nan, "interrupted: the grace period after a stop signal ran out", INTERRUPTED)
    except Exception as e:
        return Outcome(math.nan, "".join(traceback.format_exception(type(e), e, e.__traceback__)).strip(),
                       exception=e)
    finally:
        signals.evaluating = False
