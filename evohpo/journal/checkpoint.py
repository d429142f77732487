"""Checkpoints: one append-only JSON-lines journal per rank, a meta file, and restore from the journals.

Layout of a checkpoint directory::

    DIR/meta.json                  what the search is (format, space, island layout, ranks); written atomically
    DIR/lock                       locked (flock) by rank 0 of the search running now; says which process holds it
    DIR/journal-r0003.jsonl        every event of rank 3, one JSON object a line, appended and flushed
    DIR/journal-r0003.jsonl.torn   bytes of a write cut short by a crash, moved aside when the journal reopens
    DIR/backup-YYYYmmdd-HHMMSS/    an earlier search, moved here by ``prepare(..., resume=False)``

Loading uses ``json`` only: a checkpoint never executes code. Restore places every finished evaluation on
the island it lives on now (after migrations); ``Restored.hops`` lets migration continue its move counts.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.individual import INTERRUPTED, STATUSES, Individual

try:  # fast journal writes; reading stays with json (orjson would turn 128-bit rng state ints into floats)
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency, but the standard library writes the same lines
    orjson = None  # type: ignore[assignment]

FORMAT = "evohpo-journal/2"
READABLE = ("evohpo-journal/1", FORMAT)  # /1: every "end" record repeats its start record's fields
META = "meta.json"
MODES = ("migrate", "pollinate")
_JOURNAL = re.compile(r"journal-r(\d{4,})\.jsonl")
_TORN = ".torn"
_CHUNK = 1 << 16

StrPath = str | os.PathLike


class CheckpointMismatch(ValueError):
    """The checkpoint directory belongs to another search: its space, island layout or format differs."""


class CheckpointInUse(RuntimeError):
    """Another running search holds the checkpoint directory's lock."""


class UnlockedWarning(UserWarning):
    """The file system cannot lock files: nothing stops a second job from writing the same checkpoint."""


class TornRecordWarning(UserWarning):
    """A journal's last line was cut short (a crash during a write) and is skipped."""


def journal_path(directory: StrPath, rank: int) -> Path:
    """The journal file of ``rank`` in ``directory``."""
    return Path(directory) / f"journal-r{rank:04d}.jsonl"


# --- writing ----------------------------------------------------------------------------------------------
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


def start_record(ind_id: str, params: Mapping[str, Any], island: int, gen: int, t: float) -> dict[str, Any]:
    """The record written when an evaluation starts: what it runs, where, and when (its start time)."""
    return {"ev": "start", "id": ind_id, "params": params, "island": island, "gen": gen, "t": t}


def end_record(ind: Individual) -> dict[str, Any]:
    """The record written when an evaluation ends: its outcome only (the rest is in its start record)."""
    rec = {"ev": "end", "id": ind.id, "loss": ind.loss if math.isfinite(ind.loss) else None, "status": ind.status,
           "t": ind.end}
    if ind.error is not None:
        rec["error"] = ind.error
    return rec


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
        self.lock: DirectoryLock | None = None  # the directory's lock, released with the journal (rank 0)

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
        n = self._file.write(line)
        if n != len(line):  # a regular file takes it in one call; a short write (full disk, signal) goes on
            data = memoryview(line)[n:]
            while data:
                data = data[self._file.write(data):]
        now = time.monotonic()
        if now - self._last_sync >= self.fsync_interval:
            os.fsync(self._file.fileno())
            self._last_sync = now

    def close(self) -> None:
        """Flush, fsync and close; closing twice is a no-op."""
        if self._file is None:
            return
        try:
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
            self._file = None
            if self.lock is not None:
                self.lock.release()

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


