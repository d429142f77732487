"""Tests for evohpo.benchmarks: known minima, bounds, the Problem API and hand-computed values."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evohpo.testing import functions as benchmarks
from evohpo.testing.functions import NAMES, Problem, get

EXPECTED_NAMES = (
    "sphere",
    "rosenbrock",
    "step",
    "quartic",
    "rastrigin",
    "griewank",
    "schwefel",
    "bisphere",
    "birastrigin",
    "ackley",
    "himmelblau",
    "bukin",
    "eggcrate",
    "keane",
    "leon",
    *(BBOB := (
        "ellipsoid",
        "rot-ellipsoid",
        "discus",
        "bent-cigar",
        "sharp-ridge",
        "diff-powers",
        "rot-rastrigin",
        "schaffer-f7",
    )),
)
FIXED_2D = ("himmelblau", "bukin", "eggcrate", "keane", "leon")
N_DIM = tuple(n for n in EXPECTED_NAMES if n not in FIXED_2D)


def test_names_complete() -> None:
    """NAMES lists exactly the 23 functions, lowercase, no duplicates."""
    assert set(NAMES) == set(EXPECTED_NAMES)
    assert len(NAMES) == len(set(NAMES)) == 23
    assert all(n == n.lower() for n in NAMES)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_problem_shape(name: str) -> None:
    """Default problems are 2-D with consistent bounds, argmin and name."""
    p = get(name)
    assert isinstance(p, Problem)
    assert p.name == name
    assert p.dim == 2
    assert len(p.bounds) == p.dim == len(p.argmin)
    for (lo, hi), a in zip(p.bounds, p.argmin, strict=True):
        assert lo < hi
        assert lo <= a <= hi
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.dim = 3  # type: ignore[misc]


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_argmin_attains_minimum(name: str) -> None:
    """fn(argmin) equals the stated minimum."""
    p = get(name)
    assert abs(p.fn(np.array(p.argmin)) - p.minimum) <= 1e-4


@pytest.mark.parametrize("name", N_DIM)
@pytest.mark.parametrize("dim", [3, 5, 10])
def test_argmin_attains_minimum_higher_dims(name: str, dim: int) -> None:
    """The minimum holds in higher dimensions too (Schwefel's rounded constant leaves ~1.3e-5 per dim)."""
    p = get(name, dim)
    assert p.dim == dim == len(p.bounds) == len(p.argmin)
    assert abs(p.fn(np.array(p.argmin)) - p.minimum) <= 2e-5 * dim


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_minimum_not_beaten_by_random_points(name: str) -> None:
    """10,000 seeded uniform points in the box never go below the known minimum."""
    p = get(name)
    rng = np.random.default_rng(12345)
    lo = np.array([b[0] for b in p.bounds])
    hi = np.array([b[1] for b in p.bounds])
    points = rng.uniform(lo, hi, size=(10_000, p.dim))
    values = np.array([p.fn(x) for x in points])
    assert np.all(np.isfinite(values))
    assert values.min() >= p.minimum - 1e-9


@pytest.mark.parametrize("name", ["sphere", "rastrigin", "griewank", "schwefel", "bisphere", "birastrigin"])
def test_minimum_not_beaten_random_5d(name: str) -> None:
    """Same check in 5 dimensions for a few scalable functions."""
    p = get(name, 5)
    rng = np.random.default_rng(7)
    lo = np.array([b[0] for b in p.bounds])
    hi = np.array([b[1] for b in p.bounds])
    values = [p.fn(x) for x in rng.uniform(lo, hi, size=(2_000, p.dim))]
    assert min(values) >= p.minimum - 1e-9


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_loss_matches_fn_and_space(name: str) -> None:
    """loss(params) equals fn(vector); space has dim entries x0.. with the bounds."""
    p = get(name)
    space = p.space
    assert list(space) == [f"x{i}" for i in range(p.dim)]
    assert tuple(space.values()) == p.bounds
    rng = np.random.default_rng(3)
    for _ in range(20):
        params = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in space.items()}
        vec = np.array([params[f"x{i}"] for i in range(p.dim)])
        loss = p.loss(params)
        assert isinstance(loss, float)
        assert loss == p.fn(vec)
        assert p.regret(loss) == pytest.approx(loss - p.minimum)
        assert p.regret(loss) >= -1e-9


