"""Standard optimizer test functions with their usual bounds and known global minima.

Every function takes a 1-D vector and returns a float. :func:`get` wraps one in a :class:`Problem` that
also carries the bounds, the known minimum and one minimizer, and offers a Propulate-style ``space``
dict and a ``loss(params)`` callable keyed ``x0 .. x{dim-1}``.

Definitions (``d`` is the dimension, sums run over ``i = 1..d``):

- ``sphere``: ``sum x_i^2`` on [-5.12, 5.12]^d, min 0 at 0.
- ``rosenbrock``: ``sum_{i<d} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`` on [-2.048, 2.048]^d, min 0 at 1;
  needs ``d >= 2`` (for ``d == 1`` the sum is empty and the function is constant).
- ``step``: ``sum floor(x_i + 0.5)^2`` on [-5.12, 5.12]^d, min 0 on the plateau ``|x_i| < 0.5``
  (argmin 0). This is the rounded-square form (De Jong F3 variant), not Propulate's ``sum int(x_i)``
  whose minimum is ``-5 d`` at the lower corner.
- ``quartic``: ``sum i x_i^4`` on [-1.28, 1.28]^d, min 0 at 0. Deterministic: De Jong's F4 adds a
  Gaussian noise term per evaluation, which is left out here so that the minimum is exact.
- ``rastrigin``: ``10 d + sum (x_i^2 - 10 cos(2 pi x_i))`` on [-5.12, 5.12]^d, min 0 at 0.
- ``griewank``: ``1 + sum x_i^2 / 4000 - prod cos(x_i / sqrt(i))`` on [-600, 600]^d, min 0 at 0.
- ``schwefel``: ``418.9829 d - sum x_i sin(sqrt|x_i|)`` on [-500, 500]^d, min 0 at 420.9687 (the
  rounded constants leave about 1.3e-5 per dimension at the argmin; no point in the box goes below 0).
- ``bisphere``: Lunacek's double sphere ``min(sum (x_i - mu1)^2, d' d + s sum (x_i - mu2)^2)`` with
  ``mu1 = 2.5``, ``d' = 1``, ``s = 1 - 1 / (2 sqrt(d + 20) - 8.2)``, ``mu2 = -sqrt((mu1^2 - d') / s)``,
  on [-5.12, 5.12]^d, min 0 at ``mu1``. Needs ``d >= 2`` (``s`` is negative for ``d == 1``). Note that
  Propulate's code uses ``s = 1 - sqrt(1 / (2 sqrt(d + 20) - 8.2))``; this module follows Lunacek et al.
- ``birastrigin``: Lunacek's bi-Rastrigin, ``bisphere + 10 sum (1 - cos(2 pi (x_i - mu1)))``, same
  parameters, bounds and minimum (0 at ``mu1``); needs ``d >= 2``.
- ``ackley``: ``-20 exp(-0.2 sqrt(mean x_i^2)) - exp(mean cos(2 pi x_i)) + 20 + e`` on
  [-32.768, 32.768]^d, min 0 at 0.
- ``himmelblau`` (2-D): ``(x^2 + y - 11)^2 + (x + y^2 - 7)^2`` on [-5, 5]^2, min 0 at (3, 2) and three
  other points (:data:`HIMMELBLAU_MINIMA`).
- ``bukin`` (Bukin N.6, 2-D): ``100 sqrt|y - 0.01 x^2| + 0.01 |x + 10|`` on x in [-15, -5],
  y in [-3, 3], min 0 at (-10, 1).
- ``eggcrate`` (2-D): ``x^2 + y^2 + 25 (sin^2 x + sin^2 y)`` on [-5, 5]^2, min 0 at (0, 0).
- ``keane`` (2-D): ``-sin^2(x - y) sin^2(x + y) / sqrt(x^2 + y^2)`` on [0, 10]^2 (Jamil & Yang 2013;
  Propulate uses [-10, 10]^2, which has the same minimum by symmetry), min about -0.6736675 at
  (1.3932491, 0) and (0, 1.3932491); defined as 0 at the origin (its limit).
- ``leon`` (2-D): ``100 (y - x^3)^2 + (1 - x)^2`` on [-1.2, 1.2]^2, min 0 at (1, 1).

Rotated and ill-conditioned functions, after the BBOB noiseless suite (Hansen et al., "Real-parameter
black-box optimization benchmarking 2009: noiseless functions definitions", f2 and f10 to f15, f17), all on
[-5, 5]^d with minimum 0 (BBOB's ``f_opt`` is left out) at a shifted minimizer ``x_opt``, and all needing
``d >= 2``. Notation: ``y = x - x_opt``; ``R`` and ``Q`` are fixed orthogonal matrices; ``Lambda^a`` is the
diagonal matrix with entries ``a^((i - 1) / (2 (d - 1)))``; ``T_osz`` is BBOB's oscillation transform
(``sign(t) exp(t^ + 0.049 (sin(c1 t^) + sin(c2 t^)))`` with ``t^ = log|t|``, ``(c1, c2) = (10, 7.9)`` for
``t > 0`` and ``(5.5, 3.1)`` otherwise, 0 at 0) and ``T_asy^b`` its asymmetry transform (``t_i`` becomes
``t_i^(1 + b (i - 1) / (d - 1) sqrt(t_i))`` where ``t_i > 0``). Both transforms are strictly increasing with
``T(0) = 0``, so every function below is 0 at ``x_opt`` and positive everywhere else.

- ``ellipsoid`` (f2, separable): ``z = T_osz(y)``, ``sum 1e6^((i - 1) / (d - 1)) z_i^2`` (condition 1e6).
- ``rot-ellipsoid`` (f10): the same with ``z = T_osz(R y)``.
- ``discus`` (f11): ``z = T_osz(R y)``, ``1e6 z_1^2 + sum_{i>1} z_i^2``.
- ``bent-cigar`` (f12): ``z = R T_asy^0.5(R y)``, ``z_1^2 + 1e6 sum_{i>1} z_i^2``.
- ``sharp-ridge`` (f13): ``z = Q Lambda^10 R y``, ``z_1^2 + 100 sqrt(sum_{i>1} z_i^2)``.
- ``diff-powers`` (f14): ``z = R y``, ``sqrt(sum |z_i|^(2 + 4 (i - 1) / (d - 1)))``.
- ``rot-rastrigin`` (f15): ``z = R Lambda^10 Q T_asy^0.2(T_osz(R y))``, ``10 (d - sum cos(2 pi z_i)) + |z|^2``.
- ``schaffer-f7`` (f17): ``z = Lambda^10 Q T_asy^0.5(R y)``, ``s_i = sqrt(z_i^2 + z_{i+1}^2)``,
  ``(mean_{i<d} (sqrt(s_i) + sqrt(s_i) sin^2(50 s_i^0.2)))^2 + 10 sum max(0, |x_i| - 5)^2`` (the boundary
  penalty is 0 inside the box).

``x_opt`` (:func:`shift`) is uniform in [-4, 4]^d and ``R``, ``Q`` (:func:`rotation`) are the ``Q`` factors of
the QR decomposition of a standard normal matrix, sign-corrected (Haar-distributed); all are drawn from
``numpy.random.default_rng([crc32(name), d, k])``, so they are the same on every call, process and machine,
differ between functions and dimensions, and are computed once per (function, dimension). Names accept
``_`` for ``-`` (``get("rot_ellipsoid", 5)``).
"""

