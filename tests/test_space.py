"""Tests for evohpo.core.space: parameter types, Propulate-style dicts, validation messages, sampling, grids."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import params

from evohpo.core.space import Choice, Float, Int, Space, as_param

NAN, INF = float("nan"), float("inf")


# --- conversion of Propulate-style dicts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ((0.01, 0.1), Float(0.01, 0.1)),
        ((-5.12, 5.12), Float(-5.12, 5.12)),
        ((np.float64(0.5), np.float64(2.0)), Float(0.5, 2.0)),
        ((2, 10), Int(2, 10)),
        ((np.int64(-3), np.int32(3)), Int(-3, 3)),
        (("relu", "tanh"), Choice(["relu", "tanh"])),
        (("sgd",), Choice(["sgd"])),
        (("relu", "tanh", "gelu"), Choice(["relu", "tanh", "gelu"])),
        ((1, 2, 4, 8), Choice([1, 2, 4, 8])),
        ((0.1, 0.2, 0.3), Choice([0.1, 0.2, 0.3])),
        ([0.1, 0.5], Choice([0.1, 0.5])),
        ([1, 2], Choice([1, 2])),
        (["adam"], Choice(["adam"])),
        (Float(1e-3, 1.0, log=True), Float(1e-3, 1.0, log=True)),
        (Int(1, 64, log=True), Int(1, 64, log=True)),
    ],
)
def test_propulate_style_conversion(spec, expected) -> None:
    param = Space({"p": spec})["p"]
    assert type(param) is type(expected)
    assert param == expected


def test_converted_types_are_plain_python() -> None:
    s = Space({"f": (np.float32(0.5), np.float32(1.5)), "i": (np.int16(1), np.int64(9)),
               "c": [np.int64(1), 2.5, np.float32(4.0)]})
    assert type(s["f"].low) is float and type(s["f"].high) is float
    assert type(s["i"].low) is int and type(s["i"].high) is int
    # a list mixing ints and floats is an ordered Choice of plain Python numbers
    c = s["c"]
    assert isinstance(c, Choice) and c.ordered and [type(v) for v in c.values] == [int, float, float]


def test_choice_ordering_flags() -> None:
    assert Choice([1, 2, 3]).ordered
    assert Choice([0.5, 1]).ordered
    assert not Choice(["a", "b"]).ordered


def test_space_is_an_ordered_mapping() -> None:
    s = Space({"b": (0.0, 1.0), "a": (1, 5), "c": ("x", "y")})
    assert list(s) == ["b", "a", "c"]
    assert len(s) == 3 and "a" in s and "z" not in s
    assert Space(s) == s and Space(s) is not s
    assert hash(Space(dict(s))) == hash(s)
    assert s != Space({"b": (0.0, 1.0), "a": (1, 6), "c": ("x", "y")})
    assert s != {"b": (0.0, 1.0)}


# --- bad input: every error names the parameter and the offending values ------------------------------------


BAD_CONSTRUCTORS = [
    # (factory, exception, substrings)
    pytest.param(lambda: Float(0.0, 1.0, log=True), ValueError, ["0.0"], id="float-log-low0"),
    pytest.param(lambda: Float(-1.0, 1.0, log=True), ValueError, ["-1.0"], id="float-log-lowneg"),
    pytest.param(lambda: Int(0, 10, log=True), ValueError, ["0"], id="int-log-low0"),
    pytest.param(lambda: Int(-4, 10, log=True), ValueError, ["-4"], id="int-log-lowneg"),
    pytest.param(lambda: Float(NAN, 1.0, log=True), ValueError, ["nan"], id="float-log-nan"),
    pytest.param(lambda: Int(1.5, 3), TypeError, ["1.5"], id="int-float-bound"),
    pytest.param(lambda: Int(1, 3.0), TypeError, ["3.0"], id="int-float-bound-high"),
    pytest.param(lambda: Float("0", 1.0), TypeError, ["'0'"], id="float-str-bound"),
    pytest.param(lambda: Float(None, 1.0), TypeError, ["None"], id="float-none-bound"),
    pytest.param(lambda: Float(True, 2.0), TypeError, ["True"], id="float-bool-bound"),
    pytest.param(lambda: Int(False, 2), TypeError, ["False"], id="int-bool-bound"),
    pytest.param(lambda: Float(0.1, 1.0, log="yes"), TypeError, ["'yes'"], id="log-not-bool"),
    pytest.param(lambda: Float(-1e308, 1e308), ValueError, ["1e+308"], id="float-range-overflows"),
    pytest.param(lambda: Int(0, 2**70), ValueError, [str(2**70)], id="int-beyond-64-bits"),
    pytest.param(lambda: Choice([]), ValueError, ["empty"], id="choice-empty-list"),
    pytest.param(lambda: Choice(()), ValueError, ["empty"], id="choice-empty-tuple"),
    pytest.param(lambda: Choice(["a", "b", "a"]), ValueError, ["'a'", "('a', 'b', 'a')"], id="choice-dup-str"),
    pytest.param(lambda: Choice([1, 2, 1]), ValueError, ["(1, 2, 1)"], id="choice-dup-int"),
    pytest.param(lambda: Choice([1, 1.0]), ValueError, ["(1, 1.0)"], id="choice-dup-int-float"),
    pytest.param(lambda: Choice([1, True]), TypeError, ["True"], id="choice-bool-in-ints"),
    pytest.param(lambda: Choice(["a", 1]), TypeError, ["'a'", "1", "str", "int"], id="choice-mixed"),
    pytest.param(lambda: Choice(["a", None]), TypeError, ["None"], id="choice-none"),
    pytest.param(lambda: Choice([1.0, NAN]), ValueError, ["nan"], id="choice-nan"),
    pytest.param(lambda: Choice([1.0, INF]), ValueError, ["inf"], id="choice-inf"),
    pytest.param(lambda: Choice("abc"), TypeError, ["'abc'"], id="choice-string"),
    pytest.param(lambda: Choice(5), TypeError, ["5"], id="choice-scalar"),
]


@pytest.mark.parametrize(("factory", "exc", "parts"), BAD_CONSTRUCTORS)
def test_bad_parameter_objects(factory, exc, parts) -> None:
    with pytest.raises(exc) as info:
        factory()
    for part in parts:
        assert part in str(info.value), (part, str(info.value))


SPACE_BAD = [
    pytest.param((1.0, 0.5), ValueError, ["1.0", "0.5"], id="low>high"),
    pytest.param((0.5, 0.5), ValueError, ["0.5"], id="low==high"),
    pytest.param((7, 3), ValueError, ["7", "3"], id="int-low>high"),
    pytest.param((NAN, 1.0), ValueError, ["nan"], id="nan"),
    pytest.param((0.0, INF), ValueError, ["inf"], id="inf"),
    pytest.param((-INF, INF), ValueError, ["inf"], id="inf-both"),
    pytest.param(Float(1.0, 2.0), None, [], id="ok-float"),
    pytest.param((), ValueError, ["empty"], id="empty-tuple"),
    pytest.param([], ValueError, ["empty"], id="empty-list"),
    pytest.param(("relu", "relu"), ValueError, ["'relu'"], id="dup-str"),
    pytest.param([0.1, 0.2, 0.1], ValueError, ["0.1", "0.2"], id="dup-float"),
    pytest.param([True, True], ValueError, ["True"], id="dup-bool"),
    pytest.param((0, True), TypeError, ["True"], id="int-bool-pair"),
    pytest.param((1, 2.0), TypeError, ["1", "2.0"], id="mixed-int-float-range"),
    pytest.param((0.5, 3), TypeError, ["0.5", "3"], id="mixed-float-int-range"),
    pytest.param(("relu", 3), TypeError, ["'relu'", "3"], id="mixed-str-int"),
    pytest.param(["a", 1.5, "b"], TypeError, ["'a'", "1.5"], id="mixed-list"),
    pytest.param(5, TypeError, ["5", "int"], id="unknown-int"),
    pytest.param(0.5, TypeError, ["0.5", "float"], id="unknown-float"),
    pytest.param("relu", TypeError, ["'relu'", "str"], id="unknown-str"),
    pytest.param(None, TypeError, ["None"], id="unknown-none"),
    pytest.param({"low": 0.0, "high": 1.0}, TypeError, ["'low'", "dict"], id="unknown-dict"),
    pytest.param({0.1, 0.2}, TypeError, ["set"], id="unknown-set"),
]


@pytest.mark.parametrize(("spec", "exc", "parts"), SPACE_BAD)
def test_bad_space_entries_name_parameter_and_values(spec, exc, parts) -> None:
    if exc is None:  # a control: the same space with a good entry builds
        assert Space({"learning_rate": spec})["learning_rate"] == spec
        return
    with pytest.raises(exc) as info:
        Space({"learning_rate": spec, "ok": (0.0, 1.0)})
    msg = str(info.value)
    assert "'learning_rate'" in msg, msg
    for part in parts:
        assert part in msg, (part, msg)


def test_log_low_not_positive() -> None:
    # log scales exist only as Float/Int objects, so the constructor (not the Space) reports them
    with pytest.raises(ValueError, match=r"log=True.*low=0\.0"):
        Float(0.0, 1.0, log=True)
    with pytest.raises(ValueError, match=r"log=True.*low=-2"):
        Int(-2, 5, log=True)


def test_empty_space_and_non_dict() -> None:
    with pytest.raises(ValueError, match="empty"):
        Space({})
    with pytest.raises(TypeError, match="list"):
        Space([("x", (0.0, 1.0))])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        Space("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="None"):
        Space(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="1"):
        Space({1: (0.0, 1.0)})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="''"):
        Space({"": (0.0, 1.0)})


def test_as_param_unknown_type() -> None:
    with pytest.raises(TypeError, match="object"):
        as_param(object())


# --- sampling, contains, validate --------------------------------------------------------------------------


MIXED = {
    "lr": Float(1e-5, 1e-1, log=True),
    "momentum": (0.0, 0.99),
    "layers": (1, 6),
    "width": Int(8, 512, log=True),
    "batch": (16, 32, 64, 128),
    "dropout": [0.0, 0.25, 0.5],
    "act": ("relu", "tanh", "gelu"),
}


def test_sample_is_inside_and_typed() -> None:
    s = Space(MIXED)
    rng = np.random.default_rng(0)
    for _ in range(500):
        cfg = s.sample(rng)
        assert list(cfg) == list(s)
        assert s.contains(cfg)
        assert s.validate(cfg) == cfg
        assert type(cfg["lr"]) is float and type(cfg["momentum"]) is float
        assert type(cfg["layers"]) is int and type(cfg["width"]) is int
        assert type(cfg["batch"]) is int and type(cfg["act"]) is str
        assert json.loads(json.dumps(cfg)) == cfg


def test_sample_is_deterministic_per_seed() -> None:
    s = Space(MIXED)
    a = [s.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [s.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    rng1, rng2 = np.random.default_rng(1), np.random.default_rng(2)
    assert [s.sample(rng1) for _ in range(5)] != [s.sample(rng2) for _ in range(5)]


def test_int_sampling_covers_both_ends_uniformly() -> None:
    p, rng = Int(0, 3), np.random.default_rng(3)
    counts = Counter(p.sample(rng) for _ in range(8000))
    assert set(counts) == {0, 1, 2, 3}
    # each count is Binomial(8000, 1/4): mean 2000, sd ~39; 200 is over 5 sd
    assert all(abs(c - 2000) < 200 for c in counts.values()), counts


def test_int_log_sampling_covers_ends() -> None:
    p, rng = Int(1, 8, log=True), np.random.default_rng(4)
    counts = Counter(p.sample(rng) for _ in range(5000))
    assert set(counts) == set(range(1, 9))
    assert counts[1] > counts[8]  # more mass per integer at the low end of a log scale


def test_log_uniform_float_sampling() -> None:
    """Float(1e-4, 1, log=True): log10 of a draw is uniform on [-4, 0], so the median is 1e-2."""
    p, rng = Float(1e-4, 1.0, log=True), np.random.default_rng(12345)
    x = np.array([p.sample(rng) for _ in range(20000)])
    assert x.min() >= 1e-4 and x.max() <= 1.0
    lg = np.log10(x)
    # sd of the sample median of U(-4, 0) over n=20000 draws is 1 / (2 * 0.25 * sqrt(n)) ~ 0.014; bounds ~7 sd.
    # A uniform (not log-uniform) sampler would put the median near 0.5 (log10 ~ -0.3).
    assert abs(np.median(lg) - (-2.0)) < 0.1
    assert abs(np.quantile(lg, 0.25) - (-3.0)) < 0.1
    assert abs(np.quantile(lg, 0.75) - (-1.0)) < 0.1
    # each decade gets a quarter of the draws (sd ~0.003 per fraction)
    frac = np.histogram(lg, bins=[-4, -3, -2, -1, 0])[0] / len(lg)
    assert np.all(np.abs(frac - 0.25) < 0.02), frac


def test_linear_float_sampling_median() -> None:
    p, rng = Float(0.0, 1.0), np.random.default_rng(5)
    assert abs(np.median([p.sample(rng) for _ in range(20000)]) - 0.5) < 0.02


def test_choice_sampling_covers_values() -> None:
    p, rng = Choice(["a", "b", "c"]), np.random.default_rng(6)
    counts = Counter(p.sample(rng) for _ in range(3000))
    assert set(counts) == {"a", "b", "c"} and all(abs(c - 1000) < 150 for c in counts.values())


@pytest.mark.parametrize(
    ("param", "inside", "outside"),
    [
        (Float(0.0, 1.0), [0.0, 1.0, 0.5, 1, np.float64(0.3)], [-0.1, 1.1, NAN, INF, "0.5", None, True]),
        (Int(2, 5), [2, 5, 3, np.int64(4)], [1, 6, 3.0, 2.5, True, "3", None]),
        (Choice([1, 2, 4]), [1, 2, 4, 2.0], [3, 0, "1", True, None]),
        (Choice([0.5, 1.5]), [0.5, 1.5], [1.0, "0.5", False]),
        (Choice(["a", "b"]), ["a", "b"], ["c", 1, None, b"a"]),
    ],
)
def test_param_contains(param, inside, outside) -> None:
    for v in inside:
        assert param.contains(v), v
    for v in outside:
        assert not param.contains(v), v


def test_space_contains_and_validate() -> None:
    s = Space({"x": (0.0, 1.0), "n": (1, 3), "act": ("relu", "tanh")})
    good = {"x": 0.5, "n": 2, "act": "relu"}
    assert s.contains(good) and s.validate(good) == good
    assert s.contains({"act": "relu", "n": 2, "x": 0.5})  # order of keys is free
    assert not s.contains({"x": 0.5, "n": 2})  # missing
    assert not s.contains({**good, "extra": 1})  # unknown
    assert not s.contains({**good, "n": 4})
    with pytest.raises(ValueError, match=r"'n'.*4"):
        s.validate({**good, "n": 4})
    with pytest.raises(ValueError, match=r"'act'.*'gelu'"):
        s.validate({**good, "act": "gelu"})
    with pytest.raises(ValueError, match=r"'x'.*2\.5"):
        s.validate({**good, "x": 2.5})
    with pytest.raises(ValueError, match=r"missing \['act'\]"):
        s.validate({"x": 0.5, "n": 2})
    with pytest.raises(ValueError, match=r"unknown \['y'\]"):
        s.validate({**good, "y": 1})
    assert s.validate({"act": "tanh", "n": 1, "x": 0.0}) == {"x": 0.0, "n": 1, "act": "tanh"}


def test_key_identifies_configurations() -> None:
    s = Space({"x": (0.0, 1.0), "act": ("relu", "tanh")})
    assert s.key({"act": "relu", "x": 0.5}) == s.key({"x": 0.5, "act": "relu"}) == (0.5, "relu")
    assert s.key({"x": 0.5, "act": "tanh"}) != s.key({"x": 0.5, "act": "relu"})


# --- unit mapping, clipping, neighbours ---------------------------------------------------------------------


def test_unit_round_trip() -> None:
    for p in (Float(-3.0, 7.0), Float(1e-6, 1e2, log=True)):
        for u in np.linspace(0, 1, 11):
            assert p.to_unit(p.from_unit(u)) == pytest.approx(u, abs=1e-12)
        assert p.from_unit(-0.5) == p.low and p.from_unit(1.5) == p.high
    lg = Float(1e-4, 1.0, log=True)
    assert lg.from_unit(0.5) == pytest.approx(1e-2)
    assert Int(0, 10).from_unit(0.5) == 5 and type(Int(0, 10).from_unit(0.43)) is int
    assert Int(1, 100, log=True).from_unit(0.5) == 10


def test_clip() -> None:
    assert Float(0.0, 1.0).clip(3.0) == 1.0 and Float(0.0, 1.0).clip(-3) == 0.0
    assert Int(0, 10).clip(3.6) == 4 and Int(0, 10).clip(99) == 10 and type(Int(0, 10).clip(2.2)) is int
    assert Choice([1, 2, 4]).clip(3.1) == 4 and Choice([1, 2, 4]).clip(2) == 2
    with pytest.raises(ValueError, match="'c'"):
        Choice(["a", "b"]).clip("c")


def test_neighbour() -> None:
    rng = np.random.default_rng(0)
    ordered = Choice([10, 20, 30, 40])
    for v in ordered.values:
        i = ordered.index(v)
        assert {abs(ordered.index(ordered.neighbour(v, rng)) - i) for _ in range(50)} == {1}
    unordered = Choice(["a", "b", "c"])
    assert {unordered.neighbour("a", rng) for _ in range(100)} == {"b", "c"}
    assert Choice(["only"]).neighbour("only", rng) == "only"


# --- grid ---------------------------------------------------------------------------------------------------


def test_grid() -> None:
    s = Space({"x": (0.0, 1.0), "n": (0, 2), "lr": Float(1e-3, 1e-1, log=True), "act": ("relu", "tanh")})
    pts = list(s.grid(5))
    assert len(pts) == s.grid_size(5) == 5 * 3 * 5 * 2  # Int(0, 2) has only 3 distinct grid values
    assert len({s.key(p) for p in pts}) == len(pts)
    assert all(s.contains(p) for p in pts)
    assert sorted({p["x"] for p in pts}) == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert sorted({p["n"] for p in pts}) == [0, 1, 2]
    assert sorted({p["lr"] for p in pts}) == pytest.approx([1e-3, 10**-2.5, 1e-2, 10**-1.5, 1e-1])
    assert {p["act"] for p in pts} == {"relu", "tanh"}
    assert pts[0] == {"x": 0.0, "n": 0, "lr": pytest.approx(1e-3), "act": "relu"}
    assert list(Space({"x": (0.0, 1.0)}).grid(1)) == [{"x": 0.0}]


# --- describe round trip ------------------------------------------------------------------------------------


def test_describe_round_trip() -> None:
    s = Space(MIXED)
    desc = s.describe()
    assert Space.from_description(desc) == s
    again = Space.from_description(json.loads(json.dumps(desc)))
    assert again == s
    assert [type(again[n]) for n in again] == [type(s[n]) for n in s]
    assert again["width"].log and not again["layers"].log
    assert desc["act"] == {"type": "Choice", "values": ["relu", "tanh", "gelu"]}
    assert desc["layers"] == {"type": "Int", "low": 1, "high": 6, "log": False}


def test_reprs_are_readable() -> None:
    assert repr(Float(0.1, 1.0, log=True)) == "Float(0.1, 1.0, log=True)"
    assert repr(Int(1, 5)) == "Int(1, 5)"
    assert repr(Choice(["a"])) == "Choice(['a'])"
    assert Float(0, 1) == Float(0.0, 1.0) and Float(0.0, 1.0) != Int(0, 1)
    assert hash(Float(0, 1)) == hash(Float(0.0, 1.0))


# --- properties over random spaces --------------------------------------------------------------------------




@settings(max_examples=80, deadline=None)
@given(ps=st.lists(params(wide=True), min_size=1, max_size=5), seed=st.integers(0, 2**32 - 1))
def test_random_spaces_sample_contains_and_round_trip(ps, seed) -> None:
    s = Space({f"p{i}": p for i, p in enumerate(ps)})
    assert Space.from_description(json.loads(json.dumps(s.describe()))) == s
    rng = np.random.default_rng(seed)
    for _ in range(20):
        cfg = s.sample(rng)
        assert s.contains(cfg)
        assert s.validate(cfg) == cfg
    for name, p in s.items():
        if not isinstance(p, Choice):
            assert p.contains(p.from_unit(0.0)) and p.contains(p.from_unit(1.0)) and p.contains(p.from_unit(0.5))
            assert math.isfinite(p.to_unit(p.from_unit(0.5)))
        for v in p.grid(3):
            assert p.contains(v), (name, v)
