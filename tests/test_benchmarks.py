"""Tests for evohpo.benchmarks: known minima, bounds, the Problem API and hand-computed values."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

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
)
FIXED_2D = ("himmelblau", "bukin", "eggcrate", "keane", "leon")
N_DIM = tuple(n for n in EXPECTED_NAMES if n not in FIXED_2D)


def test_names_complete() -> None:
    """NAMES lists exactly the 15 functions, lowercase, no duplicates."""
    assert set(NAMES) == set(EXPECTED_NAMES)
    assert len(NAMES) == len(set(NAMES)) == 15
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


@pytest.mark.parametrize("name", ["rosenbrock", "bisphere", "birastrigin"])
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
