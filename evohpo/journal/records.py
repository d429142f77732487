"""Every kind of journal record, built and parsed in one place (standard library only).

A journal holds one JSON object a line; ``"ev"`` says which kind (``Event``), ``"t"`` when it was written:

- ``start``: an evaluation began: id, params, island, gen;
- ``end``: it ended: id, loss (None when failed; a pruned one's is its last reported value), status, error, step
  (the highest step it reported, when it reported); the rest is in its start record (format /1
  repeated the start's fields in every end record);
- ``report``: a point of an evaluation's learning curve (``evohpo.report``): id, step, loss (minus the value when
  maximizing), metrics when given; a later ``start`` of the same id begins a new attempt, whose curve starts over;
- ``state``: what resuming needs besides the results (rng, generation counter, propagator state, evals done);
- ``migrate``: an individual left ``from`` for ``to`` (hop: how often it has moved; mode: migrate or pollinate);
- ``open``: this rank opened its journal (first of every run: a journal without records was emptied);
- ``repair``: ``evohpo repair`` wrote this journal anew (it was missing or empty: its results are lost);
- ``resume``: this rank resumed a search (how many evaluations were restored, how many unfinished it re-runs);
- ``done``: this rank stopped (reason, evals done).
"""

from __future__ import annotations

import enum
import math
import os
import socket
from collections.abc import Mapping
from typing import Any

from ..core.individual import STATUSES, Individual

FORMAT = "evohpo-journal/2"
READABLE = ("evohpo-journal/1", FORMAT)  # /1: every "end" record repeats its start record's fields
MODES = ("migrate", "pollinate")


class Event(str, enum.Enum):
    """The kinds of journal records (the value is what ``"ev"`` holds)."""

    START = "start"
    END = "end"
    REPORT = "report"
    STATE = "state"
    MIGRATE = "migrate"
    RESUME = "resume"
    DONE = "done"
    OPEN = "open"
    REPAIR = "repair"


# --- building -------------------------------------------------------------------------------------------
def start(ind_id: str, params: Mapping[str, Any], island: int, gen: int, t: float,
          promoted: bool = False) -> dict[str, Any]:
    """An evaluation starts: what it runs, where, and when; ``promoted``: a pruned configuration trained again to
    its end (the pruner does not judge it, also when it re-runs after a restart)."""
    rec = {"ev": Event.START.value, "id": ind_id, "params": params, "island": island, "gen": gen, "t": t}
    if promoted:
        rec["promoted"] = True
    return rec


def end(ind: Individual) -> dict[str, Any]:
    """An evaluation ended: its outcome only (the rest is in its start record)."""
    rec = {"ev": Event.END.value, "id": ind.id, "loss": ind.loss if math.isfinite(ind.loss) else None,
           "status": ind.status, "t": ind.end}
    if ind.error is not None:
        rec["error"] = ind.error
    if ind.step is not None:
        rec["step"] = ind.step
    return rec


def report(ind_id: str, step: int, loss: float, t: float, metrics: Mapping[str, float] | None = None) -> dict[str, Any]:
    """A point of evaluation ``ind_id``'s learning curve: its (signed) loss after ``step`` steps."""
    rec = {"ev": Event.REPORT.value, "id": ind_id, "step": step, "loss": loss, "t": t}
    if metrics:
        rec["metrics"] = dict(metrics)
    return rec


def state(rank: int, evals: int, evolver_state: Mapping[str, Any], t: float) -> dict[str, Any]:
    """What resuming needs beyond the results: the evolver's state (without its population) and evals done."""
    return {"ev": Event.STATE.value, "rank": rank, "gen": evolver_state["generation"], "evals": evals,
            **{k: v for k, v in evolver_state.items() if k != "generation"}, "t": t}


def migrate(ind_id: str, src: int, dest: int, hop: int, mode: str, t: float) -> dict[str, Any]:
    """An individual left island ``src`` for ``dest`` (moved, or copied when ``mode`` is "pollinate")."""
    return {"ev": Event.MIGRATE.value, "id": ind_id, "from": src, "to": dest, "hop": hop, "mode": mode, "t": t}


def opened(rank: int, t: float) -> dict[str, Any]:
    """This rank opened its journal for a run (the host and process, for whoever reads it later)."""
    return {"ev": Event.OPEN.value, "rank": rank, "host": socket.gethostname(), "pid": os.getpid(), "t": t}


def repaired(note: str, t: float) -> dict[str, Any]:
    """``evohpo repair`` wrote this journal anew, for the reason in ``note``."""
    return {"ev": Event.REPAIR.value, "note": note, "t": t}


