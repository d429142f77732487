"""Search spaces: ``Float``, ``Int`` and ``Choice`` parameters, validated at the boundary."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

Value = float | int | str | bool


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_bool(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_))


class SpaceExhausted(RuntimeError):
    """Every configuration of a finite space (or every point of a grid search) was evaluated or is being
    evaluated: the worker stops, its search is finished."""


class _Range:
    """A numeric interval, optionally on a log scale; values map to and from the unit interval."""

    kind = ""
    low: float
    high: float
    log: bool

    def _check(self, low: Any, high: Any, log: bool) -> None:
        if not isinstance(log, bool):
            raise TypeError(f"log must be True or False, got {log=!r}")
        for name, v in (("low", low), ("high", high)):
            if not _is_number(v):
                raise TypeError(f"{self.kind} bound {name}={v!r} must be a number")
            if not math.isfinite(v):
                raise ValueError(f"{self.kind} bound {name}={v!r} must be finite")
        if low > high:
            flag = ", log=True" if log else ""
            raise ValueError(f"{self.kind} needs low < high, got {low=!r}, {high=!r}: the bounds are reversed, "
                             f"write {self.kind}({high!r}, {low!r}{flag})")
        if not low < high:
            raise ValueError(f"{self.kind} needs low < high, got {low=!r}, {high=!r}; for a fixed value use "
                             f"Choice([{low!r}])")
        if not math.isfinite(float(high) - float(low)):  # else to_unit/from_unit overflow: every draw is high
            raise ValueError(f"{self.kind} range is too wide: high - low overflows, got {low=!r}, {high=!r}")
        if log and low <= 0:
            raise ValueError(f"{self.kind} with log=True needs low > 0, got {low=!r}")
        if log and not math.log(low) < math.log(high):  # else to_unit divides by zero
            raise ValueError(f"{self.kind} range is too narrow for log=True: log(low) == log(high), got {low=!r}, "
                             f"{high=!r}; use log=False")

    def _scale(self, v: float) -> float:
        return math.log(v) if self.log else float(v)

    def to_unit(self, value: Value) -> float:
        """Position of ``value`` in [0, 1] (in log space for log parameters)."""
        lo, hi = self._scale(self.low), self._scale(self.high)
        return (self._scale(float(value)) - lo) / (hi - lo)

    def from_unit(self, u: float) -> Value:
        """The value at position ``u`` (clipped to [0, 1])."""
        u = min(1.0, max(0.0, float(u)))
        if u in (0.0, 1.0):  # the bounds exactly (exp(log(low)) may be off by an ulp)
            return self.clip(self.high if u else self.low)
        lo, hi = self._scale(self.low), self._scale(self.high)
        x = lo + u * (hi - lo)
        return self.clip(math.exp(x) if self.log else x)

    def sample(self, rng: np.random.Generator) -> Value:
        """A uniform draw (log-uniform for log parameters)."""
        return self.from_unit(rng.random())

    def grid(self, points: int) -> list[Value]:
        """``points`` evenly spaced values (fewer for narrow integer ranges)."""
        values = [self.from_unit(u) for u in np.linspace(0.0, 1.0, max(points, 1))]
        return list(dict.fromkeys(values))

    def describe(self) -> dict[str, Any]:
        return {"type": self.kind, "low": self.low, "high": self.high, "log": self.log}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.describe() == other.describe()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash(tuple(self.describe().items()))

    def __repr__(self) -> str:
        log = ", log=True" if self.log else ""
        return f"{type(self).__name__}({self.low!r}, {self.high!r}{log})"


class Float(_Range):
    """A real interval [low, high]."""

    kind = "Float"

    def __init__(self, low: float, high: float, log: bool = False) -> None:
        self._check(low, high, log)
        self.low, self.high, self.log = float(low), float(high), log

    def clip(self, value: Value) -> float:
        return float(min(self.high, max(self.low, float(value))))

    def contains(self, value: Any) -> bool:
        return _is_number(value) and self.low <= value <= self.high


class Int(_Range):
    """An integer interval [low, high], both ends included."""

    kind = "Int"

    def __init__(self, low: int, high: int, log: bool = False) -> None:
        for name, v in (("low", low), ("high", high)):
            if not _is_int(v):
                raise TypeError(f"Int bound {name}={v!r} must be an int")
            if not -(2**63) <= v < 2**63:  # numpy's integer sampling is 64-bit
                raise ValueError(f"Int bound {name}={v!r} must fit in 64 bits, got {low=!r}, {high=!r}")
        self._check(low, high, log)
        self.low, self.high, self.log = int(low), int(high), log

    def clip(self, value: Value) -> int:
        return int(min(self.high, max(self.low, round(float(value)))))

    def sample(self, rng: np.random.Generator) -> int:
        if not self.log:  # exact uniform over the integers
            return int(rng.integers(self.low, self.high + 1))
        return self.clip(math.exp(rng.uniform(math.log(self.low - 0.5), math.log(self.high + 0.5))))

    def contains(self, value: Any) -> bool:
        return _is_int(value) and self.low <= value <= self.high


class Choice:
    """A finite set of values: ordered numbers (mutation moves to a neighbour), or unordered strings or bools.

    Bools cannot share a Choice with numbers (``True == 1`` in Python, so their keys would collide).
    """

    kind = "Choice"

    def __init__(self, values: Any) -> None:
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise TypeError(f"Choice needs a sequence of values, got {values!r}")
        values = tuple(values)
        if not values:
            raise ValueError("Choice needs at least one value, got an empty sequence")
        if all(_is_bool(v) for v in values):
            self.ordered, self._kind = False, "bool"
            values = tuple(bool(v) for v in values)
        elif all(isinstance(v, str) for v in values):
            self.ordered, self._kind = False, "str"
        elif all(_is_number(v) for v in values):
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"Choice values must be finite, got {values!r}")
            self.ordered, self._kind = True, "number"
            values = tuple(int(v) if _is_int(v) else float(v) for v in values)
        else:
            types = sorted({"bool" if _is_bool(v) else type(v).__name__ for v in values})
            why = "; bools cannot mix with other values (True == 1 in Python)" if "bool" in types else ""
            raise TypeError(f"Choice values must be all numbers, all strings or all bools, got types {types}: "
                            f"{values!r}{why}")
        if len(set(values)) != len(values):
            dupes = sorted({v for v in values if values.count(v) > 1}, key=str)
            raise ValueError(f"Choice values must be distinct, duplicates {dupes} in {values!r}")
        self.values: tuple[Value, ...] = values
        self._index = {v: i for i, v in enumerate(values)}

    def index(self, value: Value) -> int:
        return self._index[value]

    def sample(self, rng: np.random.Generator) -> Value:
        return self.values[int(rng.integers(len(self.values)))]

    def neighbour(self, value: Value, rng: np.random.Generator) -> Value:
        """An adjacent value when ordered, another random value when not."""
        n = len(self.values)
        if n == 1:
            return self.values[0]
        i = self._index[value]
        if self.ordered:
            j = i + (1 if rng.random() < 0.5 else -1)
            j = 1 if j < 0 else (n - 2 if j >= n else j)
        else:
            j = int(rng.integers(n - 1))
            j += j >= i
        return self.values[j]

    def clip(self, value: Value) -> Value:
        if self.contains(value):
            return self.values[self._index[value]]
        if self.ordered and _is_number(value):
            return min(self.values, key=lambda v: abs(v - value))  # type: ignore[operator]
        raise ValueError(f"{value!r} is not one of {self.values!r}")

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of the values, of the same kind (``1`` is not in ``Choice([True, False])``)."""
        if self._kind == "bool":
            return _is_bool(value) and bool(value) in self._index
        if self.ordered:
            return _is_number(value) and value in self._index
        return isinstance(value, str) and value in self._index

    def grid(self, points: int) -> list[Value]:
        return list(self.values)

    def describe(self) -> dict[str, Any]:
        return {"type": self.kind, "values": list(self.values)}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Choice) and self._kind == other._kind and self.values == other.values

    def __hash__(self) -> int:
        return hash(self.values)

    def __repr__(self) -> str:
        return f"Choice({list(self.values)!r})"


