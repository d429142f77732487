"""Command line: ``python -m evohpo summary|plot|csv|watch|repair DIR`` (also installed as ``evohpo``); ``csv --curves``
writes the learning curves (``Results.curves_frame``).

Exit codes: 0 success, 1 an output file could not be written, 2 bad arguments or an unreadable checkpoint
directory (missing, without journals, an unreadable meta.json, or in use by a search, for ``repair``), with a
message naming the path on stderr. Damaged records are left out with a warning on stderr naming each file and
line; ``repair`` sets them aside. Output into a pipe
closed early (``evohpo csv DIR | head``) ends quietly with 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..journal.damage import DamagedCheckpointWarning
from ..journal.directory import CheckpointInUse
from ..journal.repair import repair
from . import load as res


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evohpo", description="Inspect an evohpo checkpoint directory (finished "
                                "or still being written).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("summary", help="print the best configurations and the evaluation counts")
    s.add_argument("directory", metavar="DIR", help="checkpoint directory of the search")
    s.add_argument("--top", "-n", type=int, default=10, metavar="N", help="how many of the best (default 10)")
    s = sub.add_parser("plot", help="draw progress, the learning curves (when the trainings reported) and the value "
                                    "against each hyperparameter into an image")
    s.add_argument("directory", metavar="DIR", help="checkpoint directory of the search")
    s.add_argument("-o", "--output", default="progress.png", metavar="FILE",
                   help="image file; the suffix picks the format (default progress.png)")
    s.add_argument("--dpi", type=int, default=100, help="resolution (default 100)")
    s = sub.add_parser("csv", help="write one row per finished evaluation (or, with --curves, per reported point) "
                                   "as CSV")
    s.add_argument("directory", metavar="DIR", help="checkpoint directory of the search")
    s.add_argument("-o", "--output", default="-", metavar="FILE", help="CSV file (default: standard output)")
    s.add_argument("--curves", action="store_true", help="write the learning curves instead: one row per point "
                   "that a training reported (id, island, status, step, value, metric.NAME ...)")
    s = sub.add_parser("watch", help="follow a running search: evaluations, rate and best value, live")
    s.add_argument("directory", metavar="DIR", help="checkpoint directory of the search")
    s.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between reads (default 2)")
    s.add_argument("--total", type=int, default=None, metavar="N", help="expected evaluations, for a bar")
    s = sub.add_parser("repair", help="set damaged journal records aside (the originals go to DIR/repair-*/) and "
                                      "keep every good one, so that the search resumes")
    s.add_argument("directory", metavar="DIR", help="checkpoint directory of the search")
    s.add_argument("--dry-run", action="store_true", help="only say what would be done")
    return p


def _fail(command: str, message: str, code: int = 2) -> int:
    print(f"evohpo {command}: error: {message}", file=sys.stderr)
    return code


def _stdout_closed() -> int:
    """The reader of standard output went away (a closed pipe): send what is still buffered, and any later output,
    to os.devnull, so that the interpreter's flush at exit does not fail again; exit 0, as ``head`` wanted."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor behind sys.stdout (replaced by the caller): nothing to do
        pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code (the console script passes it to ``sys.exit``)."""
    args = _parser().parse_args(argv)
    if args.command == "watch":
        return _watch(args)
    if args.command == "repair":
        return _repair(args)
    try:
        results = _load(args.command, args.directory, set())
    except FileNotFoundError as e:  # a missing directory or one without journals
        return _fail(args.command, str(e))
    except ValueError as e:  # an unreadable meta.json
        return _fail(args.command, f"cannot read the checkpoint directory {args.directory!r}: {e}")
    try:
        if args.command == "summary":
            if args.top < 0:
                return _fail("summary", f"--top {args.top} must be >= 0")
            print(results.summary(args.top), flush=True)
        elif args.command == "plot":
            results.plot(args.output, dpi=args.dpi)
            print(f"wrote {args.output} ({results.counts['evaluations']} evaluations)", file=sys.stderr)
        elif args.command == "csv":
            df = results.curves_frame() if args.curves else results.to_dataframe()
            if args.output == "-":
                df.to_csv(sys.stdout, index=False)
                sys.stdout.flush()  # a closed pipe shows here, not at exit
            else:
                df.to_csv(args.output, index=False)
                print(f"wrote {args.output} ({len(df)} rows)", file=sys.stderr)
    except BrokenPipeError as e:
        if args.command == "summary" or getattr(args, "output", None) == "-":
            return _stdout_closed()
        return _fail(args.command, f"cannot write {args.output!r}: {e}", code=1)
    except OSError as e:
        return _fail(args.command, f"cannot write {getattr(args, 'output', '')!r}: {e}", code=1)
    return 0


def _load(command: str, directory: str, warned: set[str]) -> res.Results:
    """``load(directory)``, its warnings (damaged records left out) printed once each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DamagedCheckpointWarning)
        results = res.load(directory)
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, DamagedCheckpointWarning) and text not in warned:
            warned.add(text)
            print(f"evohpo {command}: warning: {text}", file=sys.stderr)
        elif not issubclass(w.category, DamagedCheckpointWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return results


def _repair(args: argparse.Namespace) -> int:
    try:
        report = repair(args.directory, dry_run=args.dry_run)
    except (FileNotFoundError, ValueError, CheckpointInUse) as e:
        return _fail("repair", str(e))
    print(report)
    return 0


def _watch(args: argparse.Namespace) -> int:
    """Re-read the directory every ``--interval`` seconds until every rank stopped (or Ctrl-C).

    A search that ended already shows its final state only (no bar: its rate would be every evaluation over
    the first read's split second). On a running one the bar starts at the evaluations done before watching,
    so that its rate counts only those finished while watching.
    """
    from tqdm import tqdm

    if args.interval <= 0:
        return _fail("watch", f"--interval {args.interval} must be > 0")
    if not Path(args.directory).is_dir():
        return _fail("watch", f"checkpoint directory {args.directory!r} does not exist or is not a directory")
    bar: Any = None
    warned: set[str] = set()
    try:
        while True:
            try:
                results = _load("watch", args.directory, warned)
            except res.NoJournals:
                results = None  # the search has not written its first record yet
            except (FileNotFoundError, ValueError) as e:
                return _fail("watch", str(e))
            if results is not None:
                c = results.counts
                best = results.best(1)
                shown = {f"best {results.metric}": f"{results.value(best[0]):.4g}" if best else "-",
                         "failed": c["failed"], **({"pruned": c["pruned"]} if c["pruned"] else {}),
                         "in_flight": c["in_flight"]}
                if results.ended:
                    if bar is not None:
                        bar.update(c["evaluations"] - bar.n)
                        bar.close()
                    print(f"the search ended: {c['evaluations']} evaluations, "
                          + ", ".join(f"{k}={v}" for k, v in shown.items()), file=sys.stderr)
                    print(results.summary(top=5), flush=True)
                    return 0
                if bar is None:
                    bar = tqdm(total=args.total, initial=c["evaluations"], unit="eval", desc="evaluations",
                               dynamic_ncols=True)
                bar.update(c["evaluations"] - bar.n)
                bar.set_postfix(shown, refresh=True)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return _stdout_closed()
    finally:
        if bar is not None:
            bar.close()