def test_loss_key_order_and_missing_key() -> None:
    """loss reads params by key, not by insertion order, and rejects missing keys."""
    p = get("sphere", 3)
    assert p.loss({"x2": 3.0, "x0": 1.0, "x1": 2.0}) == 14.0
    with pytest.raises(KeyError, match="x1"):
        p.loss({"x0": 1.0, "x2": 2.0})


def test_space_higher_dim() -> None:
    """space has one entry per dimension with the per-dimension bounds."""
    p = get("griewank", 7)
    assert p.space == {f"x{i}": (-600.0, 600.0) for i in range(7)}


def test_regret() -> None:
    """regret is loss minus the known minimum."""
    assert get("sphere").regret(2.5) == 2.5
    k = get("keane")
    assert k.regret(k.minimum) == 0.0
    assert k.regret(0.0) == pytest.approx(0.6736675, abs=1e-6)


# ---- bad input ----------------------------------------------------------------------------------------


def test_unknown_name() -> None:
    """Unknown names raise ValueError naming the name and listing the valid ones."""
    with pytest.raises(ValueError, match="nosuchfn") as err:
        get("nosuchfn")
    for n in NAMES:
        assert n in str(err.value)


def test_name_case_insensitive() -> None:
    """Names are matched case-insensitively and normalised to lowercase."""
    assert get("Rastrigin").name == "rastrigin"


@pytest.mark.parametrize("name", FIXED_2D)
@pytest.mark.parametrize("dim", [1, 3, 10])
def test_fixed_dim_rejects_other_dims(name: str, dim: int) -> None:
    """Fixed 2-D functions accept dim=2 or None and reject anything else."""
    assert get(name, 2).dim == 2
    with pytest.raises(ValueError, match=f"dim={dim}"):
        get(name, dim)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
@pytest.mark.parametrize("dim", [0, -3])
def test_nonpositive_dim(name: str, dim: int) -> None:
    """dim < 1 raises ValueError mentioning the value."""
    with pytest.raises(ValueError, match=str(dim)):
        get(name, dim)


@pytest.mark.parametrize("dim", [2.5, "3", True])
def test_non_integer_dim(dim: object) -> None:
    """Non-integer dims raise ValueError mentioning the value."""
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        get("sphere", dim)  # type: ignore[arg-type]


def test_numpy_integer_dim() -> None:
    """numpy integers are accepted as dims."""
    assert get("sphere", np.int64(4)).dim == 4


@pytest.mark.parametrize("name", ["rosenbrock", "bisphere", "birastrigin", *BBOB])
def test_min_dim_two(name: str) -> None:
    """Functions that degenerate in 1-D require dim >= 2."""
    with pytest.raises(ValueError, match="dim=1"):
        get(name, 1)


@pytest.mark.parametrize("name", ["sphere", "step", "quartic", "rastrigin", "griewank", "schwefel", "ackley"])
def test_one_dim_allowed(name: str) -> None:
    """Separable functions work in one dimension."""
    p = get(name, 1)
    assert p.dim == 1
    assert abs(p.fn(np.array(p.argmin)) - p.minimum) <= 1e-4


# ---- hand-computed values -----------------------------------------------------------------------------


def test_sphere_values() -> None:
    """sphere(1, 2) = 5."""
    assert get("sphere").fn(np.array([1.0, 2.0])) == 5.0


@pytest.mark.parametrize("dim", [1, 2, 3, 5, 10])
def test_rastrigin_at_ones(dim: int) -> None:
    """rastrigin(1, ..., 1) = d."""
    assert get("rastrigin", dim).fn(np.ones(dim)) == pytest.approx(dim, abs=1e-9)


@pytest.mark.parametrize("dim", [2, 3, 5, 10])
def test_rosenbrock_values(dim: int) -> None:
    """rosenbrock(0) = d - 1 and rosenbrock(1) = 0."""
    fn = get("rosenbrock", dim).fn
    assert fn(np.zeros(dim)) == dim - 1
    assert fn(np.ones(dim)) == 0.0


def test_rosenbrock_2d_value() -> None:
    """rosenbrock(-1, 1) = 100 * 0 + 4 = 4 and (0, 1) = 100 + 1."""
    fn = get("rosenbrock").fn
    assert fn(np.array([-1.0, 1.0])) == 4.0
    assert fn(np.array([0.0, 1.0])) == 101.0


