"""The checkpoint directory: its lock (held by rank 0 for the whole search), its meta.json, the check that
a directory belongs to this search, and the backup of an earlier search when one starts afresh."""

from __future__ import annotations

import itertools
import json
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.goal import MINIMIZE, Goal
from .damage import DamagedCheckpoint, expected_journals, missing_journals
from .files import LOCK, META, StrPath, is_search_file, journal_files
from .reader import read_meta
from .records import FORMAT, READABLE
from .writer import Journal


class CheckpointMismatch(ValueError):
    """The checkpoint directory belongs to another search: its space, island layout or format differs."""


class CheckpointInUse(RuntimeError):
    """Another running search holds the checkpoint directory's lock."""


class UnlockedWarning(UserWarning):
    """The file system cannot lock files: nothing stops a second job from writing the same checkpoint."""


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

        make_directory(self.path.parent)
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


def make_directory(d: Path) -> None:
    """Create the checkpoint directory ``d`` (and its parents) unless it exists; a ValueError naming it when it,
    or a parent, is a file."""
    try:
        d.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"checkpoint directory={str(d)!r} exists and is not a directory (or a parent of it is "
                         "a file): give the path of a directory, created if missing") from None


def fsync_dir(directory: Path) -> None:
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


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old or the new file, never a partial one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _write_json_atomic(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode("utf-8"))


def _timestamp() -> str:
    """Local time for backup folder names."""
    return time.strftime("%Y%m%d-%H%M%S")


def new_folder(directory: Path, prefix: str) -> Path:
    """A new folder ``prefix-YYYYmmdd-HHMMSS[-n]`` in ``directory``."""
    stamp = _timestamp()
    for n in itertools.count():
        target = directory / (f"{prefix}-{stamp}" if n == 0 else f"{prefix}-{stamp}-{n}")
        try:
            target.mkdir()
            return target
        except FileExistsError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


MODELS = "models"  # where the Lightning objective keeps the weights of the best trainings (``hpo.objective``)


def model_path(checkpoint_dir: str | os.PathLike[str], trial_id: str) -> Path:
    """Where the weights of trial ``trial_id`` are kept: ``checkpoint_dir/models/trial-<id>.pt``."""
    name = f"trial-{trial_id}".replace("/", "_").replace(os.sep, "_")
    return Path(checkpoint_dir) / MODELS / f"{name}.pt"


def _backup(directory: Path) -> Path:
    """Move meta.json, every journal (and torn tail) and the kept models (``models/``: trial ids repeat in a new
    search) into a new backup-YYYYmmdd-HHMMSS[-n] folder."""
    target = new_folder(directory, "backup")
    for p in sorted(directory.iterdir()):
        if (p.is_file() and is_search_file(p.name)) or (p.is_dir() and p.name == MODELS):
            os.replace(p, target / p.name)
    fsync_dir(target)
    fsync_dir(directory)
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
    if _describe(old) != _describe(new):  # as JSON: [0, 1] == [False, True] in Python
        parts = [f"added {n!r} {_describe(new[n])}" for n in new if n not in old]
        parts += [f"removed {n!r} {_describe(old[n])}" for n in old if n not in new]
        parts += [f"changed {n!r}: checkpoint {_describe(old[n])}, now {_describe(new[n])}"
                  for n in old if n in new and _describe(old[n]) != _describe(new[n])]
        raise CheckpointMismatch(f"search space differs from the checkpoint {path}: {'; '.join(parts)}{hint}")
    old_i, new_i = stored.get("islands"), meta.get("islands")
    same = len(old_i) == len(new_i) if isinstance(old_i, list) and isinstance(new_i, list) else old_i == new_i
    if not same:
        raise CheckpointMismatch(f"island layout differs: the checkpoint {path} has {_layout(old_i)}, "
                                 f"this run has {_layout(new_i)}{hint}")
    old_d, new_d = stored.get("direction") or MINIMIZE, meta.get("direction") or MINIMIZE  # older: minimize
    if old_d != new_d:
        raise CheckpointMismatch(f"direction differs: the checkpoint {path} has direction={old_d!r}, this run has "
                                 f"direction={new_d!r} (its losses are signed for {old_d}){hint}")
    old_f, new_f = stored.get("fingerprint"), meta.get("fingerprint")
    if old_f != new_f:
        raise CheckpointMismatch(f"objective differs: the checkpoint {path} was written with "
                                 f"{_fingerprint_diff(old_f, new_f)}{hint}")