def _decode(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """The record on one line, or None and why not."""
    try:
        rec = json.loads(raw.decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError
        return None, f"{type(e).__name__}: {e}"
    if not isinstance(rec, dict):
        return None, f"a JSON {type(rec).__name__}, not an object"
    return rec, ""


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
        if _decode(last)[0] is not None:
            if b"\n" not in f.read():  # a complete record without its newline: terminate it
                f.write(b"\n")
            return
        f.seek(start)
        torn = f.read()
        with open(path.with_name(path.name + _TORN), "ab") as side:
            side.write(torn if torn.endswith(b"\n") else torn + b"\n")
            side.flush()
            os.fsync(side.fileno())
        f.truncate(start)
        f.flush()
        os.fsync(f.fileno())
    warnings.warn(f"{path}: the last line ({len(torn)} bytes, cut short by a crash) was moved to "
                  f"{path.name + _TORN} before appending", TornRecordWarning, stacklevel=3)


# --- reading ----------------------------------------------------------------------------------------------
def _journal_files(directory: StrPath) -> list[tuple[int, Path]]:
    """(rank, path) of every journal in ``directory``, by rank."""
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"checkpoint directory={str(d)!r} does not exist or is not a directory")
    found = []
    for p in d.iterdir():
        m = _JOURNAL.fullmatch(p.name)
        if m and p.name == journal_path(d, int(m.group(1))).name and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def _scan(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of one journal; a torn last line is skipped with a warning."""
    bad: tuple[int, str] | None = None
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            if bad is not None:
                raise ValueError(f"{path}: line {bad[0]} is not a JSON record ({bad[1]}) and is not the last "
                                 "line: the journal is corrupt")
            rec, why = _decode(raw)
            if rec is None:
                bad = (lineno, why)
                continue
            yield lineno, rec
    if bad is not None:
        warnings.warn(f"{path}: skipping torn last line {bad[0]} ({bad[1]})", TornRecordWarning, stacklevel=2)


def read_records(directory: StrPath) -> Iterator[dict[str, Any]]:
    """Every record of every journal (by rank, then in write order); "rank" set to the file's rank if absent."""
    files = _journal_files(directory)  # raise here, not at the first next()

    def records() -> Iterator[dict[str, Any]]:
        for rank, path in files:
            for _, rec in _scan(path):
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


# --- restore ----------------------------------------------------------------------------------------------
@dataclass
class Restored:
    """What the journals say: finished evaluations, where they live, what to re-run, and each rank's state."""

    individuals: list[Individual] = field(default_factory=list)
    copies: list[tuple[int, Individual]] = field(default_factory=list)
    unfinished: list[dict[str, Any]] = field(default_factory=list)
    states: dict[int, dict[str, Any]] = field(default_factory=dict)
    evaluations: dict[int, int] = field(default_factory=dict)
    hops: dict[str, int] = field(default_factory=dict)  # id -> how often it migrated (the highest hop seen)
    ran_on: dict[str, int] = field(default_factory=dict)  # id -> the island whose worker evaluated it

    @property
    def n_evaluations(self) -> int:
        """Finished evaluations (ok, failed or pruned), each counted once."""
        return len(self.individuals)


def _int(rec: dict[str, Any], key: str, where: str) -> int:
    """``rec[key]`` as an int, or a ValueError naming the line, the key and the value."""
    v = rec.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{where}: {rec.get('ev')!r} record needs an int {key!r}, got {key}={v!r}")
    return v


def _ident(rec: dict[str, Any], where: str) -> str:
    """``rec["id"]``, which must be a str."""
    v = rec.get("id")
    if not isinstance(v, str):
        raise ValueError(f"{where}: {rec.get('ev')!r} record needs a str 'id', got id={v!r}")
    return v


def _time(rec: dict[str, Any]) -> float:
    """The record's wall-clock time "t" (0.0 when absent)."""
    t = rec.get("t")
    return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else 0.0


def _joined(end: dict[str, Any], start: dict[str, Any] | None, rank: int, where: str) -> dict[str, Any]:
    """An "end" record completed from its "start" record (format /1 end records are complete already)."""
    if "params" in end:
        return end
    if start is None:
        raise ValueError(f"{where}: 'end' record of id={end.get('id')!r} has no earlier 'start' record in this "
                         "journal (nor params of its own)")
    return {"params": start.get("params"), "island": start.get("island", 0), "rank": start.get("rank", rank),
            "generation": start.get("gen", 0), "start": _time(start), **end, "end": _time(end)}


def _individual(rec: dict[str, Any], rank: int, where: str) -> Individual:
    """An Individual from a joined "end" record (Individual.to_dict() plus "ev" and "t")."""
    d = dict(rec)
    _ident(d, where)
    if "generation" not in d and "gen" in d:
        d["generation"] = d["gen"]
    d.setdefault("rank", rank)
    if not isinstance(d.get("params"), dict):
        raise ValueError(f"{where}: 'end' record needs a dict 'params', got params={d.get('params')!r}")
    if d.get("status", "ok") not in STATUSES:
        raise ValueError(f"{where}: status={d.get('status')!r} must be one of {STATUSES}")
    try:
        return Individual.from_dict(d)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: bad 'end' record: {e}") from None


def _pending(rec: dict[str, Any], rank: int) -> dict[str, Any]:
    """The normalized form of a "start" or interrupted "end" record: what to re-run."""
    gen = rec.get("gen", rec.get("generation", 0))
    return {"id": rec["id"], "params": rec["params"], "island": rec.get("island", 0),
            "rank": rec.get("rank", rank), "gen": gen, "ev": rec["ev"], "t": _time(rec)}


def restore(directory: StrPath) -> Restored:
    """Rebuild the search from every journal in ``directory`` (see ``Restored``)."""
    files = _journal_files(directory)
    order = itertools.count()
    ends: dict[str, tuple[tuple[float, int], Individual, int]] = {}  # id -> (when, individual, file rank)
    pending: dict[str, tuple[tuple[float, int], dict[str, Any]]] = {}  # latest start / interrupted end
    moves: dict[str, tuple[tuple[int, float, int], int]] = {}  # id -> ((hop, t, order), island)
    pollinated: dict[tuple[int, str], None] = {}  # (island, id), insertion-ordered
    states: dict[int, dict[str, Any]] = {}
    for rank, path in files:
        started: dict[str, dict[str, Any]] = {}  # id -> its start record in this journal, until its end
        for lineno, rec in _scan(path):
            where, ev, when = f"{path}: line {lineno}", rec.get("ev"), (_time(rec), next(order))
            if ev == "end":
                rec = _joined(rec, started.pop(_ident(rec, where), None), rank, where)
                ind = _individual(rec, rank, where)
                if ind.status == INTERRUPTED:
                    if ind.id not in pending or when >= pending[ind.id][0]:
                        pending[ind.id] = (when, _pending(rec, rank))
                elif ind.id not in ends or when >= ends[ind.id][0]:
                    ends[ind.id] = (when, ind, rank)
            elif ev == "start":
                ident = _ident(rec, where)
                if not isinstance(rec.get("params"), dict):
                    raise ValueError(f"{where}: 'start' record needs a dict 'params', got "
                                     f"params={rec.get('params')!r}")
                started[ident] = rec
                if ident not in pending or when >= pending[ident][0]:
                    pending[ident] = (when, _pending(rec, rank))
            elif ev == "migrate":
                ident, to = _ident(rec, where), _int(rec, "to", where)
                mode = rec.get("mode", "migrate")
                if mode == "migrate":
                    key = (_int(rec, "hop", where), *when)
                    if ident not in moves or key >= moves[ident][0]:
                        moves[ident] = (key, to)
                elif mode == "pollinate":
                    pollinated[(to, ident)] = None
                else:
                    raise ValueError(f"{where}: mode={mode!r} must be one of {MODES}")
            elif ev == "state":
                states[rank] = rec
            # "resume", "done" and unknown events are informational
    out = Restored(states=states, evaluations={rank: 0 for rank, _ in files},
                   hops={ident: key[0] for ident, (key, _) in moves.items()})
    by_id: dict[str, Individual] = {}
    for ident, (_, ind, rank) in ends.items():
        out.ran_on[ident] = ind.island
        if ident in moves and moves[ident][1] != ind.island:
            ind = ind.moved(moves[ident][1])
        by_id[ident] = ind
        out.evaluations[rank] += 1
    out.individuals = sorted(by_id.values(), key=lambda i: i.end)
    out.copies = [(island, by_id[ident].moved(island)) for island, ident in pollinated
                  if ident in by_id and by_id[ident].island != island]
    out.unfinished = [rec for _, rec in sorted(v for k, v in pending.items() if k not in ends)]
    return out


# --- the directory ----------------------------------------------------------------------------------------
LOCK = "lock"


class DirectoryLock:
    """An exclusive ``flock`` on DIR/lock for as long as one search writes to DIR (taken by its rank 0).

    A second search on the same directory fails at once with ``CheckpointInUse`` naming the holder. The lock
    goes with the process (a crash or SIGKILL releases it). On file systems without locks (some Lustre
    mounts) an ``UnlockedWarning`` is given and the search goes on unlocked.
    """

    def __init__(self, directory: StrPath) -> None:
        self.path = Path(directory) / LOCK
        self._fd: int | None = None

    def acquire(self) -> DirectoryLock:
        import fcntl
        import socket

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise CheckpointInUse(f"checkpoint directory {str(self.path.parent)!r} is in use by another running "
                                  f"search ({holder}); give each job its own directory, or wait for it to end"
                                  ) from None
        except OSError as e:  # ENOLCK, EOPNOTSUPP, ENOSYS: a file system without locks
            os.close(fd)
            warnings.warn(f"cannot lock {self.path} ({e}): make sure no other job writes to this checkpoint "
                          "directory", UnlockedWarning, stacklevel=2)
            return self
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                 .encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Unlock (closing the file releases the flock); releasing twice is a no-op."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

def _fsync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` to ``path`` so that a reader sees the old or the new file, never a partial one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=2, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _timestamp() -> str:
    """Local time for backup folder names."""
    return time.strftime("%Y%m%d-%H%M%S")


def _backup(directory: Path) -> Path:
    """Move meta.json and every journal (and torn tail) into a new backup-YYYYmmdd-HHMMSS[-n] folder."""
    stamp = _timestamp()
    for n in itertools.count():
        target = directory / (f"backup-{stamp}" if n == 0 else f"backup-{stamp}-{n}")
        try:
            target.mkdir()
            break
        except FileExistsError:
            continue
    for p in sorted(directory.iterdir()):
        torn = p.name.endswith(_TORN) and _JOURNAL.fullmatch(p.name[: -len(_TORN)])
        if p.is_file() and (p.name == META or _JOURNAL.fullmatch(p.name) or torn):
            os.replace(p, target / p.name)
    _fsync_dir(target)
    _fsync_dir(directory)
    return target


def _describe(desc: Any) -> str:
    """A parameter description as compact, key-sorted JSON."""
    return json.dumps(desc, sort_keys=True)


def _layout(islands: Any) -> str:
    """An island layout in words: "2 islands [2, 2]"."""
    return f"{len(islands)} islands {islands}" if isinstance(islands, list) else f"islands={islands!r}"


def _check_meta(stored: dict[str, Any], meta: dict[str, Any], path: Path) -> None:
    """Raise CheckpointMismatch when ``stored`` (from ``path``) is not the same search as ``meta``."""
    hint = "; resume=False starts afresh (the old files are moved to a backup folder, not deleted)"
    if stored.get("format") not in READABLE:
        raise CheckpointMismatch(f"checkpoint format differs: {path} has format={stored.get('format')!r}, "
                                 f"this version reads format {' or '.join(map(repr, READABLE))}{hint}")
    old, new = stored.get("space") or {}, meta.get("space") or {}
    if old != new:
        parts = [f"added {n!r} {_describe(new[n])}" for n in new if n not in old]
        parts += [f"removed {n!r} {_describe(old[n])}" for n in old if n not in new]
        parts += [f"changed {n!r}: checkpoint {_describe(old[n])}, now {_describe(new[n])}"
                  for n in old if n in new and old[n] != new[n]]
        raise CheckpointMismatch(f"search space differs from the checkpoint {path}: {'; '.join(parts)}{hint}")
    old_i, new_i = stored.get("islands"), meta.get("islands")
    same = len(old_i) == len(new_i) if isinstance(old_i, list) and isinstance(new_i, list) else old_i == new_i
    if not same:
        raise CheckpointMismatch(f"island layout differs: the checkpoint {path} has {_layout(old_i)}, "
                                 f"this run has {_layout(new_i)}{hint}")


def prepare(directory: StrPath, meta: Mapping[str, Any], resume: bool = True) -> str:
    """Make ``directory`` ready for this search (rank 0 only, before any journal opens): "resume" or "fresh".

    With journals present, ``resume=True`` checks that they belong to this search (same space, same number
    of islands; the number of ranks may change) and ``resume=False`` moves them and meta.json into
    ``backup-YYYYmmdd-HHMMSS[-n]/``. Either way meta.json is then (re)written atomically.
    """
    if not isinstance(meta, Mapping):
        raise ValueError(f"meta must be a dict, got {type(meta).__name__}")
    if not isinstance(resume, bool):
        raise ValueError(f"resume={resume!r} must be True or False")
    try:  # normalized as it will read back (tuples become lists) so the comparison is like with like
        new = json.loads(json.dumps(dict(meta), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ValueError(f"meta must be JSON-serializable: {e}") from None
    new.setdefault("format", FORMAT)
    if new["format"] != FORMAT:
        raise ValueError(f"meta format={new['format']!r} must be {FORMAT!r}")
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise ValueError(f"checkpoint directory={str(d)!r} exists and is not a directory")
    d.mkdir(parents=True, exist_ok=True)
    status = "fresh"
    journals = _journal_files(d)
    if journals and resume:
        stored = read_meta(d)
        if stored is None:
            raise CheckpointMismatch(f"{d} holds {len(journals)} journal(s) but no {META}, so they cannot be "
                                     "checked against this search; resume=False starts afresh (the old files "
                                     "are moved to a backup folder, not deleted)")
        _check_meta(stored, new, d / META)
        status = "resume"
    elif journals:
        _backup(d)
    _write_json_atomic(d / META, new)
    return status