from __future__ import annotations

import functools
import math
import operator
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HIMMELBLAU_MINIMA",
    "KEANE_ARGMIN",
    "KEANE_MINIMUM",
    "NAMES",
    "Problem",
    "ackley",
    "bent_cigar",
    "birastrigin",
    "bisphere",
    "bukin",
    "diff_powers",
    "discus",
    "eggcrate",
    "ellipsoid",
    "get",
    "griewank",
    "himmelblau",
    "keane",
    "leon",
    "quartic",
    "rastrigin",
    "rosenbrock",
    "rot_ellipsoid",
    "rot_rastrigin",
    "rotation",
    "schaffer_f7",
    "schwefel",
    "sharp_ridge",
    "shift",
    "sphere",
    "step",
]


@dataclass(frozen=True)
class Problem:
    """A test function together with its box bounds and known global minimum."""

    name: str
    dim: int
    bounds: tuple[tuple[float, float], ...]
    minimum: float
    argmin: tuple[float, ...]
    fn: Callable[[np.ndarray], float]

    @property
    def space(self) -> dict[str, tuple[float, float]]:
        """Return the Propulate-style search space ``{"x0": (low, high), ...}``."""
        return {f"x{i}": (float(lo), float(hi)) for i, (lo, hi) in enumerate(self.bounds)}

    def loss(self, params: dict[str, float]) -> float:
        """Evaluate the function on a dict keyed ``x0 .. x{dim-1}`` (other keys are ignored)."""
        missing = [f"x{i}" for i in range(self.dim) if f"x{i}" not in params]
        if missing:
            raise KeyError(f"{self.name}: params lack {missing}; expected keys x0..x{self.dim - 1}")
        vec = np.array([float(params[f"x{i}"]) for i in range(self.dim)], dtype=float)
        return float(self.fn(vec))

    def regret(self, loss: float) -> float:
        """Return ``loss - minimum``, the distance of a loss from the known optimum."""
        return float(loss) - self.minimum


