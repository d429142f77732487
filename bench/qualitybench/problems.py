"""Problems: the continuous test functions, the mixed synthetic problem and the table problems, over one neutral
space format: ``{name: ("float", lo, hi, log) | ("int", lo, hi) | ("choice", values)}``.

Standard library only at module level: the same code runs in evohpo's venv and in the clean peers' venv, which
imports evohpo's numpy-only test functions from the source tree in use (evohpo is not installed there).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import ROOT, evohpo_functions
from tables.table import load_table, names

SNAPSHOT_ENV = "QUALITY_EVOHPO_DIR"  # set by the driver: the directory holding its snapshot of evohpo/


@dataclass
class Problem:
    """A loss over a neutral space description with a known minimum."""

    key: str
    space: dict[str, tuple]
    loss: Callable[[dict[str, Any]], float]
    minimum: float
    table: Any = None  # a bench.tables Table (its .space goes to evohpo unchanged)
    single_run: bool = False  # a table answering one stored training per configuration (Table.single_run)

    def loss_at(self, seed: int) -> Callable[[dict[str, Any]], float]:
        """The loss a run with benchmark seed ``seed`` sees (single-run tables draw their training per seed)."""
        return functools.partial(self.table.single_run, seed=seed) if self.single_run else self.loss

    def regret(self, loss: float) -> float:
        return float(loss) - self.minimum

    def score(self, rec: dict[str, Any]) -> dict[str, float]:
        """The fields that score a result line: ``regret`` = best loss - minimum; on a single-run table the
        incumbent (``best_params``, lowest observed value) is scored by its mean over all the table's seeds,
        ``incumbent_mean``, so ``regret`` = that mean - the table's best mean (never below 0)."""
        if not self.single_run:
            return {"regret": self.regret(rec["best"])}
        mean = self.table.lookup(rec["best_params"])
        return {"incumbent_mean": mean, "regret": self.regret(mean)}


MIX_OPT_LR = {"sgd": 1e-1, "rmsprop": 1e-3, "adam": 1e-3, "adamw": 3e-3}
MIX_OPT_PEN = {"sgd": 0.3, "rmsprop": 0.2, "adam": 0.05, "adamw": 0.0}
MIX_ACT_PEN = {"relu": 0.1, "tanh": 0.25, "sigmoid": 0.6, "gelu": 0.0}
MIX_BATCH = (16, 32, 64, 128, 256)


def mixed_loss(p: dict[str, Any]) -> float:
    """A synthetic 6-parameter HPO-like loss: log-float lr whose best value depends on the optimizer (string),
    int layers, float dropout, string activation, ordered numeric batch size; minimum 0 at lr=3e-3, adamw,
    gelu, batch 64, 4 layers, dropout 0.25."""
    opt, act = str(p["optimizer"]), str(p["activation"])
    b = MIX_BATCH.index(int(p["batch"]))
    return (0.5 * (math.log10(float(p["lr"])) - math.log10(MIX_OPT_LR[opt])) ** 2 + MIX_OPT_PEN[opt]
            + MIX_ACT_PEN[act] + 0.05 * abs(b - 2) + 0.04 * (int(p["layers"]) - 4) ** 2
            + (float(p["dropout"]) - 0.25) ** 2)


MIXED_SPACE: dict[str, tuple] = {
    "lr": ("float", 1e-5, 1.0, True),
    "layers": ("int", 1, 8),
    "dropout": ("float", 0.0, 0.8, False),
    "activation": ("choice", ("relu", "tanh", "sigmoid", "gelu")),
    "optimizer": ("choice", ("sgd", "rmsprop", "adam", "adamw")),
    "batch": ("choice", MIX_BATCH),
}


def evohpo_tree() -> Path:
    """The source tree whose evohpo is in use: the driver's snapshot (``QUALITY_EVOHPO_DIR``) or the checkout."""
    snap = os.environ.get(SNAPSHOT_ENV)
    return Path(snap) if snap else ROOT


def table_names() -> list[str]:
    """The names of the tables in bench/tables."""
    return list(names())


TABLE_PREFIXES = {"table:": False, "table1:": True}  # key prefix -> single run


def table_key(key: str) -> tuple[str, bool] | None:
    """``(NAME or PATH, single_run)`` for ``table:NAME`` (mean) and ``table1:NAME`` (single run); else None."""
    for prefix, single in TABLE_PREFIXES.items():
        if key.startswith(prefix):
            return key[len(prefix):], single
    return None


@functools.cache
def table_sha(key: str) -> str | None:
    """A content hash of the table behind a ``table:``/``table1:`` key (None for other problems): ``--resume``
    drops results of a table that was rebuilt since."""
    if (tk := table_key(key)) is None:
        return None
    path = load_table(tk[0]).path
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def current_table_sha(key: str) -> str | None:
    """:func:`table_sha` now; None if the table is gone or unreadable."""
    try:
        return table_sha(key)
    except (OSError, ValueError):  # the table is gone or unreadable: its old results are stale too
        return None


def is_single_run(key: str) -> bool:
    """Whether ``key`` is a single-run table problem (``table1:``)."""
    return (tk := table_key(key)) is not None and tk[1]


def make_problem(key: str) -> Problem:
    """``sphere-5d``, ``himmelblau``, ``mixed-6d``, ``table:NAME`` (or ``table:/path/to/table.json``): the mean over
    the table's seeds; ``table1:NAME``: one training per configuration and benchmark seed (``Table.single_run``)."""
    if key == "mixed-6d":
        return Problem(key, dict(MIXED_SPACE), mixed_loss, 0.0)
    if (tk := table_key(key)) is not None:
        tbl = load_table(tk[0])
        space = {n: ("choice", tuple(v)) for n, v in tbl.levels.items()}
        return Problem(key, space, tbl.lookup, float(tbl.best), tbl, single_run=tk[1])
    functions = evohpo_functions(evohpo_tree())
    name, dim = key, None
    if "-" in key and key.rsplit("-", 1)[1].rstrip("d").isdigit():
        name, d = key.rsplit("-", 1)
        dim = int(d.rstrip("d"))
    p = functions.get(name, dim)
    space = {f"x{i}": ("float", lo, hi, False) for i, (lo, hi) in enumerate(p.bounds)}
    return Problem(key, space, p.loss, float(p.minimum))


def ordered(values: tuple) -> bool:
    """Whether choice ``values`` are numbers (an ordered level range for Propulate and Optuna)."""
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)

