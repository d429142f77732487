"""Damaged checkpoint directories: what is wrong with one (``examine``), and why a resume refuses it
(``DamagedCheckpoint``). ``journal.repair`` mends what this finds.

Damage is what a crash cannot do: a line in the middle of a journal that is not a JSON record (a torn last
line is what a crash leaves, and is handled on its own), a malformed record, a configuration of another
search (names or values outside the space in meta.json), and a journal that meta.json says exists but that
is missing or empty (every run's journal starts with an ``open`` record).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.space import Space
from .files import META, StrPath, journal_path
from .reader import REPAIR_HINT, Problem
from .restore import Fits, Restored, restore

SHOWN = 5  # problems named in a message; the rest are counted


def damage_report(directory: StrPath, problems: list[Problem]) -> str:
    """The first problems, one a line, then how many more, then the repair path."""
    lines = [f"  {p}" for p in problems[:SHOWN]]
    if len(problems) > SHOWN:
        lines.append(f"  ... and {len(problems) - SHOWN} more")
    hint = REPAIR_HINT.replace("DIR", str(directory))
    return f"the checkpoint directory {str(directory)!r} is damaged:\n" + "\n".join(lines) + f"\n{hint}"


class DamagedCheckpoint(ValueError):
    """A checkpoint directory with damaged or missing journals: resuming would lose or mix results."""

    def __init__(self, directory: StrPath, problems: list[Problem]) -> None:
        self.directory, self.problems = Path(directory), list(problems)
        super().__init__(damage_report(directory, problems) + ", or resume=False starts afresh (the old files "
                                                                "are moved to a backup folder, not deleted)")

    def __reduce__(self) -> tuple[type, tuple[Path, list[Problem]]]:  # pickled to the other ranks
        return type(self), (self.directory, self.problems)


class DamagedCheckpointWarning(UserWarning):
    """``load`` left damaged records out (``Results.problems`` lists them)."""


def expected_journals(meta: Mapping[str, Any] | None) -> tuple[int, bool]:
    """How many journals (ranks 0..n-1) meta.json says the directory holds, and whether each starts with an
    ``open`` record (so that an empty one was emptied). Older meta.json files only give the latest ranks."""
    meta = meta or {}
    n = meta.get("journals")
    if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
        return n, True
    ranks = meta.get("ranks")
    return (ranks, False) if isinstance(ranks, int) and not isinstance(ranks, bool) and ranks > 0 else (0, False)


def missing_journals(directory: StrPath, meta: Mapping[str, Any] | None) -> list[Problem]:
    """The journals meta.json promises that are missing, or empty although each run writes a first record."""
    n, opened = expected_journals(meta)
    out = []
    for rank in range(n):
        path = journal_path(directory, rank)
        if not path.is_file():
            out.append(Problem(path, 0, f"missing, but {META} says {n} ranks wrote journals here (its results "
                                        "would be lost and run again)"))
        elif opened and _blank(path):
            out.append(Problem(path, 0, "empty, but every run writes an 'open' record first: its records were "
                                        "deleted (its results would be lost and run again)"))
    return out


def _blank(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096)
        return not head.strip() and not f.read(1)


def meta_space(meta: Mapping[str, Any] | None) -> Space | None:
    """The space meta.json describes (None without one); a ValueError naming a parameter it cannot read."""
    desc = meta.get("space") if meta else None
    return Space.from_description(desc) if isinstance(desc, dict) and desc else None


def meta_fits(meta: Mapping[str, Any] | None) -> Fits | None:
    """Why a configuration is not of the space ``meta`` describes (``Space.misfit``); None without a space."""
    space = meta_space(meta)
    return space.misfit if space is not None else None


def examine(directory: StrPath, meta: Mapping[str, Any] | None) -> tuple[Restored, list[Problem]]:
    """The journals of ``directory`` without their damaged records, and every problem: missing journals,
    then damaged records (checked against the space that ``meta`` describes, when it has one)."""
    problems = missing_journals(directory, meta)
    restored = restore(directory, fits=meta_fits(meta), problems=problems)
    return restored, problems
