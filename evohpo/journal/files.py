"""The files of a checkpoint directory and their names (standard library only).

    DIR/meta.json                  what the search is (format, space, island layout, ranks); written atomically
    DIR/lock                       locked (flock) by rank 0 of the search running now; says which process holds it
    DIR/journal-r0003.jsonl        every event of rank 3, one JSON object a line, appended and flushed
    DIR/journal-r0003.jsonl.torn   bytes of a write cut short by a crash, moved aside when the journal reopens
    DIR/backup-YYYYmmdd-HHMMSS/    an earlier search, moved here when a search starts afresh in DIR
"""

from __future__ import annotations

import os
import re
from pathlib import Path

StrPath = str | os.PathLike

META = "meta.json"
LOCK = "lock"
TORN = ".torn"
JOURNAL = re.compile(r"journal-r(\d{4,})\.jsonl")


def journal_path(directory: StrPath, rank: int) -> Path:
    """The journal file of ``rank`` in ``directory``."""
    return Path(directory) / f"journal-r{rank:04d}.jsonl"


def torn_path(journal: Path) -> Path:
    """Where the torn tail of ``journal`` is kept."""
    return journal.with_name(journal.name + TORN)


def is_search_file(name: str) -> bool:
    """Whether ``name`` belongs to the search in a directory (meta, a journal or a journal's torn tail)."""
    if name.endswith(TORN):
        return JOURNAL.fullmatch(name[: -len(TORN)]) is not None
    return name == META or JOURNAL.fullmatch(name) is not None


def journal_files(directory: StrPath) -> list[tuple[int, Path]]:
    """(rank, path) of every journal in ``directory``, by rank."""
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"checkpoint directory={str(d)!r} does not exist or is not a directory")
    found = []
    for p in d.iterdir():
        m = JOURNAL.fullmatch(p.name)
        if m and p.name == journal_path(d, int(m.group(1))).name and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)