def resume(resumed: int, unfinished: int, t: float) -> dict[str, Any]:
    """This rank resumed a search of ``resumed`` finished evaluations and re-runs ``unfinished`` of them."""
    return {"ev": Event.RESUME.value, "resumed": resumed, "unfinished": unfinished, "t": t}


def done(reason: str, evals: int, t: float) -> dict[str, Any]:
    """This rank stopped, for ``reason``, having finished ``evals`` evaluations."""
    return {"ev": Event.DONE.value, "reason": reason, "evals": evals, "t": t}


def evolver_state(rec: Mapping[str, Any]) -> dict[str, Any]:
    """The evolver state (``Evolver.load_state_dict``) in a ``state`` record."""
    return {"rng": rec["rng"], "generation": rec["gen"],
            **({"propagator": rec["propagator"]} if "propagator" in rec else {})}


# --- parsing --------------------------------------------------------------------------------------------
def time_of(rec: Mapping[str, Any]) -> float:
    """The record's wall-clock time "t" (0.0 when absent)."""
    t = rec.get("t")
    return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else 0.0


def integer(rec: Mapping[str, Any], key: str, where: str) -> int:
    """``rec[key]`` as an int, or a ValueError naming the line, the key and the value."""
    v = rec.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{where}: {rec.get('ev')!r} record needs an int {key!r}, got {key}={v!r}")
    return v


def ident(rec: Mapping[str, Any], where: str) -> str:
    """``rec["id"]``, which must be a str."""
    v = rec.get("id")
    if not isinstance(v, str):
        raise ValueError(f"{where}: {rec.get('ev')!r} record needs a str 'id', got id={v!r}")
    return v


def check_start(rec: Mapping[str, Any], where: str) -> str:
    """The id of a valid ``start`` record (it needs a str id and dict params)."""
    ind_id = ident(rec, where)
    if not isinstance(rec.get("params"), dict):
        raise ValueError(f"{where}: 'start' record needs a dict 'params', got params={rec.get('params')!r}")
    return ind_id


def joined(end_rec: dict[str, Any], start_rec: Mapping[str, Any] | None, rank: int, where: str) -> dict[str, Any]:
    """An ``end`` record completed from its ``start`` record (format /1 end records are complete already)."""
    if "params" in end_rec:
        return end_rec
    if start_rec is None:
        raise ValueError(f"{where}: 'end' record of id={end_rec.get('id')!r} has no earlier 'start' record in this "
                         "journal (nor params of its own)")
    return {"params": start_rec.get("params"), "island": start_rec.get("island", 0),
            "rank": start_rec.get("rank", rank), "generation": start_rec.get("gen", 0),
            "start": time_of(start_rec), **end_rec, "end": time_of(end_rec)}


def individual(rec: Mapping[str, Any], rank: int, where: str) -> Individual:
    """An Individual from a joined ``end`` record (``Individual.to_dict()`` plus "ev" and "t")."""
    d = dict(rec)
    ident(d, where)
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


def pending(rec: Mapping[str, Any], rank: int) -> dict[str, Any]:
    """What to re-run, from a ``start`` or an interrupted ``end`` record (joined)."""
    gen = rec.get("gen", rec.get("generation", 0))
    out = {"id": rec["id"], "params": rec["params"], "island": rec.get("island", 0),
           "rank": rec.get("rank", rank), "gen": gen, "ev": rec["ev"], "t": time_of(rec)}
    if rec.get("promoted") is True:
        out["promoted"] = True
    return out


def point(rec: Mapping[str, Any], where: str) -> tuple[str, int, float]:
    """(id, step, loss) of a ``report`` record."""
    ind_id, step = ident(rec, where), integer(rec, "step", where)
    loss = rec.get("loss")
    if isinstance(loss, bool) or not isinstance(loss, (int, float)) or step < 1:
        raise ValueError(f"{where}: 'report' record needs an int 'step' >= 1 and a number 'loss', got "
                         f"step={step!r}, loss={loss!r}")
    return ind_id, step, float(loss)


def migration(rec: Mapping[str, Any], where: str) -> tuple[str, int, int, str]:
    """(id, destination island, hop, mode) of a ``migrate`` record; hop is 0 for a pollination."""
    ind_id, dest = ident(rec, where), integer(rec, "to", where)
    mode = rec.get("mode", "migrate")
    if mode not in MODES:
        raise ValueError(f"{where}: mode={mode!r} must be one of {MODES}")
    return ind_id, dest, integer(rec, "hop", where) if mode == "migrate" else 0, mode