Param = Float | Int | Choice


def as_param(spec: Any) -> Param:
    """A parameter from a ``Float``/``Int``/``Choice`` or a Propulate-style tuple or list."""
    if isinstance(spec, (Float, Int, Choice)):
        return spec
    if isinstance(spec, list):
        return Choice(spec)
    if isinstance(spec, tuple):
        if len(spec) == 2 and all(_is_number(v) for v in spec) and spec[0] > spec[1]:
            raise ValueError(f"range {spec!r} is reversed (low > high): write ({spec[1]!r}, {spec[0]!r})")
        if len(spec) == 2 and all(_is_int(v) for v in spec):
            return Int(*spec)
        if len(spec) == 2 and all(_is_number(v) for v in spec):
            if not all(isinstance(v, (float, np.floating)) for v in spec):
                raise TypeError(f"range {spec!r} mixes int and float bounds: write floats for a Float "
                                f"({float(spec[0])!r}, {float(spec[1])!r}) or ints for an Int")
            return Float(*spec)
        if len(spec) == 2 and any(_is_bool(v) for v in spec) and not all(_is_bool(v) for v in spec):
            raise TypeError(f"range {spec!r} holds a bool; use Choice for flags, e.g. (True, False)")
        return Choice(spec)
    raise TypeError(f"unknown parameter type {type(spec).__name__}: {spec!r}; use Float, Int, Choice or a tuple")


