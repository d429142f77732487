"""Reading journals back: each line decoded with ``json`` only (a checkpoint never executes code); a torn last
line (being appended right now, or cut short by a crash) is skipped with a ``TornRecordWarning``."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import META, StrPath, journal_files


class TornRecordWarning(UserWarning):
    """A journal's last line was cut short (a crash during a write) and is skipped."""


REPAIR_HINT = "python -m evohpo repair DIR sets damaged records aside and keeps every good one"


@dataclass(frozen=True)
class Problem:
    """A damaged part of a checkpoint directory: a record at ``line`` of ``path``, or the whole file (line 0)."""

    path: Path
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}: line {self.line}: {self.what}" if self.line else f"{self.path}: {self.what}"


def decode(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """The record on one line, or None and why not."""
    try:
        rec = json.loads(raw.decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError
        return None, f"{type(e).__name__}: {e}"
    if not isinstance(rec, dict):
        return None, f"a JSON {type(rec).__name__}, not an object"
    return rec, ""


def scan(path: Path, skip_bad: bool = False,
         problems: list[Problem] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of one journal; a torn last line is skipped with a warning.

    An undecodable line before the last is damage: a ValueError naming the file and line, unless it is
    added to ``problems`` (then the line is passed over) or ``skip_bad`` (passed over silently, for a quick
    look that must not fail).
    """
    bad: tuple[int, str] | None = None
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            if bad is not None and not skip_bad:
                what = f"not a JSON record ({bad[1]}) and not the last line"
                if problems is None:
                    raise ValueError(f"{path}: line {bad[0]} is {what}: the journal is damaged; {REPAIR_HINT}")
                problems.append(Problem(path, bad[0], what))
            bad = None
            rec, why = decode(raw)
            if rec is None:
                bad = (lineno, why)
                continue
            yield lineno, rec
    if bad is not None and not skip_bad:
        warnings.warn(f"{path}: skipping torn last line {bad[0]} ({bad[1]})", TornRecordWarning, stacklevel=2)


def read_records(directory: StrPath) -> Iterator[dict[str, Any]]:
    """Every record of every journal (by rank, then in write order); "rank" set to the file's rank if absent."""
    files = journal_files(directory)  # raise here, not at the first next()

    def records() -> Iterator[dict[str, Any]]:
        for rank, path in files:
            for _, rec in scan(path):
                rec.setdefault("rank", rank)
                yield rec

    return records()


def read_meta(directory: StrPath) -> dict[str, Any] | None:
    """The stored meta.json of ``directory``, or None when there is none."""
    path = Path(directory) / META
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        meta = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} holds a JSON {type(meta).__name__}, not an object")
    return meta
