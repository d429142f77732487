"""Callbacks: hooks into a search with no-op defaults (``on_start``, ``on_result``, ``on_end``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.goal import Goal, GoalView
from ..core.individual import Individual
from ..core.migration import IslandLayout

if TYPE_CHECKING:  # pragma: no cover
    from .result import SearchResult


@dataclass(frozen=True)
class SearchInfo(GoalView):
    """What a worker is: where it works in the search and what the search optimizes (passed to
    ``Callback.on_start``)."""

    rank: int
    size: int
    island: int
    island_rank: int  # the worker's position among its island's workers (0: the first)
    layout: IslandLayout
    checkpoint: str | None = None
    goal: Goal = Goal()


class Callback:
    """Subclass and override the hooks you need; each runs on every worker."""

    def on_start(self, search: SearchInfo) -> None:
        """The worker starts its loop."""

    def on_result(self, individual: Individual) -> None:
        """An evaluation finished on this worker's island (its own or a peer's, failed ones included).

        ``individual.loss`` is what the search minimizes (minus the value when maximizing); the ``SearchInfo``
        of ``on_start`` turns it into the value: ``search.value(individual)``.
        """

    def on_end(self, result: SearchResult | None) -> None:
        """The search ended with ``result``; None when it ended with an error (clean up here either way)."""


class FunctionCallback(Callback):
    """A plain ``fn(individual)`` as a Callback's ``on_result``."""

    def __init__(self, fn: Callable[[Individual], Any]) -> None:
        self.fn = fn

    def on_result(self, individual: Individual) -> None:
        self.fn(individual)

    def __repr__(self) -> str:
        return f"FunctionCallback({self.fn!r})"


class Callbacks(Callback):
    """Several callbacks called in order; plain functions are taken as ``on_result`` hooks."""

    def __init__(self, callbacks: Sequence[Callback | Callable[[Individual], Any]] = ()) -> None:
        if isinstance(callbacks, (Callback, str, bytes)) or not isinstance(callbacks, Sequence):
            raise ValueError(f"callbacks={callbacks!r} must be a list of Callback objects or functions")
        self.callbacks: list[Callback] = []
        for k, cb in enumerate(callbacks):
            if isinstance(cb, Callback):
                self.callbacks.append(cb)
            elif callable(cb):
                self.callbacks.append(FunctionCallback(cb))
            else:
                raise ValueError(f"callbacks[{k}]={cb!r} must be a Callback or a function fn(individual)")

    def on_start(self, search: SearchInfo) -> None:
        for cb in self.callbacks:
            cb.on_start(search)

    def on_result(self, individual: Individual) -> None:
        for cb in self.callbacks:
            cb.on_result(individual)

    def on_end(self, result: SearchResult | None) -> None:
        for cb in self.callbacks:
            cb.on_end(result)