def test_step_values() -> None:
    """step rounds each coordinate then squares: (0.49, -0.51, 1.5) -> 0 + 1 + 4."""
    fn = get("step", 3).fn
    assert fn(np.array([0.49, -0.51, 1.5])) == 5.0
    assert fn(np.array([0.3, -0.3, 0.49])) == 0.0
    assert fn(np.array([-5.12, 5.12, 0.0])) == 50.0


def test_quartic_values_and_determinism() -> None:
    """quartic(1, 1, 1) = 1 + 2 + 3 and repeated evaluations agree (no noise)."""
    fn = get("quartic", 3).fn
    assert fn(np.ones(3)) == 6.0
    assert fn(np.array([0.5, -1.0, 0.0])) == 0.0625 + 2.0
    x = np.array([0.3, -0.7, 1.1])
    assert len({fn(x) for _ in range(10)}) == 1


def test_griewank_values() -> None:
    """griewank(0, sqrt(2) pi) = 1 + 2 pi^2 / 4000 - cos(0) cos(pi) = 2 + pi^2 / 2000."""
    fn = get("griewank").fn
    assert fn(np.array([0.0, math.sqrt(2.0) * math.pi])) == pytest.approx(2.0 + math.pi**2 / 2000.0)


@pytest.mark.parametrize("dim", [1, 2, 4])
def test_schwefel_values(dim: int) -> None:
    """schwefel(0) = 418.9829 d."""
    assert get("schwefel", dim).fn(np.zeros(dim)) == pytest.approx(418.9829 * dim)


@pytest.mark.parametrize("dim", [1, 2, 3, 7])
def test_ackley_at_ones(dim: int) -> None:
    """ackley(1, ..., 1) = 20 - 20 exp(-0.2), since cos(2 pi) = 1."""
    assert get("ackley", dim).fn(np.ones(dim)) == pytest.approx(20.0 - 20.0 * math.exp(-0.2))


def _lunacek(dim: int) -> tuple[float, float]:
    """Return (s, mu2) for Lunacek's functions, computed independently of the module."""
    s = 1.0 - 1.0 / (2.0 * math.sqrt(dim + 20.0) - 8.2)
    return s, -math.sqrt((2.5**2 - 1.0) / s)


@pytest.mark.parametrize("dim", [2, 3, 10, 30])
def test_bisphere_birastrigin_values(dim: int) -> None:
    """At the origin both funnels give 6.25 d; at mu2 the second funnel gives d."""
    bis = get("bisphere", dim).fn
    bir = get("birastrigin", dim).fn
    assert bis(np.zeros(dim)) == pytest.approx(6.25 * dim)
    # cos(2 pi (0 - 2.5)) = cos(-5 pi) = -1, so each coordinate adds 10 * 2.
    assert bir(np.zeros(dim)) == pytest.approx(6.25 * dim + 20.0 * dim)
    s, mu2 = _lunacek(dim)
    x2 = np.full(dim, mu2)
    assert bis(x2) == pytest.approx(float(dim))
    assert bir(x2) == pytest.approx(dim + 10.0 * dim * (1.0 - math.cos(2.0 * math.pi * (mu2 - 2.5))))
    assert get("bisphere", dim).argmin == (2.5,) * dim


def test_bisphere_second_funnel_is_local_only() -> None:
    """Near mu2 (clipped to the box) the second funnel stays above the global minimum by at least d."""
    dim = 30
    _, mu2 = _lunacek(dim)
    x = np.full(dim, max(mu2, -5.12))
    assert get("bisphere", dim).fn(x) >= dim


def test_himmelblau_four_minima() -> None:
    """All four Himmelblau minima are zero and inside the bounds; (0, 0) gives 121 + 49."""
    p = get("himmelblau")
    for m in benchmarks.HIMMELBLAU_MINIMA:
        assert p.fn(np.array(m)) == pytest.approx(0.0, abs=1e-12)
        assert all(lo <= v <= hi for v, (lo, hi) in zip(m, p.bounds, strict=True))
    assert p.fn(np.zeros(2)) == 170.0


def test_bukin_values() -> None:
    """bukin(-10, 0) = 100 sqrt(1) = 100; bukin(-5, 0.25) = 0.01 * 5."""
    fn = get("bukin").fn
    assert fn(np.array([-10.0, 0.0])) == pytest.approx(100.0)
    assert fn(np.array([-5.0, 0.25])) == pytest.approx(0.05)
    assert get("bukin").bounds == ((-15.0, -5.0), (-3.0, 3.0))


