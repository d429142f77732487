"""Command line: ``python -m evohpo summary|plot|csv|watch DIR`` (also installed as ``evohpo``).

Exit codes: 0 success, 1 an output file could not be written, 2 bad arguments or an unreadable checkpoint
directory (missing, without journals, or corrupt), with a message naming the path on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import load as res


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evohpo", description="Inspect an evohpo checkpoint directory (finished "
                                "or still being written).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("summary", help="print the best configurations and the evaluation counts")
    s.add_argument("directory", metavar="DIR", help="checkpoint directory of the search")
    s.add_argument("--top", "-n", type=int, default=10, metavar="N", help="how many of the best (default 10)")
    s = sub.add_parser("plot", help="draw progress and the value against each hyperparameter into an image")
    s.add_argument("directory", metavar="DIR", help="checkpoint directory of the search")
    s.add_argument("-o", "--output", default="progress.png", metavar="FILE",
                   help="image file; the suffix picks the format (default progress.png)")
    s.add_argument("--dpi", type=int, default=100, help="resolution (default 100)")
    s = sub.add_parser("csv", help="write one row per finished evaluation as CSV")
    s.add_argument("directory", metavar="DIR", help="checkpoint directory of the search")
    s.add_argument("-o", "--output", default="-", metavar="FILE", help="CSV file (default: standard output)")
    s = sub.add_parser("watch", help="follow a running search: evaluations, rate and best value, live")
    s.add_argument("directory", metavar="DIR", help="checkpoint directory of the search")
    s.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between reads (default 2)")
    s.add_argument("--total", type=int, default=None, metavar="N", help="expected evaluations, for a bar")
    return p


def _fail(command: str, message: str, code: int = 2) -> int:
    print(f"evohpo {command}: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code (the console script passes it to ``sys.exit``)."""
    args = _parser().parse_args(argv)
    if args.command == "watch":
        return _watch(args)
    try:
        results = res.load(args.directory)
    except FileNotFoundError as e:  # a missing directory or one without journals
        return _fail(args.command, str(e))
    except ValueError as e:  # a corrupt journal or meta.json
        return _fail(args.command, f"cannot read the checkpoint directory {args.directory!r}: {e}")
    try:
        if args.command == "summary":
            if args.top < 0:
                return _fail("summary", f"--top {args.top} must be >= 0")
            print(results.summary(args.top))
        elif args.command == "plot":
            results.plot(args.output, dpi=args.dpi)
            print(f"wrote {args.output} ({results.counts['evaluations']} evaluations)", file=sys.stderr)
        elif args.command == "csv":
            if args.output == "-":
                results.to_csv(sys.stdout)
            else:
                results.to_csv(args.output)
                print(f"wrote {args.output} ({results.counts['evaluations']} rows)", file=sys.stderr)
    except OSError as e:
        return _fail(args.command, f"cannot write {getattr(args, 'output', '')!r}: {e}", code=1)
    return 0


def _watch(args: argparse.Namespace) -> int:
    """Re-read the directory every ``--interval`` seconds until every rank stopped (or Ctrl-C)."""
    from tqdm import tqdm

    if args.interval <= 0:
        return _fail("watch", f"--interval {args.interval} must be > 0")
    if not Path(args.directory).is_dir():
        return _fail("watch", f"checkpoint directory {args.directory!r} does not exist or is not a directory")
    bar: Any = None
    try:
        while True:
            try:
                results = res.load(args.directory)
            except res.NoJournals:
                results = None  # the search has not written its first record yet
            except (FileNotFoundError, ValueError) as e:
                return _fail("watch", str(e))
            if results is not None:
                c = results.counts
                if bar is None:
                    bar = tqdm(total=args.total, unit="eval", desc="evaluations", dynamic_ncols=True)
                bar.update(c["evaluations"] - bar.n)
                best = results.best(1)
                bar.set_postfix({f"best {results.metric}": f"{results.value(best[0]):.4g}" if best else "-",
                                 "failed": c["failed"], "in_flight": c["in_flight"]}, refresh=True)
                if results.ended:
                    bar.close()
                    print(results.summary(top=5))
                    return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
    finally:
        if bar is not None:
            bar.close()