def _vec(x: np.ndarray) -> np.ndarray:
    """Return ``x`` as a 1-D float array."""
    return np.asarray(x, dtype=float).reshape(-1)


def sphere(x: np.ndarray) -> float:
    """Sphere: sum of squares."""
    v = _vec(x)
    return float(np.sum(v**2))


def rosenbrock(x: np.ndarray) -> float:
    """Rosenbrock's banana valley, chained over consecutive coordinates."""
    v = _vec(x)
    return float(np.sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2))


def step(x: np.ndarray) -> float:
    """Step: sum of squared rounded coordinates, ``sum floor(x_i + 0.5)^2``."""
    v = _vec(x)
    return float(np.sum(np.floor(v + 0.5) ** 2))


def quartic(x: np.ndarray) -> float:
    """Quartic (De Jong F4) without its noise term: ``sum i x_i^4``."""
    v = _vec(x)
    return float(np.sum(np.arange(1, v.size + 1) * v**4))


def rastrigin(x: np.ndarray) -> float:
    """Rastrigin: ``10 d + sum (x_i^2 - 10 cos(2 pi x_i))``."""
    v = _vec(x)
    return float(10.0 * v.size + np.sum(v**2 - 10.0 * np.cos(2.0 * np.pi * v)))


def griewank(x: np.ndarray) -> float:
    """Griewank: ``1 + sum x_i^2 / 4000 - prod cos(x_i / sqrt(i))``."""
    v = _vec(x)
    return float(1.0 + np.sum(v**2) / 4000.0 - np.prod(np.cos(v / np.sqrt(np.arange(1, v.size + 1)))))


SCHWEFEL_CONSTANT = 418.9829
SCHWEFEL_ARGMIN = 420.9687


def schwefel(x: np.ndarray) -> float:
    """Schwefel 2.26: ``418.9829 d - sum x_i sin(sqrt|x_i|)``."""
    v = _vec(x)
    return float(SCHWEFEL_CONSTANT * v.size - np.sum(v * np.sin(np.sqrt(np.abs(v)))))


LUNACEK_MU1 = 2.5
LUNACEK_D = 1.0


def _lunacek_s(n: int) -> float:
    """Return Lunacek's funnel-width factor ``s = 1 - 1 / (2 sqrt(n + 20) - 8.2)``."""
    return 1.0 - 1.0 / (2.0 * math.sqrt(n + 20.0) - 8.2)


