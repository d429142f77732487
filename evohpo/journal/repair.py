"""``evohpo repair DIR``: set a checkpoint directory's damaged records aside and keep every good one.

Each journal with damaged records (``journal.damage``) is rewritten without them, atomically; the original
goes whole into ``DIR/repair-YYYYmmdd-HHMMSS/`` first, so nothing is deleted. Leaving a record out can
leave another without its partner (an end whose start was damaged), so the directory is examined again
until nothing is left. A missing or emptied journal is written anew with one ``repair`` record: its results
are lost and a resumed search runs them again. A torn last line is moved aside as a resume would do. The
directory's lock is taken, so a running search is never repaired under its feet.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from . import records
from .damage import examine
from .directory import DirectoryLock, new_folder, write_atomic
from .files import StrPath, journal_files
from .reader import Problem, TornRecordWarning, read_meta, scan
from .writer import _repair_tail, encode_line

PASSES = 10  # leaving records out orphans at most their partners: two passes suffice, ten are plenty


@dataclass
class RepairReport:
    """What ``repair`` found and did."""

    directory: Path
    removed: list[Problem] = field(default_factory=list)  # records set aside (by file, line)
    recreated: list[Problem] = field(default_factory=list)  # journals missing or empty, written anew
    torn: list[Path] = field(default_factory=list)  # journals whose torn last line was moved aside
    backup: Path | None = None  # the originals of every changed journal
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.removed or self.recreated or self.torn)

    def __str__(self) -> str:
        if not self.changed:
            return f"{self.directory}: no damage found; nothing to repair"
        verb = "would set aside" if self.dry_run else "set aside"
        lines = [f"{self.directory}:"]
        lines += [f"  {verb} {p}" for p in self.removed]
        lines += [f"  {'would write' if self.dry_run else 'wrote'} {p.path.name} anew ({p.what})"
                  for p in self.recreated]
        lines += [f"  {'would move' if self.dry_run else 'moved'} the torn last line of {p.name} aside"
                  for p in self.torn]
        if self.backup is not None:
            lines.append(f"  the original journals are in {self.backup}")
        if self.dry_run:
            lines.append("  (a dry run: nothing was changed)")
        return "\n".join(lines)


def repair(directory: StrPath, dry_run: bool = False) -> RepairReport:
    """Mend ``directory`` (see the module); ``dry_run`` only reports. Raises ``CheckpointInUse`` while a
    search runs in it, FileNotFoundError for a missing directory, ValueError for an unreadable meta.json."""
    d = Path(directory)
    journal_files(d)  # FileNotFoundError naming the directory
    report = RepairReport(d, dry_run=dry_run)
    with DirectoryLock(d):
        meta = read_meta(d)
        report.torn = _torn_tails(d, dry_run)
        for _ in range(PASSES):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TornRecordWarning)  # moved aside above (or reported)
                _, problems = examine(d, meta)
            damaged = [p for p in problems if p.line]
            report.recreated += [p for p in problems if not p.line and p not in report.recreated]
            if not damaged:
                break
            report.removed += damaged
            if dry_run:
                break
            report.backup = report.backup or new_folder(d, "repair")
            for path, lines in _by_file(damaged).items():
                _drop_lines(path, lines, report.backup)
        if not dry_run:
            for p in report.recreated:
                _recreate(p, report)
    return report


def _torn_tails(d: Path, dry_run: bool) -> list[Path]:
    out = []
    for _, path in journal_files(d):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TornRecordWarning)
            if dry_run:
                for _ in scan(path, problems=[]):  # the torn-line warning only
                    pass
            else:
                _repair_tail(path)
        if caught:
            out.append(path)
    return out


def _by_file(problems: list[Problem]) -> dict[Path, set[int]]:
    out: dict[Path, set[int]] = {}
    for p in problems:
        out.setdefault(p.path, set()).add(p.line)
    return out


def _keep_original(path: Path, backup: Path) -> None:
    """Copy ``path`` into ``backup`` once (the first pass that changes it), durably."""
    target = backup / path.name
    if not target.exists():
        write_atomic(target, path.read_bytes())


def _drop_lines(path: Path, lines: set[int], backup: Path) -> None:
    """Rewrite ``path`` without the given line numbers (1-based, as ``scan`` counts them)."""
    _keep_original(path, backup)
    with open(path, "rb") as f:
        kept = [raw for n, raw in enumerate(f, 1) if n not in lines]
    write_atomic(path, b"".join(raw if raw.endswith(b"\n") else raw + b"\n" for raw in kept))


def _recreate(problem: Problem, report: RepairReport) -> None:
    """A missing or emptied journal, written anew with one record saying so."""
    if problem.path.exists():
        report.backup = report.backup or new_folder(report.directory, "repair")
        _keep_original(problem.path, report.backup)
    note = f"written anew by evohpo repair: the journal was {problem.what}"
    write_atomic(problem.path, encode_line(records.repaired(note, time.time())))