class Space(Mapping[str, Param]):
    """An ordered, immutable mapping of parameter names to parameters."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        if isinstance(params, Space):
            self._params: dict[str, Param] = dict(params._params)
            return
        if not isinstance(params, Mapping):
            raise TypeError(f"a search space is a dict of name -> parameter, got {type(params).__name__}")
        if not params:
            raise ValueError("the search space is empty: give at least one parameter")
        self._params = {}
        for name, spec in params.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"parameter names must be non-empty strings, got {name!r}")
            try:
                self._params[name] = as_param(spec)
            except (TypeError, ValueError) as e:
                raise type(e)(f"parameter {name!r}: {e}") from None

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:  # by parameter, so that Choice([True]) != Choice([1])
        return isinstance(other, Space) and self._params == other._params

    def __hash__(self) -> int:
        return hash(tuple(self._params.items()))

    def __repr__(self) -> str:
        return f"Space({self._params!r})"

    @property
    def finite(self) -> bool:
        """Whether the space has finitely many configurations (no Float parameter): only then can two workers
        that never heard of each other breed the same one."""
        return not any(isinstance(p, Float) for p in self._params.values())

    def sample(self, rng: np.random.Generator) -> dict[str, Value]:
        """A random configuration."""
        return {name: p.sample(rng) for name, p in self._params.items()}

    def key(self, params: Mapping[str, Value]) -> tuple:
        """A hashable identity of a configuration: its values in parameter order."""
        return tuple([params[n] for n in self._params])

    def contains(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` has exactly this space's names and every value lies inside."""
        return params.keys() == self._params.keys() and all(p.contains(params[n]) for n, p in self._params.items())

    def misfit(self, params: Any) -> str | None:
        """Why ``params`` is not a configuration of this space (a name missing or unknown, a value outside), or
        None when it is one."""
        if not isinstance(params, Mapping):
            return f"a configuration is a mapping of names to values, got {type(params).__name__}"
        missing = [n for n in self._params if n not in params]
        extra = [n for n in params if n not in self._params]
        if missing or extra:
            return f"configuration does not match the space: missing {missing}, unknown {extra}"
        for n, p in self._params.items():
            if not p.contains(params[n]):
                return f"parameter {n!r}: value {params[n]!r} is not in {p!r}"
        return None

    def validate(self, params: Mapping[str, Any]) -> dict[str, Value]:
        """``params`` as a plain dict, or a ValueError naming the offending parameter and value."""
        why = self.misfit(params)
        if why:
            raise ValueError(why)
        return {n: params[n] for n in self._params}

    def grid(self, points: int = 5) -> Iterator[dict[str, Value]]:
        """Every combination of ``points`` values per numeric parameter and all values of each Choice."""
        axes = [p.grid(points) for p in self._params.values()]
        for combo in itertools.product(*axes):
            yield dict(zip(self._params, combo))

    def grid_size(self, points: int = 5) -> int:
        return math.prod(len(p.grid(points)) for p in self._params.values())

    def describe(self) -> dict[str, dict[str, Any]]:
        """A JSON-ready description, used to check that a checkpoint belongs to this space."""
        return {n: p.describe() for n, p in self._params.items()}

    @classmethod
    def from_description(cls, desc: Mapping[str, Mapping[str, Any]]) -> Space:
        """The inverse of ``describe``; a ValueError naming the parameter for a description it cannot read
        (an unknown type, a missing field)."""
        if not isinstance(desc, Mapping):
            raise ValueError(f"a space description is a mapping of names to parameters, got {desc!r}")
        params: dict[str, Param] = {}
        for n, d in desc.items():
            kind = d.get("type") if isinstance(d, Mapping) else None
            try:
                if kind == "Choice":
                    params[n] = Choice(d["values"])
                elif kind in ("Float", "Int"):
                    params[n] = (Float if kind == "Float" else Int)(d["low"], d["high"], d.get("log", False))
                else:
                    raise ValueError(f"type={kind!r} is not one of 'Float', 'Int', 'Choice'")
            except (KeyError, TypeError, ValueError) as e:
                what = f"field {e} missing" if isinstance(e, KeyError) else str(e)
                shown = dict(d) if isinstance(d, Mapping) else d
                raise ValueError(f"parameter {n!r} of the space description {shown!r}: {what}") from None
        return cls(params)


class Encoding:
    """Configurations as a matrix: numeric parameters on the unit interval, choices as indices."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.numeric = [n for n, p in space.items() if not isinstance(p, Choice)]
        self.choices = [n for n, p in space.items() if isinstance(p, Choice)]
        numeric = [space[n] for n in self.numeric]
        self._log = np.array([p.log for p in numeric], dtype=bool)  # type: ignore[union-attr]
        bounds = [(math.log(p.low), math.log(p.high)) if p.log else (p.low, p.high)  # type: ignore[union-attr]
                  for p in numeric]
        self._lo = np.array([lo for lo, _ in bounds], dtype=float).reshape(1, -1)
        self._span = np.array([hi - lo for lo, hi in bounds], dtype=float).reshape(1, -1)

    def unit(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Numeric parameters of ``configs`` on the unit interval (log-aware), one row per configuration."""
        v = np.array([[c[n] for n in self.numeric] for c in configs], dtype=float).reshape(len(configs), -1)
        if self._log.any():
            v[:, self._log] = np.log(v[:, self._log])
        return (v - self._lo) / self._span

    def index(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Choice parameters of ``configs`` as value indices, one row per configuration."""
        out = np.empty((len(configs), len(self.choices)), dtype=int)
        for j, name in enumerate(self.choices):
            out[:, j] = [self.space[name].index(c[name]) for c in configs]  # type: ignore[union-attr]
        return out
