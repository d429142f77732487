"""Tabular benchmarks: replay real trainings, one lookup = one evaluation.

    from bench.tables.table import load_table, names
    t = load_table("cnn_digits")          # or a path to a table JSON
    t.space                                # {"layers": Choice([1, 2, 3]), ..., "activation": Choice([...])}
    loss = t.lookup({"layers": 2, ...})    # mean validation error over the seeds
    t.lookup(params, seed=1)               # one seed's value
    t.single_run(params, seed=7)           # one training per config, as a real search sees it (benchmark seed 7)
    t.regret(loss), t.best, t.size, t.best_params

A table JSON (see README.md) holds the full product of its ``space`` levels: every configuration
of ``t.space`` is present, so any point an optimizer proposes can be looked up.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
from collections.abc import Mapping
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def names() -> list[str]:
    """The tables shipped next to this module (file stems of ``bench/tables/*.json``)."""
    out = []
    for f in sorted(os.listdir(HERE)):
        if f.endswith(".json") and not f.endswith(".tmp"):
            out.append(f[:-5])
    return out


def plain(v: Any) -> Any:
    """numpy scalars -> Python; integral floats stay as given (1 == 1.0 hashes equally anyway)."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    return v


class Grid:
    """What every stored-trainings table shares: a full grid of configurations (``levels``), each row's params, the
    lookup of a configuration, its evohpo space, and the stored seed a benchmark seed reads (``seed_index``).
    ``Table`` (final values) and ``bench.curves.curves.CurveTable`` (learning curves) add their values."""

    def _read(self, data: Mapping[str, Any], path: str | None, own_keys: tuple[str, ...] = ()) -> None:
        """The fields of a table JSON every kind has; ``own_keys`` are the kind's own (not ``meta``)."""
        self.path = path
        self.name: str = data["name"]
        self.description: str = data.get("description", "")
        self.metric: str = data.get("metric", "val_error")
        self.seeds: int = int(data["seeds"])
        self.levels: dict[str, list] = {k: list(v) for k, v in data["space"].items()}
        default_ordered = {k: all(not isinstance(x, str) for x in v) for k, v in self.levels.items()}
        self.ordered: dict[str, bool] = dict(data.get("ordered") or default_ordered)
        skip = ("rows", "space", "ordered", "name", "description", "metric", "seeds", *own_keys)
        self.meta: dict[str, Any] = {k: v for k, v in data.items() if k not in skip}
        self.rows: list[dict[str, Any]] = list(data["rows"])
        self._names = list(self.levels)
        self._canon: dict[tuple, bytes] = {}  # the stored row's params as JSON: the single-run hash input

    def _add_row(self, params: Mapping[str, Any]) -> tuple:
        """The key of a new row; ValueError for a configuration stored twice."""
        k = self._key(params)
        if k in self._canon:
            raise ValueError(f"table {self.name!r}: duplicate row for {params}")
        self._canon[k] = json.dumps([params[n] for n in self._names]).encode()
        return k

    def _check_full(self) -> None:
        """ValueError unless every configuration of the grid has a row."""
        expected = math.prod(len(v) for v in self.levels.values())
        if len(self._canon) != expected:
            raise ValueError(f"table {self.name!r} has {len(self._canon)} rows, the full grid has {expected}")

    def _key(self, params: Mapping[str, Any]) -> tuple:
        return tuple(plain(params[n]) for n in self._names)

    @property
    def size(self) -> int:
        """Number of configurations (the full grid)."""
        return len(self._canon)

    @property
    def space(self) -> dict[str, Any]:
        """The search space for evohpo: each parameter a ``Choice`` of the table's levels
        (numeric levels -> ordered Choice, string levels -> unordered Choice)."""
        from evohpo import Choice

        return {n: Choice(v) for n, v in self.levels.items()}

    def _find(self, params: Mapping[str, Any]) -> tuple:
        """The row key of ``params``; KeyError naming the params when one is missing or off the grid."""
        missing = [n for n in self._names if n not in params]
        if missing:
            raise KeyError(f"{self.name}: params {dict(params)} lack {missing} (table parameters: {self._names})")
        k = self._key(params)
        if k not in self._canon:
            off = {n: params[n] for n in self._names if plain(params[n]) not in self.levels[n]}
            raise KeyError(f"{self.name}: params {dict(params)} not in the table (off-grid values: {off})")
        return k

    def seed_index(self, params: Mapping[str, Any], seed: int) -> int:
        """The stored seed (0..seeds-1) that answers ``params`` for benchmark ``seed`` in a single run:
        blake2b of (table name, ``seed``, the stored row's params as JSON) mod ``seeds``. Stable across
        processes and machines (unlike ``hash()``), and the same for 2 and 2.0 or numpy scalars."""
        return self._seed_index(self._find(params), seed)

    def _seed_index(self, k: tuple, seed: int) -> int:
        h = hashlib.blake2b(f"{self.name}\0{int(seed)}\0".encode() + self._canon[k], digest_size=8)
        return int.from_bytes(h.digest(), "big") % self.seeds


class Table(Grid):
    """A table of final values: each configuration's validation error per seed, and their mean."""

    def __init__(self, data: Mapping[str, Any], path: str | None = None) -> None:
        self._read(data, path)
        self._mean: dict[tuple, float] = {}
        self._per_seed: dict[tuple, list[float]] = {}
        for r in self.rows:
            k = self._add_row(r["params"])
            self._mean[k] = float(r["mean"])
            self._per_seed[k] = [float(e) for e in r["val_error"]]
        self._check_full()
        self._sorted = sorted(self._mean.values())
        self.best: float = self._sorted[0]
        self.worst: float = self._sorted[-1]
        self.median: float = statistics.median(self._sorted)
        self.best_params: dict[str, Any] = next(dict(r["params"]) for r in self.rows if float(r["mean"]) == self.best)

    def lookup(self, params: Mapping[str, Any], seed: int | None = None) -> float:
        """Mean validation error of ``params`` (or one seed's value). Extra keys are ignored;
        a missing parameter or a value off the grid raises KeyError naming the params."""
        k = self._find(params)
        if seed is None:
            return self._mean[k]
        return self._per_seed[k][seed]

    def single_run(self, params: Mapping[str, Any], seed: int) -> float:
        """One training's validation error, as a real search sees it (one run per configuration, with seed
        noise): the value at stored seed ``seed_index(params, seed)``. Deterministic in (``seed``, params), so
        a repeated evaluation returns the same number; another benchmark ``seed`` draws again."""
        k = self._find(params)
        return self._per_seed[k][self._seed_index(k, seed)]

    __call__ = lookup

    def regret(self, loss: float) -> float:
        """``loss - best``: 0 for the table's best configuration."""
        return float(loss) - self.best

    def rank(self, loss: float) -> float:
        """Fraction of configurations strictly better than ``loss`` (0 = as good as the best)."""
        import bisect

        return bisect.bisect_left(self._sorted, float(loss)) / self.size

    def fraction_within(self, eps: float) -> float:
        """Fraction of configurations whose mean is within ``eps`` (absolute) of the best."""
        return sum(1 for m in self._sorted if m <= self.best + eps) / self.size

    @staticmethod
    def names() -> list[str]:
        return names()

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"Table({self.name!r}, size={self.size}, seeds={self.seeds}, best={self.best:.4f})"


def load_table(name_or_path: str) -> Table:
    """A table by name (``names()``) or by path to its JSON file."""
    path = name_or_path
    if not (os.sep in path or path.endswith(".json")):
        path = os.path.join(HERE, name_or_path + ".json")
        if not os.path.exists(path):
            raise FileNotFoundError(f"no table {name_or_path!r}; available: {names()}")
    with open(path) as f:
        data = json.load(f)
    return Table(data, path)
