"""Hypothesis strategies shared by the tests: random parameters and search spaces."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from evohpo.core.space import Choice, Float, Int, Space


@st.composite
def params(draw, wide: bool = False):
    """A random parameter of every kind; ``wide`` stretches the bounds towards the extremes."""
    kind = draw(st.sampled_from(["float", "floatlog", "int", "intlog", "num", "str", "bool"]))
    if kind == "float":
        big = 1e9 if wide else 1e6
        a, b = sorted(draw(st.lists(st.floats(-big, big), min_size=2, max_size=2, unique=True)))
        return Float(a, b)
    if kind == "floatlog":
        lo, hi = (1e-12, 1e12) if wide else (1e-9, 1e9)
        a, b = sorted(draw(st.lists(st.floats(lo, hi), min_size=2, max_size=2, unique=True)
                           .filter(lambda v: math.log(v[0]) != math.log(v[1]))))  # else too narrow for log=True
        return Float(a, b, log=True)
    if kind == "int":
        a = draw(st.integers(-10**9, 10**9) if wide else st.integers(-1000, 1000))
        return Int(a, a + draw(st.integers(1, 10**9 if wide else 10**5)))
    if kind == "intlog":
        a = draw(st.integers(1, 10**4 if wide else 1000))
        return Int(a, a + draw(st.integers(1, 10**6 if wide else 10**5)), log=True)
    if kind == "num":
        vals = draw(st.lists(st.one_of(st.integers(-100, 100), st.floats(-100, 100)), min_size=1, max_size=6,
                             unique_by=float))
        return Choice(vals)
    if kind == "bool":
        return Choice(draw(st.sampled_from([[True, False], [False, True], [True]])))
    return Choice(draw(st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=6, unique=True)))


@st.composite
def spaces(draw, wide: bool = False):
    ps = draw(st.lists(params(wide), min_size=1, max_size=5))
    return Space({f"p{i}": p for i, p in enumerate(ps)})