def _double_sphere(v: np.ndarray) -> float:
    """Return Lunacek's double-funnel term ``min(sum (x - mu1)^2, d n + s sum (x - mu2)^2)``."""
    n = v.size
    s = _lunacek_s(n)
    if s <= 0.0:
        raise ValueError(f"Lunacek double-funnel functions need dim >= 2, got dim={n}")
    mu2 = -math.sqrt((LUNACEK_MU1**2 - LUNACEK_D) / s)
    return min(float(np.sum((v - LUNACEK_MU1) ** 2)), LUNACEK_D * n + s * float(np.sum((v - mu2) ** 2)))


def bisphere(x: np.ndarray) -> float:
    """Lunacek's double sphere (bi-Rastrigin without the cosine term)."""
    return float(_double_sphere(_vec(x)))


def birastrigin(x: np.ndarray) -> float:
    """Lunacek's bi-Rastrigin: double sphere plus ``10 sum (1 - cos(2 pi (x_i - mu1)))``."""
    v = _vec(x)
    return float(_double_sphere(v) + 10.0 * np.sum(1.0 - np.cos(2.0 * np.pi * (v - LUNACEK_MU1))))


def ackley(x: np.ndarray) -> float:
    """Ackley with a = 20, b = 0.2, c = 2 pi."""
    v = _vec(x)
    return float(
        -20.0 * np.exp(-0.2 * np.sqrt(np.mean(v**2))) - np.exp(np.mean(np.cos(2.0 * np.pi * v))) + 20.0 + np.e
    )


def _xy(x: np.ndarray) -> tuple[float, float]:
    """Unpack a 2-vector into two floats, rejecting any other length."""
    v = _vec(x)
    if v.size != 2:
        raise ValueError(f"expected a 2-D point, got {v.size} coordinates")
    return float(v[0]), float(v[1])


HIMMELBLAU_MINIMA: tuple[tuple[float, float], ...] = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.283185991286170),
    (3.584428340330492, -1.848126526964404),
)


def himmelblau(x: np.ndarray) -> float:
    """Himmelblau: ``(x^2 + y - 11)^2 + (x + y^2 - 7)^2``."""
    a, b = _xy(x)
    return (a**2 + b - 11.0) ** 2 + (a + b**2 - 7.0) ** 2


def bukin(x: np.ndarray) -> float:
    """Bukin N.6: ``100 sqrt|y - 0.01 x^2| + 0.01 |x + 10|``."""
    a, b = _xy(x)
    return 100.0 * math.sqrt(abs(b - 0.01 * a**2)) + 0.01 * abs(a + 10.0)


def eggcrate(x: np.ndarray) -> float:
    """Egg crate: ``x^2 + y^2 + 25 (sin^2 x + sin^2 y)``."""
    a, b = _xy(x)
    return a**2 + b**2 + 25.0 * (math.sin(a) ** 2 + math.sin(b) ** 2)


# Root of tan(t) = 4 t near 1.39 (stationary point of -sin^4(t) / t on the axis).
KEANE_ARGMIN: tuple[float, float] = (1.3932490753255884, 0.0)
KEANE_MINIMUM = -0.6736675211468546


def keane(x: np.ndarray) -> float:
    """Keane's 2-D bump: ``-sin^2(x - y) sin^2(x + y) / sqrt(x^2 + y^2)``, 0 at the origin."""
    a, b = _xy(x)
    r = math.hypot(a, b)
    if r == 0.0:
        return 0.0
    return -(math.sin(a - b) ** 2) * math.sin(a + b) ** 2 / r


def leon(x: np.ndarray) -> float:
    """Leon: ``100 (y - x^3)^2 + (1 - x)^2``."""
    a, b = _xy(x)
    return 100.0 * (b - a**3) ** 2 + (1.0 - a) ** 2


# -- rotated and ill-conditioned functions (BBOB style) ----------------------------------------------------

SHIFT_RANGE = 4.0  # x_opt is uniform in [-4, 4]^d, inside the [-5, 5]^d box
BBOB_BOUND = 5.0


