#!/usr/bin/env python3
"""Is the evohpo search in a checkpoint directory finished, or should the next allocation resume it?

    python slurm/finished.py DIR            # exit 0: finished, 1: not finished, 2: cannot tell
    python slurm/finished.py DIR --count    # print the number of finished evaluations (and exit the same way)

A search is finished when, for every rank of its latest run (``meta.json`` "ranks"), the journal's latest
run ended with a "done" record whose reason says the budget was reached or the space was exhausted.
Not finished: a rank stopped by a signal ("received SIGUSR1", "received SIGTERM (on rank 2)"), by a time
limit of its own, or without any "done" record after its last start (killed, crashed). ``--accept PREFIX``
counts more reasons as finished (e.g. ``--accept "time limit"`` for searches budgeted by time only).

Standard library only (no evohpo, numpy or mpi4py import) so that it runs in any batch shell quickly; it
reads the journals the way ``evohpo.journal.checkpoint`` writes them (one JSON object a line, a torn last line
skipped) and never writes anything.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

FINISHED = ("budget reached", "space exhausted")
JOURNAL = re.compile(r"journal-r(\d{4,})\.jsonl")
FINISHED_RC, UNFINISHED_RC, UNKNOWN_RC = 0, 1, 2


def records(path: Path):
    """The JSON objects of one journal, in order; undecodable lines (a torn last write) are skipped."""
    with open(path, "rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if isinstance(rec, dict):
                yield rec


def rank_state(path: Path) -> tuple[str | None, set[str]]:
    """(reason of the latest run's "done" record or None when that run has none, ids finished in this file)."""
    reason: str | None = None
    finished: set[str] = set()
    for rec in records(path):
        ev = rec.get("ev")
        if ev == "done":
            reason = str(rec.get("reason", ""))
        elif ev in ("start", "resume"):  # a later run (or evaluation) began after the last "done"
            reason = None
        if ev == "end" and rec.get("status") != "interrupted" and isinstance(rec.get("id"), str):
            finished.add(rec["id"])
    return reason, finished


def inspect(directory: Path, accept: tuple[str, ...] = FINISHED) -> tuple[int, str, int]:
    """(exit code, one-line explanation, number of finished evaluations) for ``directory``."""
    if not directory.is_dir():
        return UNKNOWN_RC, f"no checkpoint directory {directory}", 0
    journals = {}
    for p in directory.iterdir():
        m = JOURNAL.fullmatch(p.name)
        if m and p.is_file():
            journals[int(m.group(1))] = p
    if not journals:
        return UNKNOWN_RC, f"no journals (journal-r*.jsonl) in {directory}", 0
    ranks = None
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        if isinstance(meta, dict) and isinstance(meta.get("ranks"), int) and meta["ranks"] > 0:
            ranks = meta["ranks"]  # the latest run's size; journals of higher ranks are from older runs
    except (OSError, ValueError):
        pass
    expected = range(ranks) if ranks is not None else sorted(journals)
    finished_ids: set[str] = set()
    reasons: dict[int, str | None] = {}
    for rank, path in sorted(journals.items()):
        reason, ids = rank_state(path)
        finished_ids |= ids
        if rank in expected:
            reasons[rank] = reason
    n = len(finished_ids)
    missing = [r for r in expected if r not in journals]
    bad = {r: why for r, why in reasons.items() if why is None or not why.startswith(accept)}
    if not missing and not bad:
        return FINISHED_RC, f"finished: {_grouped(reasons)}; {n} evaluations in {directory}", n
    why_not = {r: "no journal" for r in missing}
    why_not.update({r: "no 'done' record after its last start (killed or crashed?)" if why is None else why
                    for r, why in bad.items()})
    return UNFINISHED_RC, f"not finished: {_grouped(why_not)}; {n} evaluations in {directory}", n


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", type=Path, help="the checkpoint directory (holds journal-r*.jsonl)")
    p.add_argument("--accept", action="append", default=[], metavar="PREFIX",
                   help="also count a 'done' reason starting with PREFIX as finished (repeatable)")
    p.add_argument("--count", action="store_true", help="print only the number of finished evaluations")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing; the exit code says it")
    args = p.parse_args(argv)
    try:
        rc, text, n = inspect(args.directory, FINISHED + tuple(args.accept))
    except OSError as e:
        rc, text, n = UNKNOWN_RC, f"cannot read {args.directory}: {e}", 0
    if args.count:
        print(n)
    elif not args.quiet:
        print(text)
    return rc


if __name__ == "__main__":
    sys.exit(main())