def _fingerprint_diff(old: Any, new: Any) -> str:
    """Each key that differs between two fingerprints, old against new (or the two values whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [k for k in {**old, **new} if old.get(k, "<unset>") != new.get(k, "<unset>")]
        return "; ".join(f"{k}={old.get(k, '<unset>')!r}, this run has {k}={new.get(k, '<unset>')!r}" for k in keys)
    return f"fingerprint={old!r}, this run has fingerprint={new!r}"


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
    make_directory(d)
    status = "fresh"
    journals = journal_files(d)
    if journals and resume:
        stored = read_meta(d)
        if stored is None:
            raise CheckpointMismatch(f"{d} holds {len(journals)} journal(s) but no {META}, so they cannot be "
                                     "checked against this search; resume=False starts afresh (the old files "
                                     "are moved to a backup folder, not deleted)")
        _check_meta(stored, new, d / META)
        missing = missing_journals(d, stored)
        if missing:
            raise DamagedCheckpoint(d, missing)
        status = "resume"
        new["journals"] = max(new.get("ranks", 0), expected_journals(stored)[0], journals[-1][0] + 1)
    else:
        if journals:
            _backup(d)
        new["journals"] = new.get("ranks", 0)
    _write_json_atomic(d / META, new)
    return status


class CheckpointDirectory:
    """Where one search keeps its journals: rank 0 ``claim``s it (lock, then check or start it) and holds the
    lock until ``close``; every rank writes its journal there."""

    def __init__(self, path: StrPath) -> None:
        self.path = Path(path)
        self.lock = DirectoryLock(self.path)
        self.journal: Journal | None = None

    def claim(self, meta: Mapping[str, Any], resume: bool) -> str:
        """Lock the directory, then ``prepare`` it: "resume" or "fresh" (rank 0, before any journal opens).

        The lock comes first, so that a running search's journals are neither read nor moved; it is released
        again when preparing fails.
        """
        self.lock.acquire()
        try:
            return prepare(self.path, meta, resume)
        except BaseException:
            self.lock.release()
            raise

    def open_journal(self, rank: int, fsync_interval: float = 10.0) -> Journal:
        """This rank's journal (opened once; closed by ``close``)."""
        if self.journal is None:
            self.journal = Journal(self.path, rank, fsync_interval=fsync_interval)
        return self.journal

    def close(self) -> None:
        """Close the journal (fsync) and release the lock; closing twice is a no-op."""
        try:
            if self.journal is not None:
                self.journal.close()
        finally:
            self.lock.release()

    def __enter__(self) -> CheckpointDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def search_meta(space: Mapping[str, Any], islands: list[int], ranks: int, strategy: Any = None,
                goal: Goal | None = None, fingerprint: Any = None, pruner: str | None = None,
                max_steps: int | None = None, ranks_per_worker: int = 1) -> dict[str, Any]:
    """What meta.json says of a search: the format, the space's description, the island sizes, the ranks,
    the strategy's name (None for one given as an object), the goal's direction and metric, what
    identifies the objective (``fingerprint``: a JSON-able mapping or string, or None), and the pruner and the
    most steps a training reports and the ranks per worker (for readers: a resume may change them); ``ranks`` counts
    workers."""
    if fingerprint is not None:
        try:
            fingerprint = json.loads(json.dumps(fingerprint, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise ValueError(f"fingerprint={fingerprint!r} must be a JSON-able mapping or string: {e}") from None
        if not isinstance(fingerprint, (dict, str)):
            raise ValueError(f"fingerprint={fingerprint!r} must be a mapping or a string")
    return {"format": FORMAT, "space": dict(space), "islands": list(islands), "ranks": ranks,
            "strategy": strategy if isinstance(strategy, str) else None, **(goal or Goal()).to_meta(),
            "fingerprint": fingerprint, "pruner": pruner, "max_steps": max_steps, "ranks_per_worker": ranks_per_worker}
