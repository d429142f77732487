"""The writer: one rank's append-only JSON-lines journal, each record one unbuffered write, O(1) however long
the search. A torn last line (a crash during a write) is moved aside before appending."""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

from .files import StrPath, journal_path, torn_path
from .reader import TornRecordWarning, decode

try:  # fast journal writes; reading stays with json (orjson would turn 128-bit rng state ints into floats)
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency, but the standard library writes the same lines
    orjson = None  # type: ignore[assignment]

_CHUNK = 1 << 16


def _plain(obj: Any) -> Any:
    """JSON fallback for numpy scalars and arrays (e.g. an MT19937 rng state)."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"a journal record cannot hold {type(obj).__name__}: {obj!r}")


_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), default=_plain)  # built once, not per record
_ORJSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE if orjson is not None else 0


def _finite(record: dict[str, Any]) -> bool:
    """False if a float of ``record`` or of a dict in it (params) is infinite or NaN."""
    for v in record.values():
        if v.__class__ is float:
            if v - v != 0:  # inf - inf and nan - nan are nan
                return False
        elif v.__class__ is dict:
            for w in v.values():
                if w.__class__ is float and w - w != 0:
                    return False
    return True


def encode_line(record: dict[str, Any]) -> bytes:
    """``record`` as one line of compact JSON ending in a newline; ValueError for an infinite or NaN float.

    orjson when installed (the same text, ~15x faster), else the standard library; records orjson cannot
    write (an int beyond 64 bits, as in an rng state) go to the standard library too.
    """
    if orjson is not None:
        try:
            line = orjson.dumps(record, option=_ORJSON)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
        else:  # orjson writes null for inf and NaN: look closer only when a null is there
            if b"null" not in line or _finite(record):
                return line
    return (_ENCODER.encode(record) + "\n").encode("ascii")  # the encoder escapes non-ASCII and newlines


class Journal:
    """Append-only JSON-lines journal of one rank: DIR/journal-r{rank:04d}.jsonl."""

    def __init__(self, directory: StrPath, rank: int, fsync_interval: float = 10.0) -> None:
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
            raise ValueError(f"rank={rank!r} must be an int >= 0")
        if (not isinstance(fsync_interval, (int, float)) or isinstance(fsync_interval, bool)
                or not fsync_interval >= 0):
            raise ValueError(f"fsync_interval={fsync_interval!r} must be a number of seconds >= 0")
        self.rank = rank
        self.fsync_interval = float(fsync_interval)
        self.path = journal_path(directory, rank)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _repair_tail(self.path)
        self._file: Any = open(self.path, "ab", buffering=0)  # O_APPEND, unbuffered: one write() per record
        self._last_sync = time.monotonic()

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line in one unbuffered write; fsync every ``fsync_interval`` seconds."""
        if self._file is None:
            raise ValueError(f"journal {self.path} is closed")
        if not isinstance(record, dict) or "ev" not in record:
            raise ValueError(f"record must be a dict with an 'ev' key, got {type(record).__name__} "
                             f"with keys {sorted(record) if isinstance(record, dict) else None}")
        if "t" not in record:
            record = {**record, "t": time.time()}
        try:
            line = encode_line(record)
        except ValueError as e:
            raise ValueError(f"record ev={record['ev']!r} id={record.get('id')!r} is not valid JSON ({e}); "
                             "write None for an infinite or NaN loss") from None
        try:
            n = self._file.write(line)
            if n != len(line):  # a regular file takes it in one call; a short write (full disk, signal) goes on
                data = memoryview(line)[n:]
                while data:
                    data = data[self._file.write(data):]
            now = time.monotonic()
            if now - self._last_sync >= self.fsync_interval:
                os.fsync(self._file.fileno())
                self._last_sync = now
        except OSError as e:  # ENOSPC, EDQUOT, EIO: say which file (the records before this one are kept)
            raise OSError(e.errno, f"cannot write the journal {self.path}: {e.strerror or e}", str(self.path)
                          ) from e

    def close(self) -> None:
        """Flush, fsync and close; closing twice is a no-op."""
        if self._file is None:
            return
        try:
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
            self._file = None

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._file is None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, fsync_interval={self.fsync_interval!r})"


class NullJournal:
    """A journal that records nothing (checkpointing off)."""

    def __init__(self, directory: StrPath | None = None, rank: int = 0, fsync_interval: float = 10.0) -> None:
        self.rank = rank
        self.fsync_interval = float(fsync_interval)
        self.path = Path(os.devnull)

    def write(self, record: dict[str, Any]) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""

    @property
    def closed(self) -> bool:
        """Always False: there is nothing to close."""
        return False

    def __enter__(self) -> NullJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _last_line_span(f: Any, size: int) -> tuple[int, int]:
    """(start, end) of the last non-blank line, read backwards in chunks; (0, 0) for a blank file."""
    end: int | None = None
    pos = size
    while pos > 0:
        n = min(_CHUNK, pos)
        pos -= n
        f.seek(pos)
        chunk = f.read(n)
        limit = n
        if end is None:
            stripped = chunk.rstrip()
            if not stripped:
                continue
            end = pos + len(stripped)
            limit = len(stripped)
        j = chunk.rfind(b"\n", 0, limit)
        if j >= 0:
            return pos + j + 1, end
    return 0, end or 0


def _repair_tail(path: Path) -> None:
    """Move an undecodable last line (a write cut short) to PATH.torn so that new lines append cleanly."""
    try:
        f = open(path, "r+b")
    except FileNotFoundError:
        return
    with f:
        size = f.seek(0, os.SEEK_END)
        start, end = _last_line_span(f, size)
        if end == 0:
            return
        f.seek(start)
        last = f.read(end - start)
        if decode(last)[0] is not None:
            if b"\n" not in f.read():  # a complete record without its newline: terminate it
                f.write(b"\n")
            return
        f.seek(start)
        torn = f.read()
        with open(torn_path(path), "ab") as side:
            side.write(torn if torn.endswith(b"\n") else torn + b"\n")
            side.flush()
            os.fsync(side.fileno())
        f.truncate(start)
        f.flush()
        os.fsync(f.fileno())
    warnings.warn(f"{path}: the last line ({len(torn)} bytes, cut short by a crash) was moved to "
                  f"{torn_path(path).name} before appending", TornRecordWarning, stacklevel=3)