def _rng(name: str, dim: int, k: int) -> np.random.Generator:
    """The generator of stream ``k`` of function ``name`` in ``dim`` dimensions (crc32: stable across processes)."""
    return np.random.default_rng([zlib.crc32(name.encode()), dim, k])


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@functools.cache
def shift(name: str, dim: int) -> np.ndarray:
    """The minimizer ``x_opt`` of the shifted function ``name`` in ``dim`` dimensions (read-only, cached)."""
    return _frozen(_rng(name, dim, 0).uniform(-SHIFT_RANGE, SHIFT_RANGE, dim))


@functools.cache
def rotation(name: str, dim: int, k: int = 1) -> np.ndarray:
    """Fixed orthogonal matrix ``k`` (1: ``R``, 2: ``Q``) of function ``name`` in ``dim`` dimensions: the Q factor of
    a seeded standard normal matrix, columns' signs fixed so that R's diagonal is positive (read-only, cached)."""
    q, r = np.linalg.qr(_rng(name, dim, k).standard_normal((dim, dim)))
    return _frozen(q * np.sign(np.diag(r)))


@functools.cache
def _powers(dim: int) -> np.ndarray:
    """``(i - 1) / (d - 1)`` for ``i = 1..d``."""
    return _frozen(np.arange(dim) / (dim - 1))


def _lam(alpha: float, dim: int) -> np.ndarray:
    """The diagonal of BBOB's ``Lambda^alpha``: ``alpha^((i - 1) / (2 (d - 1)))``."""
    return alpha ** (0.5 * _powers(dim))


def _tosz(t: np.ndarray) -> np.ndarray:
    """BBOB's oscillation transform, elementwise; strictly increasing, 0 at 0, +-1 at +-1."""
    a = np.abs(t)
    th = np.log(a, out=np.zeros_like(a), where=a > 0)
    pos = t > 0
    c1 = np.where(pos, 10.0, 5.5)
    c2 = np.where(pos, 7.9, 3.1)
    return np.sign(t) * np.exp(th + 0.049 * (np.sin(c1 * th) + np.sin(c2 * th)))


def _tasy(t: np.ndarray, beta: float) -> np.ndarray:
    """BBOB's asymmetry transform: ``t_i^(1 + beta (i - 1) / (d - 1) sqrt(t_i))`` where ``t_i > 0``, else ``t_i``."""
    pos = np.maximum(t, 0.0)
    return np.where(t > 0, pos ** (1.0 + beta * _powers(t.size) * np.sqrt(pos)), t)


def _y(x: np.ndarray, name: str) -> np.ndarray:
    """``x - x_opt`` of function ``name``, checking ``d >= 2``."""
    v = _vec(x)
    if v.size < 2:
        raise ValueError(f"{name} needs dim >= 2, got dim={v.size}")
    return v - shift(name, v.size)


def ellipsoid(x: np.ndarray) -> float:
    """Separable ellipsoid (BBOB f2): ``sum 1e6^((i - 1) / (d - 1)) T_osz(y)_i^2``."""
    z = _tosz(_y(x, "ellipsoid"))
    return float(np.sum(1e6 ** _powers(z.size) * z**2))


def rot_ellipsoid(x: np.ndarray) -> float:
    """Rotated ellipsoid (BBOB f10): the ellipsoid of ``T_osz(R y)``."""
    y = _y(x, "rot-ellipsoid")
    z = _tosz(rotation("rot-ellipsoid", y.size, 1) @ y)
    return float(np.sum(1e6 ** _powers(z.size) * z**2))


def discus(x: np.ndarray) -> float:
    """Discus (BBOB f11): ``1e6 z_1^2 + sum_{i>1} z_i^2``, ``z = T_osz(R y)``."""
    y = _y(x, "discus")
    z = _tosz(rotation("discus", y.size, 1) @ y)
    return float(1e6 * z[0] ** 2 + np.sum(z[1:] ** 2))


def bent_cigar(x: np.ndarray) -> float:
    """Bent cigar (BBOB f12): ``z_1^2 + 1e6 sum_{i>1} z_i^2``, ``z = R T_asy^0.5(R y)``."""
    y = _y(x, "bent-cigar")
    r = rotation("bent-cigar", y.size, 1)
    z = r @ _tasy(r @ y, 0.5)
    return float(z[0] ** 2 + 1e6 * np.sum(z[1:] ** 2))


