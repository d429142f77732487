"""The one definition of a finished search (standard library only: slurm/finished.py imports it in any shell).

A rank's latest run *ended* when its journal has a ``done`` record after its last ``start``, ``open`` or ``resume``.
The search *ended* when every rank of its latest run (meta.json's "ranks") ended, and it is *finished*
when, in addition, every such rank stopped for a finishing reason: its budget was reached or the space was
exhausted. A rank stopped by a signal or a time limit of its own ended but did not finish: the next job
resumes it. ``accept`` adds reasons to count as finished (e.g. "time limit" for searches budgeted by time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import journal_files
from .reader import read_meta, scan
from .records import Event

FINISHED_REASONS = ("budget reached", "space exhausted")
_NOT_ENDED = "no 'done' record after its last start (running, killed or crashed)"


@dataclass
class RunTracker:
    """Follows journal records, rank by rank: each rank's latest reason to stop and the finished evaluations."""

    reasons: dict[int, str | None] = field(default_factory=dict)  # None: the latest run has not ended
    finished_ids: set[str] = field(default_factory=set)

    def begin(self, rank: int) -> None:
        """A journal of ``rank`` exists (without a record, its run has not ended)."""
        self.reasons.setdefault(rank, None)

    def see(self, rank: int, rec: Mapping[str, Any]) -> None:
        """Take in the next record of ``rank``'s journal."""
        ev = rec.get("ev")
        if ev == Event.DONE:
            self.reasons[rank] = str(rec.get("reason", ""))
        elif ev in (Event.START, Event.RESUME, Event.OPEN) or rank not in self.reasons:
            self.reasons[rank] = None  # a later run (or evaluation) began after the last "done"
        if ev == Event.END and rec.get("status") != "interrupted" and isinstance(rec.get("id"), str):
            self.finished_ids.add(rec["id"])

    def state(self, ranks: int | None, accept: tuple[str, ...] = FINISHED_REASONS) -> SearchState:
        """The search's state, for a latest run of ``ranks`` ranks (None: every rank that wrote a journal)."""
        expected = range(ranks) if ranks is not None else sorted(self.reasons)
        return SearchState({r: self.reasons[r] for r in expected if r in self.reasons},
                           [r for r in expected if r not in self.reasons], len(self.finished_ids), tuple(accept))


@dataclass(frozen=True)
class SearchState:
    """Where a search stands: each rank's reason to stop (None: not ended), ranks without a journal."""

    reasons: dict[int, str | None]
    missing: list[int]
    evaluations: int
    accept: tuple[str, ...] = FINISHED_REASONS

    @property
    def ended(self) -> bool:
        """Every rank of the latest run stopped (for whatever reason)."""
        return bool(self.reasons) and not self.missing and all(r is not None for r in self.reasons.values())

    @property
    def finished(self) -> bool:
        """Every rank of the latest run stopped for a finishing reason: nothing is left to resume."""
        return self.ended and all(r.startswith(self.accept) for r in self.reasons.values() if r is not None)

    def describe(self) -> str:
        """One line: "finished: budget reached [ranks 0, 1]" or "not finished: ..." with the reasons."""
        if self.finished:
            return f"finished: {_grouped(dict(self.reasons))}"
        why: dict[int, str | None] = {r: "no journal" for r in self.missing}
        why.update({r: _NOT_ENDED if reason is None else reason for r, reason in self.reasons.items()
                    if reason is None or not reason.startswith(self.accept)})
        return f"not finished: {_grouped(why)}"


def inspect(directory: str | Path, accept: tuple[str, ...] = FINISHED_REASONS) -> SearchState:
    """Read ``directory``'s journals (passing over undecodable lines) and say where its search stands."""
    tracker = RunTracker()
    for rank, path in journal_files(directory):
        tracker.begin(rank)
        for _, rec in scan(path, skip_bad=True):
            tracker.see(rank, rec)
    return tracker.state(latest_ranks(directory), accept)


def latest_ranks(directory: str | Path) -> int | None:
    """The number of ranks of the latest run (meta.json), or None when meta.json is missing or unreadable."""
    try:
        meta = read_meta(directory)
    except (OSError, ValueError):
        return None
    ranks = meta.get("ranks") if meta else None
    return ranks if isinstance(ranks, int) and not isinstance(ranks, bool) and ranks > 0 else None


def _grouped(reasons: dict[int, str | None]) -> str:
    """ "reason [ranks 0, 2]; other reason [rank 1]" with the most common reason first."""
    by: dict[str | None, list[int]] = {}
    for rank, why in sorted(reasons.items()):
        by.setdefault(why, []).append(rank)
    parts = []
    for why, ranks in sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[1])):
        shown = ", ".join(map(str, ranks[:8])) + (f", ... ({len(ranks)} ranks)" if len(ranks) > 8 else "")
        parts.append(f"{why} [rank{'s' if len(ranks) > 1 else ''} {shown}]")
    return "; ".join(parts)