def test_eggcrate_values() -> None:
    """eggcrate(pi, 0) = pi^2 (sin pi = 0); eggcrate(pi/2, 0) = pi^2/4 + 25."""
    fn = get("eggcrate").fn
    assert fn(np.array([math.pi, 0.0])) == pytest.approx(math.pi**2)
    assert fn(np.array([math.pi / 2, 0.0])) == pytest.approx(math.pi**2 / 4 + 25.0)


def test_keane_values() -> None:
    """keane is -sin^4(x)/x on the axis, symmetric in x <-> y, zero on the diagonal and at the origin."""
    p = get("keane")
    assert p.fn(np.array([math.pi / 2, 0.0])) == pytest.approx(-2.0 / math.pi)
    assert p.fn(np.array([1.0, 1.0])) == 0.0
    assert p.fn(np.zeros(2)) == 0.0
    assert p.fn(np.array(p.argmin[::-1])) == pytest.approx(p.minimum)
    assert p.minimum == pytest.approx(-0.673668, abs=1e-6)
    assert p.argmin[0] == pytest.approx(1.393249, abs=1e-6)
    assert p.bounds == ((0.0, 10.0), (0.0, 10.0))


def test_keane_argmin_is_local_min() -> None:
    """Small moves inside the box from the argmin never improve on the minimum."""
    p = get("keane")
    a = np.array(p.argmin)
    for dx in (-1e-4, 0.0, 1e-4):
        for dy in (0.0, 1e-4):
            assert p.fn(a + np.array([dx, dy])) >= p.minimum


def test_leon_values() -> None:
    """leon(0, 0) = 1 and leon(-1, -1) = 4."""
    fn = get("leon").fn
    assert fn(np.zeros(2)) == 1.0
    assert fn(np.array([-1.0, -1.0])) == 4.0


@pytest.mark.parametrize("name", FIXED_2D)
def test_fixed_dim_fn_rejects_wrong_length(name: str) -> None:
    """2-D functions refuse vectors of another length instead of silently ignoring coordinates."""
    with pytest.raises(ValueError, match="3"):
        get(name).fn(np.zeros(3))


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_fn_accepts_lists_and_returns_float(name: str) -> None:
    """fn accepts any array-like and returns a plain float."""
    p = get(name)
    out = p.fn(list(p.argmin))  # type: ignore[arg-type]
    assert type(out) is float


# ---- rotated and ill-conditioned functions (BBOB style) ------------------------------------------------


def _tosz1(t: float) -> float:
    """BBOB's T_osz of one number, written out independently of the module."""
    if t == 0.0:
        return 0.0
    th = math.log(abs(t))
    c1, c2 = (10.0, 7.9) if t > 0 else (5.5, 3.1)
    return math.copysign(math.exp(th + 0.049 * (math.sin(c1 * th) + math.sin(c2 * th))), t)


def _unit(dim: int, i: int, scale: float = 1.0) -> np.ndarray:
    e = np.zeros(dim)
    e[i] = scale
    return e


@pytest.mark.parametrize("name", BBOB)
@pytest.mark.parametrize("dim", [2, 5, 20])
def test_bbob_minimum_at_shifted_minimizer(name: str, dim: int) -> None:
    """[-5, 5]^d, minimum exactly 0 at the argmin, which is shift(name, d): inside [-4, 4]^d and off the centre."""
    p = get(name, dim)
    assert p.bounds == ((-5.0, 5.0),) * dim and p.minimum == 0.0
    a = np.array(p.argmin)
    assert np.array_equal(a, benchmarks.shift(name, dim))
    assert np.all(np.abs(a) <= 4.0) and np.linalg.norm(a) > 0.5 * math.sqrt(dim)
    assert p.fn(a) == 0.0
    assert p.loss({f"x{i}": v for i, v in enumerate(p.argmin)}) == 0.0


@pytest.mark.parametrize("name", BBOB)
@pytest.mark.parametrize("dim", [2, 5, 20])
def test_bbob_positive_elsewhere(name: str, dim: int) -> None:
    """Positive at 2,000 uniform points of the box, at the centre and right next to the minimizer."""
    p = get(name, dim)
    rng = np.random.default_rng(dim)
    assert all(p.fn(x) > 0.0 for x in rng.uniform(-5.0, 5.0, size=(2_000, dim)))
    assert p.fn(np.zeros(dim)) > 0.0
    a = np.array(p.argmin)
    for step in (1e-3, 1e-6):
        for _ in range(20):
            d = rng.standard_normal(dim)
            assert p.fn(a + step * d / np.linalg.norm(d)) > 0.0


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(BBOB), st.integers(2, 8).flatmap(
    lambda n: st.lists(st.floats(-5.0, 5.0, allow_nan=False), min_size=n, max_size=n)))