def sharp_ridge(x: np.ndarray) -> float:
    """Sharp ridge (BBOB f13): ``z_1^2 + 100 sqrt(sum_{i>1} z_i^2)``, ``z = Q Lambda^10 R y``."""
    y = _y(x, "sharp-ridge")
    n = y.size
    z = rotation("sharp-ridge", n, 2) @ (_lam(10.0, n) * (rotation("sharp-ridge", n, 1) @ y))
    return float(z[0] ** 2 + 100.0 * math.sqrt(float(np.sum(z[1:] ** 2))))


def diff_powers(x: np.ndarray) -> float:
    """Different powers (BBOB f14): ``sqrt(sum |z_i|^(2 + 4 (i - 1) / (d - 1)))``, ``z = R y``."""
    y = _y(x, "diff-powers")
    z = rotation("diff-powers", y.size, 1) @ y
    return float(math.sqrt(float(np.sum(np.abs(z) ** (2.0 + 4.0 * _powers(z.size))))))


def rot_rastrigin(x: np.ndarray) -> float:
    """Rotated Rastrigin (BBOB f15): ``10 (d - sum cos(2 pi z_i)) + |z|^2``,
    ``z = R Lambda^10 Q T_asy^0.2(T_osz(R y))``."""
    y = _y(x, "rot-rastrigin")
    n = y.size
    r, q = rotation("rot-rastrigin", n, 1), rotation("rot-rastrigin", n, 2)
    z = r @ (_lam(10.0, n) * (q @ _tasy(_tosz(r @ y), 0.2)))
    return float(10.0 * (n - np.sum(np.cos(2.0 * np.pi * z))) + np.sum(z**2))


def schaffer_f7(x: np.ndarray) -> float:
    """Schaffer's F7 (BBOB f17, condition 10): ``(mean (sqrt(s_i) + sqrt(s_i) sin^2(50 s_i^0.2)))^2`` plus the boundary
    penalty ``10 sum max(0, |x_i| - 5)^2``, ``s_i = sqrt(z_i^2 + z_{i+1}^2)``, ``z = Lambda^10 Q T_asy^0.5(R y)``."""
    y = _y(x, "schaffer-f7")
    n = y.size
    z = _lam(10.0, n) * (rotation("schaffer-f7", n, 2) @ _tasy(rotation("schaffer-f7", n, 1) @ y, 0.5))
    s = np.sqrt(z[:-1] ** 2 + z[1:] ** 2)
    root = np.sqrt(s)
    pen = float(np.sum(np.maximum(0.0, np.abs(_vec(x)) - BBOB_BOUND) ** 2))
    return float(np.mean(root + root * np.sin(50.0 * s**0.2) ** 2) ** 2 + 10.0 * pen)


@dataclass(frozen=True)
class _Spec:
    """Static description of one test function, before a dimension is chosen."""

    fn: Callable[[np.ndarray], float]
    bounds: tuple[tuple[float, float], ...]  # per dimension if fixed_dim, else one pair repeated
    minimum: float
    argmin: tuple[float, ...]  # per dimension if fixed_dim, else one value repeated
    fixed_dim: int | None = None
    min_dim: int = 1
    shifted: str | None = None  # the minimizer is shift(shifted, dim), not argmin repeated


def _scalable(
    fn: Callable[[np.ndarray], float], lo: float, hi: float, argmin: float, min_dim: int = 1
) -> _Spec:
    """Describe an n-dimensional function with the same bounds and minimizer in every coordinate."""
    return _Spec(fn, ((lo, hi),), 0.0, (argmin,), None, min_dim)


def _fixed2(
    fn: Callable[[np.ndarray], float],
    bounds: tuple[tuple[float, float], tuple[float, float]],
    argmin: tuple[float, float],
    minimum: float = 0.0,
) -> _Spec:
    """Describe a 2-D-only function."""
    return _Spec(fn, bounds, minimum, argmin, 2)


