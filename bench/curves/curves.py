"""Learning-curve tables: replay real trainings step by step, for benchmarking early stopping.

    from bench.curves.curves import load_curves, names   # run from the repository root
    t = load_curves("cnn_digits_curves")      # or a path to a table JSON
    t.space                                    # {"layers": Choice([1, 2]), ..., "activation": Choice([...])}
    t.max_steps                                # R: every stored curve has the validation error after steps 1..R
    t.value(params, 3)                         # mean validation error over the seeds after 3 steps (epochs)
    t.curve(params), t.curve(params, seed=1)   # the whole mean curve, or one stored seed's curve (length R)
    t.single_run_curve(params, seed=7)         # one training per config, as a real search sees it (benchmark seed 7)
    t.final(params), t.best, t.best_params, t.regret(t.final(params)), t.best_at(1), t.train_seconds(params)

A table JSON (see README.md) holds the full product of its ``space`` levels, each configuration trained with
``seeds`` seeds, each training's validation error recorded after every step 1..``max_steps``. A search that stops
a training after ``s`` steps has paid for exactly ``s`` steps of it. Pure Python + json; ``evohpo`` is imported only
to build the ``Choice``s of ``.space``.
"""

from __future__ import annotations

import bisect
import json
import os
import statistics
import sys
from collections.abc import Mapping
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # bench/: the grid, the lookup and the single-run seed of bench/tables
from tables.table import Grid, plain  # noqa: E402


def names() -> list[str]:
    """The curve tables shipped next to this module (file stems of ``bench/curves/*.json``)."""
    return [f[:-5] for f in sorted(os.listdir(HERE)) if f.endswith(".json")]


class CurveTable(Grid):
    """One learning-curve table. Values are validation errors in [0, 1] (lower is better); steps count from 1."""

    def __init__(self, data: Mapping[str, Any], path: str | None = None) -> None:
        self._read(data, path, ("max_steps",))
        self.max_steps: int = int(data["max_steps"])
        self._curves: dict[tuple, list[list[float]]] = {}  # per seed
        self._mean: dict[tuple, list[float]] = {}  # mean over seeds, per step
        self._seconds: dict[tuple, float | None] = {}
        for r in self.rows:
            k = self._add_row(r["params"])
            curves = [[float(e) for e in c] for c in r["curves"]]
            if len(curves) != self.seeds or any(len(c) != self.max_steps for c in curves):
                raise ValueError(f"table {self.name!r}: row {r['params']} does not hold {self.seeds} curves of "
                                 f"length {self.max_steps}")
            self._curves[k] = curves
            self._mean[k] = [statistics.fmean(v) for v in zip(*curves)]
            s = r.get("train_seconds")
            self._seconds[k] = None if s is None else float(s)
        self._check_full()
        self._finals = sorted(m[-1] for m in self._mean.values())
        self.best: float = self._finals[0]
        """Lowest mean final value (after ``max_steps`` steps) over the grid."""
        self.worst: float = self._finals[-1]
        self.median: float = statistics.median(self._finals)
        # the first best in grid order
        self.best_params: dict[str, Any] = next(
            dict(r["params"]) for r in self.rows if self._mean[self._key(r["params"])][-1] == self.best)

    # ---- lookup -------------------------------------------------------------------------------------------------
    def _step(self, step: Any) -> int:
        s = plain(step)
        if isinstance(s, bool) or not isinstance(s, (int, float)) or s != int(s) or not 1 <= s <= self.max_steps:
            raise ValueError(f"{self.name}: step {step!r} out of range (an integer 1..{self.max_steps})")
        return int(s)

    def _seed(self, seed: Any) -> int:
        s = plain(seed)
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < self.seeds:
            raise ValueError(f"{self.name}: stored seed {seed!r} out of range (0..{self.seeds - 1}); "
                             "for any benchmark seed use single_run_curve")
        return s

    def curve(self, params: Mapping[str, Any], seed: int | None = None) -> list[float]:
        """The validation error after steps 1..max_steps (a new list of length ``max_steps``): the mean over the
        stored seeds, or stored seed ``seed``'s curve (0..seeds-1). Extra keys are ignored; a missing parameter or a
        value off the grid raises KeyError naming the params."""
        k = self._find(params)
        return list(self._mean[k] if seed is None else self._curves[k][self._seed(seed)])

    def value(self, params: Mapping[str, Any], step: int, seed: int | None = None) -> float:
        """The validation error after ``step`` steps (1 <= step <= max_steps; ValueError naming the step otherwise):
        mean over the seeds, or one stored seed's."""
        k = self._find(params)
        i = self._step(step) - 1
        return self._mean[k][i] if seed is None else self._curves[k][self._seed(seed)][i]

    def final(self, params: Mapping[str, Any], seed: int | None = None) -> float:
        """The value after ``max_steps`` steps (mean over the seeds, or one stored seed's)."""
        return self.value(params, self.max_steps, seed)

    __call__ = value

    # ---- single run ---------------------------------------------------------------------------------------------
    def single_run_curve(self, params: Mapping[str, Any], seed: int) -> list[float]:
        """One training's curve, as a real search sees it (one run per configuration, with seed noise): stored seed
        ``seed_index(params, seed)``'s curve. Deterministic in (benchmark ``seed``, params): a training paused and
        resumed, or evaluated again, continues the same curve; another benchmark ``seed`` draws again."""
        k = self._find(params)
        return list(self._curves[k][self._seed_index(k, seed)])

    def single_run(self, params: Mapping[str, Any], seed: int, step: int | None = None) -> float:
        """``single_run_curve(params, seed)`` at ``step`` (default: max_steps)."""
        k = self._find(params)
        i = self.max_steps - 1 if step is None else self._step(step) - 1
        return self._curves[k][self._seed_index(k, seed)][i]

    # ---- landscape ----------------------------------------------------------------------------------------------
    def regret(self, final_mean_value: float) -> float:
        """``final_mean_value - best``: 0 for the table's best configuration (score an incumbent by
        ``regret(final(incumbent))``)."""
        return float(final_mean_value) - self.best

    def rank(self, final_mean_value: float) -> float:
        """Fraction of configurations whose mean final value is strictly better (0 = as good as the best)."""
        return bisect.bisect_left(self._finals, float(final_mean_value)) / self.size

    def best_at(self, step: int) -> float:
        """Lowest mean value after ``step`` steps over the grid."""
        i = self._step(step) - 1
        return min(m[i] for m in self._mean.values())

    def train_seconds(self, params: Mapping[str, Any]) -> float | None:
        """Measured wall seconds per step of one training of ``params`` (mean over its seeds; a share of a batched
        training where the builder batched them), or None when the table did not record it."""
        return self._seconds[self._find(params)]

    def configurations(self) -> list[dict[str, Any]]:
        """Every configuration of the grid, in grid order (first parameter outermost)."""
        return [dict(r["params"]) for r in self.rows]

    @staticmethod
    def names() -> list[str]:
        return names()

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return (f"CurveTable({self.name!r}, size={self.size}, seeds={self.seeds}, max_steps={self.max_steps}, "
                f"best={self.best:.4f})")


def load_curves(name_or_path: str) -> CurveTable:
    """A curve table by name (``names()``) or by path to its JSON file."""
    path = os.fspath(name_or_path)
    if not (os.sep in path or path.endswith(".json")):
        path = os.path.join(HERE, path + ".json")
        if not os.path.exists(path):
            raise FileNotFoundError(f"no curve table {name_or_path!r}; available: {names()}")
    with open(path) as f:
        data = json.load(f)
    return CurveTable(data, path)
