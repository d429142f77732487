"""Per-step reports from inside a loss function: ``evohpo.report(step, value)`` and ``evohpo.Pruned``.

A training calls ``report`` after each epoch (or any step). The search records the point and, when its pruner
decides that this training is not worth finishing, ``report`` raises ``Pruned``; the worker catches it and keeps
the training as a ``pruned`` result (its step, its last value, its curve). Which evaluation reports is known from
``core.context``: the worker hands each evaluation a ``Reporter``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from .context import current
from .goal import as_loss

BUDGET_USED = "the search's step budget is used up"  # how the reason of a training stopped by the budget begins


class Pruned(Exception):  # noqa: N818 (what users catch and read: "except evohpo.Pruned")
    """Raised by ``report`` when the search stops the training; let it propagate (or re-raise it). Its text, the
    step, value and ``reason``, is kept as the pruned result's ``error`` (why it did not run to its end)."""

    def __init__(self, step: int, value: float, reason: str = "") -> None:
        self.step, self.value, self.reason = step, value, reason
        super().__init__(f"pruned at step {step} (value {value:g}){': ' + reason if reason else ''}")


class Reporter(Protocol):
    """What the worker gives each evaluation to take its reports (``parallel.reports.TrialReporter``)."""

    def report(self, step: int, value: float, metrics: Mapping[str, float]) -> None: ...


def report(step: int, value: float, **metrics: float) -> None:
    """Record ``value`` (in the search's metric, as the loss function returns it) after ``step`` steps of the
    evaluation running now; raises ``Pruned`` when the search stops this training. ``metrics`` are kept with the
    point (numbers). Steps must increase; a value that is not a finite number is an error (the evaluation fails
    with its text)."""
    ctx = current()
    reporter = getattr(ctx, "reporter", None)
    if reporter is None:
        raise RuntimeError(f"evohpo.report(step={step!r}, value={value!r}) was called outside an evaluation: call "
                           "it inside the loss function that evohpo.optimize runs")
    reporter.report(step, value, metrics)


def check_point(step: Any, value: Any, metrics: Mapping[str, Any], last: int | None,
                max_steps: int | None) -> tuple[int, float, dict[str, float]]:
    """``(step, value, metrics)`` as int and floats, or a ValueError/TypeError naming what is wrong: a step that is
    not an int >= 1, not above the last one (``last``) or above ``max_steps``; a value or metric that is not a
    finite real number."""
    if (step.__class__ is int and value.__class__ is float and not metrics and step >= 1
            and (last is None or step > last) and (max_steps is None or step <= max_steps) and value - value == 0):
        return step, value, {}  # the common case, checked in a few comparisons (a report runs after every step)
    where = f"evohpo.report(step={step!r}, value={value!r})"
    if isinstance(step, bool) or not isinstance(step, int) and not (hasattr(step, "__index__")):
        raise TypeError(f"{where}: step must be an int, got {type(step).__name__}")
    step = int(step.__index__())
    if step < 1:
        raise ValueError(f"{where}: step must be >= 1 (the steps done so far, e.g. epochs)")
    if last is not None and step <= last:
        raise ValueError(f"{where}: step must increase, but step {last} was reported before (a step going "
                         "backwards: report once per step, with the number of steps done)")
    if max_steps is not None and step > max_steps:
        raise ValueError(f"{where}: step is beyond max_steps={max_steps} of the search (train at most max_steps "
                         "steps, or raise max_steps)")
    x = as_loss(value)
    if x is None:
        raise TypeError(f"{where}: value must be a real number, got {type(value).__name__}")
    if not math.isfinite(x):
        raise ValueError(f"{where}: value is not finite (the training diverged?)")
    out = {}
    for name, v in metrics.items():
        m = as_loss(v)
        if m is None:
            raise TypeError(f"{where}: metric {name}={v!r} must be a real number")
        out[name] = m
    return step, x, out

