#!/usr/bin/env python3
"""Is the evohpo search in a checkpoint directory finished, or should the next allocation resume it?

    python slurm/finished.py DIR            # exit 0: finished, 1: not finished, 2: cannot tell
    python slurm/finished.py DIR --count    # print the number of finished evaluations (and exit the same way)

The definition is ``evohpo.journal.finished``'s (the one ``evohpo summary`` uses too): finished when every
rank of the latest run (meta.json's "ranks") has a "done" record after its last start, whose reason says the
budget was reached or the space was exhausted. Not finished: a rank stopped by a signal ("received SIGUSR1",
"received SIGTERM (on rank 2)"), by a time limit of its own, or without any "done" record after its last start
(killed, crashed). ``--accept PREFIX`` counts more reasons as finished (e.g. ``--accept "time limit"`` for
searches budgeted by time only).

Quick in any batch shell: the modules it uses need only the standard library (neither numpy nor mpi4py is
imported), and they are found next to this script when evohpo is not installed. It never writes anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from evohpo.journal import finished as _finished
    from evohpo.journal.files import journal_files
except ImportError:  # not installed: the source tree this script belongs to
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from evohpo.journal import finished as _finished
    from evohpo.journal.files import journal_files

FINISHED = _finished.FINISHED_REASONS
FINISHED_RC, UNFINISHED_RC, UNKNOWN_RC = 0, 1, 2


def inspect(directory: Path, accept: tuple[str, ...] = FINISHED) -> tuple[int, str, int]:
    """(exit code, one-line explanation, number of finished evaluations) for ``directory``."""
    if not directory.is_dir():
        return UNKNOWN_RC, f"no checkpoint directory {directory}", 0
    if not journal_files(directory):
        return UNKNOWN_RC, f"no journals (journal-r*.jsonl) in {directory}", 0
    state = _finished.inspect(directory, accept)
    rc = FINISHED_RC if state.finished else UNFINISHED_RC
    return rc, f"{state.describe()}; {state.evaluations} evaluations in {directory}", state.evaluations


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