def test_bbob_nonnegative_and_zero_only_at_minimizer(name: str, x: list[float]) -> None:
    """Any point of the box: f >= 0, and f == 0 only at the minimizer."""
    p = get(name, len(x))
    v = p.fn(np.array(x))
    assert math.isfinite(v) and v >= 0.0
    if v == 0.0:
        assert np.allclose(x, p.argmin, atol=1e-6)


@pytest.mark.parametrize("name", [n for n in BBOB if n != "ellipsoid"])
@pytest.mark.parametrize("dim", [2, 5, 20])
def test_rotations_orthogonal_and_fixed(name: str, dim: int) -> None:
    """R and Q are orthogonal, really rotate (no axis stays put), differ from each other and between functions,
    are read-only and the same array on every call."""
    mats = [benchmarks.rotation(name, dim, k) for k in (1, 2)]
    for k, m in enumerate(mats, 1):
        assert m.shape == (dim, dim)
        assert np.allclose(m @ m.T, np.eye(dim), atol=1e-12) and np.allclose(m.T @ m, np.eye(dim), atol=1e-12)
        assert np.max(np.abs(m)) < 1.0 - 1e-6
        assert m is benchmarks.rotation(name, dim, k)
        with pytest.raises(ValueError):
            m[0, 0] = 1.0
    assert not np.allclose(mats[0], mats[1])
    assert not np.allclose(mats[0], benchmarks.rotation("discus" if name != "discus" else "bent-cigar", dim, 1))


def test_shifts_differ_between_functions_and_dims() -> None:
    shifts = {n: benchmarks.shift(n, 5) for n in BBOB}
    assert len({tuple(v) for v in shifts.values()}) == len(BBOB)
    assert not np.allclose(benchmarks.shift("discus", 5), benchmarks.shift("discus", 6)[:5])


def test_underscore_names() -> None:
    assert get("rot_ellipsoid", 5).name == "rot-ellipsoid"
    assert get("Schaffer_F7", 3).argmin == get("schaffer-f7", 3).argmin


_POINTS_CODE = """
import json, numpy as np
from evohpo.testing.functions import get
names = {names!r}
out = {{}}
for n in names:
    for d in (2, 5, 20):
        p = get(n, d)
        x = np.linspace(-4.5, 4.5, d)
        out[f"{{n}}-{{d}}"] = [p.fn(x), p.fn(-x), list(p.argmin)]
print(json.dumps(out))
"""


def _points() -> dict:
    out = {}
    for n in BBOB:
        for d in (2, 5, 20):
            p = get(n, d)
            x = np.linspace(-4.5, 4.5, d)
            out[f"{n}-{d}"] = [p.fn(x), p.fn(-x), list(p.argmin)]
    return out


def test_bbob_deterministic_across_calls_and_processes() -> None:
    """The same values and minimizers on repeated calls and in a fresh interpreter with another hash seed."""
    here = _points()
    assert _points() == here
    blas = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "MKL_", "OMP_"))}
    env = {"PYTHONHASHSEED": "12345", "PATH": "", **blas}  # the same BLAS kernel (OPENBLAS_CORETYPE): same digits
    proc = subprocess.run([sys.executable, "-c", _POINTS_CODE.format(names=BBOB)], capture_output=True, text=True,
                          timeout=120, env=env, check=True)
    assert json.loads(proc.stdout) == json.loads(json.dumps(here))


@pytest.mark.parametrize("dim", [2, 5, 20])
def test_ellipsoid_values(dim: int) -> None:
    """Along axis i the weight is 1e6^((i - 1) / (d - 1)); T_osz(+-1) = +-1; T_osz(2) written out."""
    p = get("ellipsoid", dim)
    a = np.array(p.argmin)
    assert p.fn(a + _unit(dim, 0)) == pytest.approx(1.0)
    assert p.fn(a - _unit(dim, dim - 1)) == pytest.approx(1e6)
    assert p.fn(a + _unit(dim, 0) + _unit(dim, dim - 1)) == pytest.approx(1e6 + 1.0)
    if dim == 5:
        assert p.fn(a + _unit(dim, 2)) == pytest.approx(1e3)
    assert p.fn(a + _unit(dim, 0, 2.0)) == pytest.approx(_tosz1(2.0) ** 2)
    ln2 = math.log(2.0)
    assert _tosz1(2.0) == pytest.approx(2.0 * math.exp(0.049 * (math.sin(10 * ln2) + math.sin(7.9 * ln2))))


