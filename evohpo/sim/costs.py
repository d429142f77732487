"""What a message of evohpo's MPI transport costs: a model for the discrete-event simulator, fitted to measurements.

All times are in seconds, all sizes in bytes; ``nbytes`` is always the size of the pickled message (what
``MPITransport`` sends), not of the Python object. The parts of one message, as ``MPITransport`` spends them:

* the sender pickles the payload once per ``send_all`` (``serialize + serialize_per_byte * nbytes``) and posts one
  ``Isend`` per destination, freeing each request once ``Test`` says it completed (``post`` per destination);
* the message travels ``transfer(nbytes) = latency + nbytes / bandwidth`` (half an MPI ping-pong's round trip);
* the receiver's ``iprobe`` finds it and ``recv`` unpickles it (``receive + receive_per_byte * nbytes``);
* a poll that finds nothing costs ``empty_poll`` (``EMPTY_PROBES`` iprobes in a row);
* termination's ``Ialltoall`` of int64 counts takes ``collective * ceil(log2(P))`` at ``P`` ranks;
* after each evaluation the loop's code runs slower than back to back (``wake``, once per evaluation): the
  simulator measures the optimizer's CPU warm, as thousands of workers take turns in one process.

The parts overlap a little: a ping-pong's half round trip includes MPI's own work of sending and receiving a
buffer (no pickling), which ``post`` and ``receive`` count again (about a microsecond on shared memory).
``bench/mpi_costs.py`` measures the rows on one node and writes ``costs.json`` beside this module;
``CostModel.load()`` reads it.

A row is a dict ``{"what": WHAT, "bytes": int, "ranks": int, "seconds": float}`` (further keys, e.g. ``"payload"``
or ``"repeats"``, are kept and ignored), ``seconds`` the median of many repeats of:

=============  ========================================================================================
``what``       ``seconds`` is
=============  ========================================================================================
pingpong       half the round trip of a ``bytes``-long buffer between two ranks (``transfer``)
serialize      ``MPI.pickle.dumps`` of a payload that pickles to ``bytes`` bytes
post           one ``Isend`` of ``bytes`` bytes plus ``Test`` until it completed
receive        the ``iprobe`` that finds a ``bytes``-long message plus ``recv`` (unpickling it)
empty_poll     ``EMPTY_PROBES`` iprobes that find nothing (``bytes`` is 0)
collective     ``Ialltoall`` of int64 counts at ``ranks`` ranks, posted and tested until done
wake           the worker loop's CPU between two evaluations (ask and tell) right after a sleep, less the same
               code run back to back: what refilling caches and predictors after an evaluation costs
=============  ========================================================================================

``CostModel.fit`` solves, per kind of row, a least-squares problem in the relative error (each row's equation is
divided by its measured seconds, so that a 64 B row counts as much as a 1 MiB one), with every coefficient
constrained to be >= 0.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

WHATS = ("pingpong", "serialize", "post", "receive", "empty_poll", "collective", "wake")
NUMBERS = ("latency", "bandwidth", "serialize", "serialize_per_byte", "post", "receive", "receive_per_byte",
           "empty_poll", "collective", "wake")
PACKAGE_FILE = "costs.json"


def stages(size: int) -> int:
    """Stages of an all-to-all at ``size`` ranks: ``ceil(log2(size))``, 0 for one rank."""
    if size < 1:
        raise ValueError(f"a communicator has at least one rank, got size={size!r}")
    return (size - 1).bit_length()


@dataclass(frozen=True)
class CostModel:
    """Per-message CPU and wire costs of ``MPITransport`` (seconds, bytes)."""

    latency: float
    bandwidth: float
    serialize: float
    serialize_per_byte: float
    post: float
    receive: float
    receive_per_byte: float
    empty_poll: float
    collective: float
    wake: float = 0.0
    machine: str = ""
    rows: tuple[dict[str, Any], ...] = field(default=(), repr=False, hash=False)

    def __post_init__(self) -> None:
        _check_numbers({name: getattr(self, name) for name in NUMBERS})
        object.__setattr__(self, "rows", tuple(_row(r, i) for i, r in enumerate(self.rows)))

    # -- the model ----------------------------------------------------------------------------------------------
    def transfer(self, nbytes: int) -> float:
        """Time from the send to the arrival of a message of ``nbytes`` bytes."""
        return self.latency + nbytes / self.bandwidth

    def send_cpu(self, nbytes: int, n_dests: int) -> float:
        """Sender CPU of one ``send_all`` of an ``nbytes`` message to ``n_dests`` destinations."""
        return self.serialize + self.serialize_per_byte * nbytes + n_dests * self.post

    def receive_cpu(self, nbytes: int) -> float:
        """Receiver CPU of taking in one ``nbytes`` message (probe hit, recv, unpickle)."""
        return self.receive + self.receive_per_byte * nbytes

    def collective_time(self, size: int) -> float:
        """Time of termination's all-to-all of counts at ``size`` ranks (0 for one rank)."""
        return self.collective * stages(size)

    def predict(self, row: Mapping[str, Any]) -> float:
        """The model's value for a measurement row (see the module docstring)."""
        r = _row(row, 0)
        what, nbytes = r["what"], r["bytes"]
        if what == "pingpong":
            return self.transfer(nbytes)
        if what == "serialize":
            return self.send_cpu(nbytes, 0)
        if what == "post":
            return self.post
        if what == "receive":
            return self.receive_cpu(nbytes)
        if what == "empty_poll":
            return self.empty_poll
        if what == "wake":
            return self.wake
        return self.collective_time(r["ranks"])

    # -- fitting ------------------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, rows: Iterable[Mapping[str, Any]], machine: str = "") -> CostModel:
        """The model whose predictions are nearest, in relative error, to ``rows`` (every kind must be there)."""
        rows = tuple(_row(r, i) for i, r in enumerate(rows))
        by: dict[str, list[dict[str, Any]]] = {w: [r for r in rows if r["what"] == w] for w in WHATS}
        for what in WHATS:
            if not by[what]:
                raise ValueError(f"fit needs at least one {what!r} row, got none")

        def line(what: str) -> tuple[float, float]:
            rs = by[what]
            return tuple(_nnls([[1.0, float(r["bytes"])] for r in rs], [r["seconds"] for r in rs]))  # type: ignore

        latency, per_byte = line("pingpong")
        if per_byte <= 0:
            raise ValueError("fit: the pingpong rows show no cost per byte, so no finite bandwidth; measure sizes "
                             f"that differ by more than the noise, got bytes {[r['bytes'] for r in by['pingpong']]}")
        serialize, serialize_per_byte = line("serialize")
        receive, receive_per_byte = line("receive")
        (post,) = _nnls([[1.0]] * len(by["post"]), [r["seconds"] for r in by["post"]])
        (empty_poll,) = _nnls([[1.0]] * len(by["empty_poll"]), [r["seconds"] for r in by["empty_poll"]])
        (wake,) = _nnls([[1.0]] * len(by["wake"]), [r["seconds"] for r in by["wake"]])
        coll = [r for r in by["collective"] if stages(r["ranks"]) > 0]
        if not coll:
            raise ValueError("fit needs a 'collective' row at more than one rank")
        (collective,) = _nnls([[float(stages(r["ranks"]))] for r in coll], [r["seconds"] for r in coll])
        return cls(latency=latency, bandwidth=1.0 / per_byte, serialize=serialize,
                   serialize_per_byte=serialize_per_byte, post=post, receive=receive,
                   receive_per_byte=receive_per_byte, empty_poll=empty_poll, collective=collective, wake=wake,
                   machine=machine, rows=rows)

    # -- files --------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``from_dict`` reads it back)."""
        out: dict[str, Any] = {name: float(getattr(self, name)) for name in NUMBERS}
        out["machine"] = self.machine
        out["rows"] = [dict(r) for r in self.rows]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CostModel:
        """The model of a ``to_dict`` dict; ValueError naming the field for a missing, negative or infinite one."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a cost model is a dict of fields, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown cost model field(s) {unknown}; the fields are {sorted(known)}")
        missing = [name for name in NUMBERS if name not in d]
        if missing:
            raise ValueError(f"cost model field {missing[0]!r} is missing (all missing: {missing})")
        machine = d.get("machine", "")
        if not isinstance(machine, str):
            raise ValueError(f"cost model field 'machine' must be a string, got {machine!r}")
        rows = d.get("rows", ())
        if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)):
            raise ValueError(f"cost model field 'rows' must be a list of rows, got {type(rows).__name__}")
        return cls(**{name: d[name] for name in NUMBERS}, machine=machine, rows=tuple(rows))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as JSON to ``path``; return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> CostModel:
        """The model in ``path``; None: the one measured for the package (``evohpo/sim/costs.json``)."""
        if path is None:
            text = resources.files(__package__ or "evohpo.sim").joinpath(PACKAGE_FILE).read_text(encoding="utf-8")
            where = PACKAGE_FILE
        else:
            text, where = Path(path).read_text(encoding="utf-8"), str(path)
        try:
            return cls.from_dict(json.loads(text))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _check_numbers(values: Mapping[str, Any]) -> None:
    for name, v in values.items():
        if not _is_real(v):
            raise ValueError(f"cost model field {name!r} must be a number, got {v!r}")
        if not math.isfinite(v):
            raise ValueError(f"cost model field {name!r} must be finite, got {v!r}")
        if v < 0:
            raise ValueError(f"cost model field {name!r} must be >= 0, got {v!r}")
    if "bandwidth" in values and not values["bandwidth"] > 0:
        raise ValueError(f"cost model field 'bandwidth' must be > 0 (bytes/s), got {values['bandwidth']!r}")


def _row(r: Mapping[str, Any], i: int) -> dict[str, Any]:
    """A checked copy of row ``i`` (``what``, integer ``bytes`` >= 0 and ``ranks`` >= 1, finite ``seconds`` > 0)."""
    if not isinstance(r, Mapping):
        raise ValueError(f"row {i} must be a dict, got {r!r}")
    for key in ("what", "bytes", "ranks", "seconds"):
        if key not in r:
            raise ValueError(f"row {i} has no {key!r}: {dict(r)!r}")
    out = dict(r)
    if out["what"] not in WHATS:
        raise ValueError(f"row {i}: 'what' must be one of {WHATS}, got {out['what']!r}")
    for key, low in (("bytes", 0), ("ranks", 1)):
        v = out[key]
        if not _is_real(v) or v != int(v) or v < low:
            raise ValueError(f"row {i}: {key!r} must be an integer >= {low}, got {v!r}")
        out[key] = int(v)
    s = out["seconds"]
    if not _is_real(s) or not math.isfinite(s) or s <= 0:
        raise ValueError(f"row {i}: 'seconds' must be a finite number > 0, got {s!r}")
    out["seconds"] = float(s)
    return out


def _nnls(a: Sequence[Sequence[float]], b: Sequence[float]) -> list[float]:
    """``x >= 0`` minimizing ``sum(((a @ x - b) / b) ** 2)``: every subset of free coefficients is solved by
    least squares, the best one with no negative coefficient wins (exact, and cheap for the 1-2 unknowns here)."""
    a_w = np.asarray(a, dtype=float) / np.asarray(b, dtype=float)[:, None]
    ones = np.ones(len(b))
    n = a_w.shape[1]
    best, best_x = math.inf, np.zeros(n)
    for k in range(n + 1):
        for free in itertools.combinations(range(n), k):
            x = np.zeros(n)
            if free:
                x[list(free)] = np.linalg.lstsq(a_w[:, free], ones, rcond=None)[0]
            if np.any(x < 0):
                continue
            err = float(np.sum((a_w @ x - ones) ** 2))
            if err < best:  # ties: the fewer free coefficients, found first
                best, best_x = err, x
    return [float(v) for v in best_x]