_SPECS: dict[str, _Spec] = {
    "sphere": _scalable(sphere, -5.12, 5.12, 0.0),
    "rosenbrock": _scalable(rosenbrock, -2.048, 2.048, 1.0, min_dim=2),
    "step": _scalable(step, -5.12, 5.12, 0.0),
    "quartic": _scalable(quartic, -1.28, 1.28, 0.0),
    "rastrigin": _scalable(rastrigin, -5.12, 5.12, 0.0),
    "griewank": _scalable(griewank, -600.0, 600.0, 0.0),
    "schwefel": _scalable(schwefel, -500.0, 500.0, SCHWEFEL_ARGMIN),
    "bisphere": _scalable(bisphere, -5.12, 5.12, LUNACEK_MU1, min_dim=2),
    "birastrigin": _scalable(birastrigin, -5.12, 5.12, LUNACEK_MU1, min_dim=2),
    "ackley": _scalable(ackley, -32.768, 32.768, 0.0),
    "himmelblau": _fixed2(himmelblau, ((-5.0, 5.0), (-5.0, 5.0)), HIMMELBLAU_MINIMA[0]),
    "bukin": _fixed2(bukin, ((-15.0, -5.0), (-3.0, 3.0)), (-10.0, 1.0)),
    "eggcrate": _fixed2(eggcrate, ((-5.0, 5.0), (-5.0, 5.0)), (0.0, 0.0)),
    "keane": _fixed2(keane, ((0.0, 10.0), (0.0, 10.0)), KEANE_ARGMIN, KEANE_MINIMUM),
    "leon": _fixed2(leon, ((-1.2, 1.2), (-1.2, 1.2)), (1.0, 1.0)),
}


def _bbob(name: str, fn: Callable[[np.ndarray], float]) -> _Spec:
    """Describe a shifted BBOB-style function on [-5, 5]^d, min 0 at ``shift(name, d)``, ``d >= 2``."""
    return _Spec(fn, ((-BBOB_BOUND, BBOB_BOUND),), 0.0, (), None, 2, name)


_SPECS.update({
    "ellipsoid": _bbob("ellipsoid", ellipsoid),
    "rot-ellipsoid": _bbob("rot-ellipsoid", rot_ellipsoid),
    "discus": _bbob("discus", discus),
    "bent-cigar": _bbob("bent-cigar", bent_cigar),
    "sharp-ridge": _bbob("sharp-ridge", sharp_ridge),
    "diff-powers": _bbob("diff-powers", diff_powers),
    "rot-rastrigin": _bbob("rot-rastrigin", rot_rastrigin),
    "schaffer-f7": _bbob("schaffer-f7", schaffer_f7),
})

NAMES: tuple[str, ...] = tuple(_SPECS)

DEFAULT_DIM = 2


def get(name: str, dim: int | None = None) -> Problem:
    """Return the named test problem in ``dim`` dimensions (default 2, or the function's fixed dimension)."""
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else name
    if key not in _SPECS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(NAMES)}")
    spec = _SPECS[key]
    if dim is not None:
        if isinstance(dim, bool):
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        try:
            dim = operator.index(dim)
        except TypeError:
            raise ValueError(f"dim must be a positive integer, got {dim!r}") from None
        if dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
    if spec.fixed_dim is not None:
        if dim is not None and dim != spec.fixed_dim:
            raise ValueError(f"{key} is {spec.fixed_dim}-dimensional only, got dim={dim}")
        n = spec.fixed_dim
    else:
        n = DEFAULT_DIM if dim is None else dim
        if n < spec.min_dim:
            raise ValueError(f"{key} needs dim >= {spec.min_dim}, got dim={n}")
    reps = 1 if spec.fixed_dim is not None else n
    bounds = tuple((float(lo), float(hi)) for lo, hi in spec.bounds) * reps
    if spec.shifted is not None:
        argmin = tuple(float(a) for a in shift(spec.shifted, n))
    else:
        argmin = tuple(float(a) for a in spec.argmin) * reps
    return Problem(name=key, dim=n, bounds=bounds, minimum=float(spec.minimum), argmin=argmin, fn=spec.fn)