@pytest.mark.parametrize("dim", [2, 5, 20])
def test_rotated_values_along_rotated_axes(dim: int) -> None:
    """At x_opt + R^T v the rotation R is undone: values for unit (and scaled unit) v follow by hand."""
    def at(name: str, v: np.ndarray) -> float:
        p = get(name, dim)
        return p.fn(np.array(p.argmin) + benchmarks.rotation(name, dim, 1).T @ v)

    e1, e2, ed = _unit(dim, 0), _unit(dim, 1), _unit(dim, dim - 1)
    assert at("rot-ellipsoid", ed) == pytest.approx(1e6)
    assert at("rot-ellipsoid", -e1) == pytest.approx(1.0)
    assert at("discus", e1) == pytest.approx(1e6)
    assert at("discus", -e2) == pytest.approx(1.0)
    assert at("diff-powers", 2.0 * ed) == pytest.approx(8.0)  # sqrt(2^6)
    assert at("diff-powers", e1 + ed) == pytest.approx(math.sqrt(2.0))
    assert at("diff-powers", 0.5 * e1) == pytest.approx(0.5)
    # bent cigar: T_asy(-e2) = -e2, so z = -R e2
    c = benchmarks.rotation("bent-cigar", dim, 1)[0, 1]
    assert at("bent-cigar", -e2) == pytest.approx(c**2 + 1e6 * (1.0 - c**2))
    # sharp ridge: Lambda^10 e1 = e1, so z = Q e1
    q11 = benchmarks.rotation("sharp-ridge", dim, 2)[0, 0]
    assert at("sharp-ridge", e1) == pytest.approx(q11**2 + 100.0 * math.sqrt(1.0 - q11**2))
    # ... and Lambda^10 e_d = sqrt(10) e_d, so z = sqrt(10) Q e_d
    q1d = benchmarks.rotation("sharp-ridge", dim, 2)[0, dim - 1]
    assert at("sharp-ridge", ed) == pytest.approx(10 * q1d**2 + 100.0 * math.sqrt(10.0 * (1.0 - q1d**2)))


def test_rot_rastrigin_and_schaffer_values() -> None:
    """In 2-D: T_osz(e1) = T_asy(e1) = e1 (first coordinate, exponent 1), Lambda^10 = diag(1, sqrt(10))."""
    lam = np.array([1.0, math.sqrt(10.0)])
    r, q = benchmarks.rotation("rot-rastrigin", 2, 1), benchmarks.rotation("rot-rastrigin", 2, 2)
    p = get("rot-rastrigin", 2)
    z = r @ (lam * q[:, 0])
    expect = 10.0 * (2 - math.cos(2 * math.pi * z[0]) - math.cos(2 * math.pi * z[1])) + z @ z
    assert p.fn(np.array(p.argmin) + r.T @ np.array([1.0, 0.0])) == pytest.approx(expect)

    r, q = benchmarks.rotation("schaffer-f7", 2, 1), benchmarks.rotation("schaffer-f7", 2, 2)
    p = get("schaffer-f7", 2)
    z = -lam * q[:, 0]  # T_asy(-e1) = -e1
    s = math.hypot(z[0], z[1])
    expect = (math.sqrt(s) * (1.0 + math.sin(50.0 * s**0.2) ** 2)) ** 2
    assert p.fn(np.array(p.argmin) + r.T @ np.array([-1.0, 0.0])) == pytest.approx(expect)
    # s = |z| = |Lambda q1|, between 1 and sqrt(10)
    assert 1.0 <= s <= math.sqrt(10.0)


def test_bbob_scale_at_random_points() -> None:
    """Ill-conditioned in 20-D: the median over the box is huge for ellipsoid/bent cigar, moderate for the others."""
    rng = np.random.default_rng(0)
    xs = rng.uniform(-5.0, 5.0, size=(200, 20))
    med = {n: float(np.median([get(n, 20).fn(x) for x in xs])) for n in BBOB}
    assert med["ellipsoid"] > 1e6 and med["rot-ellipsoid"] > 1e6 and med["bent-cigar"] > 1e8
    assert 10.0 < med["schaffer-f7"] < 1e3 and 100.0 < med["rot-rastrigin"] < 1e4
