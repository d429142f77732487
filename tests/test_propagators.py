"""Tests for evohpo.core.propagators: every child stays in the space; each operator does what it says."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import spaces

from evohpo.core.guided import ModelGuided, Screened
from evohpo.core.propagators import (
    AdaptiveGA,
    Compose,
    Conditional,
    CrossoverUniform,
    GridSearch,
    IntervalMutationNormal,
    PointMutation,
    Portfolio,
    RandomInit,
    SelectBest,
    SelectTournament,
    SelectUniform,
    default_propagator,
    distinct,
    grid_search,
    random_search,
)
from evohpo.core.space import Choice, Float, Int, Space, SpaceExhausted

# --- random spaces and parents ------------------------------------------------------------------------------




def edge_config(space: Space, rng: np.random.Generator) -> dict:
    """A configuration whose values are often at a bound (where clipping matters)."""
    cfg = {}
    for name, p in space.items():
        r = rng.random()
        if isinstance(p, Choice):
            cfg[name] = p.values[0] if r < 0.3 else (p.values[-1] if r < 0.6 else p.sample(rng))
        else:
            cfg[name] = p.low if r < 0.3 else (p.high if r < 0.6 else p.sample(rng))
    return cfg


def all_propagators(space: Space, rng: np.random.Generator) -> dict[str, object]:
    """Every propagator, with randomized settings (extreme sigmas too, so clipping is exercised)."""
    n = len(space)
    pts = int(rng.integers(1, n + 1))
    sigma = float(rng.choice([1e-3, 0.05, 0.5, 5.0]))
    prob = float(rng.choice([0.0, 0.3, 1.0]))
    k = int(rng.integers(1, 5))
    stride = int(rng.integers(1, 4))
    return {
        "best+cross": Compose(SelectBest(2), CrossoverUniform(prob)),
        "uniform+cross": Compose(SelectUniform(k), CrossoverUniform(prob)),
        "tournament+cross": Compose(SelectTournament(k, size=3), CrossoverUniform(1.0)),
        "point": PointMutation(space, points=pts, prob=prob),
        "interval": IntervalMutationNormal(space, sigma_factor=sigma, points=pts, prob=1.0),
        "random": RandomInit(space, prob=prob),
        "compose": Compose(SelectTournament(2), CrossoverUniform(0.7), PointMutation(space, prob=0.5),
                           IntervalMutationNormal(space, sigma_factor=sigma, points=pts), RandomInit(space, 0.1)),
        "conditional": Conditional(4, IntervalMutationNormal(space, sigma_factor=sigma), RandomInit(space)),
        "default": default_propagator(space, pop_size=3),
        "default-big": default_propagator(space, pop_size=3, crossover_prob=1.0, mutation_prob=1.0,
                                          random_init_prob=0.0, sigma_factor=sigma),
        "grid": GridSearch(space, points=3, offset=int(rng.integers(stride)), stride=stride),
        "random_search": random_search(space),
        "adaptive_ga": AdaptiveGA(space, pop_size=2, scale=float(rng.uniform(0.1, 3.0))),
        "portfolio": Portfolio([default_propagator(space, pop_size=2), AdaptiveGA(space, pop_size=2)]),
        "guided": ModelGuided(space, pop_size=2, n_startup=2),
        "screened": Screened(space, default_propagator(space, pop_size=2), pop_size=2, n_candidates=4, n_startup=2),
    }


@settings(max_examples=80, deadline=None)
@given(space=spaces(), n_parents=st.integers(0, 8), seed=st.integers(0, 2**32 - 1))
def test_every_child_of_every_propagator_is_inside_the_space(space, n_parents, seed) -> None:
    rng = np.random.default_rng(seed)
    parents = [edge_config(space, rng) for _ in range(n_parents)]
    before = [dict(p) for p in parents]
    for name, prop in all_propagators(space, rng).items():
        for _ in range(6):
            try:
                children = prop(parents, rng)
            except SpaceExhausted:
                assert name == "grid", name  # a grid is used up: the search ends
                break
            for child in children:
                assert space.contains(child), (name, child, space)
            if name in ("conditional", "default", "default-big", "grid", "random", "random_search"):
                assert len(children) >= 1, name  # an evolver always needs a candidate from these
    assert parents == before  # operators never modify their input


# --- selection ----------------------------------------------------------------------------------------------

POOL = [{"i": i} for i in range(20)]


def test_select_best_returns_the_first_k() -> None:
    rng = np.random.default_rng(0)
    assert SelectBest(3)(POOL, rng) == POOL[:3]
    assert SelectBest(1)(POOL, rng) == [POOL[0]]
    assert SelectBest(50)(POOL, rng) == POOL
    assert SelectBest(2)([], rng) == []


def test_select_uniform_is_distinct_and_uniform() -> None:
    rng = np.random.default_rng(1)
    counts: Counter[int] = Counter()
    for _ in range(3000):
        picked = SelectUniform(3)(POOL, rng)
        idx = [p["i"] for p in picked]
        assert len(set(idx)) == 3
        counts.update(idx)
    # each index is picked with probability 3/20 per draw: mean 450, sd ~20
    assert set(counts) == set(range(20)) and all(abs(c - 450) < 120 for c in counts.values()), counts
    assert sorted(p["i"] for p in SelectUniform(30)(POOL, rng)) == list(range(20))


def test_select_tournament_favours_low_indices() -> None:
    rng = np.random.default_rng(2)
    n = len(POOL)
    picks = [p["i"] for _ in range(2000) for p in SelectTournament(2, size=3)(POOL, rng)]
    # min of 3 uniform draws on 0..19: E = sum_{i>=1} ((n - i) / n)^3 = 4.5125; uniform mean is 9.5
    expected = sum(((n - i) / n) ** 3 for i in range(1, n))
    sd = np.std([min(rng.integers(n, size=3)) for _ in range(4000)])
    assert abs(np.mean(picks) - expected) < 6 * sd / math.sqrt(len(picks))
    assert np.mean(picks) < (n - 1) / 2 - 3
    uniform = [p["i"] for _ in range(2000) for p in SelectTournament(2, size=1)(POOL, rng)]
    assert abs(np.mean(uniform) - (n - 1) / 2) < 0.5  # size 1: no pressure
    assert SelectTournament(3)([], rng) == []


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_selection_counts_are_validated(bad) -> None:
    for cls in (SelectBest, SelectUniform, SelectTournament):
        with pytest.raises(ValueError, match=repr(bad).replace(".", r"\.")):
            cls(bad)
    with pytest.raises(ValueError, match="size"):
        SelectTournament(2, size=0)


def test_distinct() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 5, 100):
        for k in (1, 2, 5, 30, 200):
            idx = distinct(rng, n, k)
            assert len(idx) == min(n, k) == len(set(idx)) and all(0 <= i < n for i in idx)


# --- crossover ----------------------------------------------------------------------------------------------

A = {"a": 0, "b": 0, "c": 0, "d": 0}
B = {"a": 1, "b": 1, "c": 1, "d": 1}


def test_crossover_prob_zero_copies_the_first_parent() -> None:
    rng, cx = np.random.default_rng(4), CrossoverUniform(0.0)
    for _ in range(2000):
        (child,) = cx([A, B], rng)
        assert child == A and child is not A


def test_crossover_prob_one_mixes_genes() -> None:
    rng, cx = np.random.default_rng(5), CrossoverUniform(1.0)
    from_b = Counter()
    mixed = 0
    for _ in range(2000):
        (child,) = cx([A, B], rng)
        assert set(child) == set(A) and set(child.values()) <= {0, 1}
        from_b.update(k for k, v in child.items() if v == 1)
        mixed += 0 < sum(child.values()) < 4
    # every gene comes from B with probability 1/2 (sd of a count ~22); a mixed child has P = 1 - 2 / 16
    assert all(abs(c - 1000) < 130 for c in from_b.values()), from_b
    assert abs(mixed / 2000 - 14 / 16) < 0.05


def test_crossover_probability_is_real() -> None:
    prob, n, d = 0.7, 2000, len(A)
    rng, cx = np.random.default_rng(6), CrossoverUniform(prob)
    freq = sum(cx([A, B], rng)[0] != A for _ in range(n)) / n
    # the child differs from parent 0 iff crossover happens and at least one of d differing genes comes from B
    p = prob * (1 - 0.5**d)  # 0.65625
    sd = math.sqrt(p * (1 - p) / n)  # ~0.0106
    assert abs(freq - p) < 5 * sd, (freq, p, sd)


def test_crossover_edge_cases() -> None:
    rng = np.random.default_rng(7)
    assert CrossoverUniform(1.0)([], rng) == []
    assert CrossoverUniform(1.0)([A], rng) == [A]
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="prob"):
            CrossoverUniform(bad)


# --- mutation -----------------------------------------------------------------------------------------------


def test_interval_mutation_on_log_float_moves_in_log_space() -> None:
    space = Space({"lr": Float(1e-4, 1.0, log=True)})
    sigma, parent = 0.05, {"lr": 1e-2}  # the parent sits in the middle of the log range
    mut, rng = IntervalMutationNormal(space, sigma_factor=sigma), np.random.default_rng(8)
    r = np.array([math.log(mut([parent], rng)[0]["lr"] / parent["lr"]) for _ in range(4000)])
    s = sigma * math.log(1e4)  # sd of the log step: 0.46 (no draw reaches a bound: that is 10 sd away)
    # symmetric in log space: the median log ratio is ~0 (its sd ~0.009) and the tails mirror each other.
    # A step of 0.05 in linear units from 0.01 would clip almost half the children to 1e-4 (log ratio -4.6).
    assert abs(np.median(r)) < 0.05
    q05, q95 = np.quantile(r, [0.05, 0.95])
    assert abs(q05 + q95) < 0.1
    assert abs(q95 - 1.645 * s) < 0.1
    assert abs(np.std(r) - s) < 0.05


def test_interval_mutation_on_linear_float_is_additive() -> None:
    space = Space({"x": Float(-10.0, 10.0)})
    mut, rng = IntervalMutationNormal(space, sigma_factor=0.01), np.random.default_rng(9)
    d = np.array([mut([{"x": 3.0}], rng)[0]["x"] - 3.0 for _ in range(4000)])
    assert abs(np.median(d)) < 0.02 and abs(np.std(d) - 0.2) < 0.02  # sd = 0.01 x range of 20


def test_multi_scale_steps_mix_the_full_sigma_with_log_uniform_smaller_ones() -> None:
    space = Space({"x": Float(0.0, 1.0)})
    rng = np.random.default_rng(13)

    def steps(mut: IntervalMutationNormal) -> np.ndarray:
        return np.abs([mut([{"x": 0.5}], rng)[0]["x"] - 0.5 for _ in range(6000)])

    plain = steps(IntervalMutationNormal(space, sigma_factor=0.05))
    multi = steps(IntervalMutationNormal(space, sigma_factor=0.05, sigma_min=5e-4, fine_prob=0.5))
    fine = steps(IntervalMutationNormal(space, sigma_factor=0.05, sigma_min=5e-4))
    # |N(0, s)| < 0.001 for s = 0.05: 1.6%; log-uniform sigma in [5e-4, 0.05]: 28.6% (200,000 draws)
    assert np.mean(plain < 1e-3) < 0.03
    assert 0.24 < np.mean(fine < 1e-3) < 0.33
    assert abs(np.mean(multi < 1e-3) - (np.mean(plain < 1e-3) + np.mean(fine < 1e-3)) / 2) < 0.02
    # the largest steps keep the full sigma: half of the draws use it
    assert np.quantile(multi, 0.99) > 0.8 * np.quantile(plain, 0.99)


@pytest.mark.parametrize("kwargs", [{"sigma_min": 0.0}, {"sigma_min": 0.1}, {"sigma_min": 1e-3, "fine_prob": 1.5}])
def test_multi_scale_arguments_are_checked(kwargs) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs)) if "fine_prob" not in kwargs else "fine_prob"):
        IntervalMutationNormal(Space({"x": Float(0.0, 1.0)}), sigma_factor=0.05, **kwargs)


@pytest.mark.parametrize("param", [Int(0, 100), Int(1, 10**4, log=True), Int(-5, 5)])
def test_integer_mutation_yields_ints(param) -> None:
    space = Space({"n": param})
    mut, rng = IntervalMutationNormal(space, sigma_factor=0.2), np.random.default_rng(10)
    parent = {"n": param.from_unit(0.5)}
    children = [mut([parent], rng)[0]["n"] for _ in range(500)]
    assert all(type(c) is int and param.contains(c) for c in children)
    assert len(set(children)) > 3  # it does move
    point = PointMutation(space)
    assert all(type(point([parent], rng)[0]["n"]) is int for _ in range(100))


def test_ordered_choice_moves_to_a_neighbour_index() -> None:
    values = [1, 2, 4, 8, 16]
    space = Space({"c": Choice(values)})
    mut, rng = IntervalMutationNormal(space), np.random.default_rng(11)
    for i, v in enumerate(values):
        moved = Counter(values.index(mut([{"c": v}], rng)[0]["c"]) - i for _ in range(400))
        assert set(moved) <= {-1, 1}
        if 0 < i < len(values) - 1:
            assert abs(moved[1] - 200) < 60  # both directions, about equally
        else:
            assert set(moved) == ({1} if i == 0 else {-1})


def test_string_choice_moves_to_a_different_value() -> None:
    space = Space({"act": Choice(["relu", "tanh", "gelu", "elu"])})
    mut, rng = IntervalMutationNormal(space), np.random.default_rng(12)
    got = Counter(mut([{"act": "tanh"}], rng)[0]["act"] for _ in range(900))
    assert set(got) == {"relu", "gelu", "elu"}
    assert all(abs(c - 300) < 80 for c in got.values()), got


def test_mutation_probability_and_points() -> None:
    space = Space({f"x{i}": Float(0.0, 1.0) for i in range(6)})
    rng = np.random.default_rng(13)
    parent = space.sample(rng)
    assert all(PointMutation(space, prob=0.0)([parent], rng) == [parent] for _ in range(100))
    for points in (1, 3, 6):
        changed = [sum(c[k] != parent[k] for k in parent)
                   for c in (PointMutation(space, points=points)([parent], rng)[0] for _ in range(200))]
        assert set(changed) == {points}  # a resampled float never equals the old one
    changed = [PointMutation(space, prob=0.3)([parent], rng)[0] != parent for _ in range(2000)]
    assert abs(np.mean(changed) - 0.3) < 5 * math.sqrt(0.3 * 0.7 / 2000)
    out = IntervalMutationNormal(space, points=2)([parent, parent], rng)
    assert len(out) == 2 and all(sum(c[k] != parent[k] for k in parent) <= 2 for c in out)
    with pytest.raises(ValueError, match="sigma_factor"):
        IntervalMutationNormal(space, sigma_factor=0.0)
    with pytest.raises(ValueError, match="points"):
        PointMutation(space, points=0)


def test_random_init() -> None:
    space = Space({"x": (0.0, 1.0), "c": ("a", "b")})
    rng = np.random.default_rng(14)
    (made,) = RandomInit(space)([], rng)
    assert space.contains(made)
    parent = {"x": 0.5, "c": "a"}
    assert RandomInit(space, prob=0.0)([parent], rng) == [parent]
    assert all(c["x"] != 0.5 for c in RandomInit(space, prob=1.0)([parent] * 50, rng))


# --- combinators --------------------------------------------------------------------------------------------


def tag(label):
    return lambda pool, rng: [{"by": label, "n": len(pool)}]


def test_conditional_uses_otherwise_below_pop_size() -> None:
    rng = np.random.default_rng(15)
    cond = Conditional(4, then=tag("then"), otherwise=tag("otherwise"))
    for n in range(8):
        (out,) = cond([{"i": i} for i in range(n)], rng)
        assert out == {"by": "then" if n >= 4 else "otherwise", "n": n}
    with pytest.raises(ValueError, match="pop_size"):
        Conditional(0, tag("a"), tag("b"))


def test_conditional_carries_the_state_of_its_branches() -> None:
    rng = np.random.default_rng(21)
    space = Space({"a": (0, 9)})
    c = Conditional(100, then=RandomInit(space), otherwise=GridSearch(space, points=10))
    first = [c([], rng)[0]["a"] for _ in range(4)]
    assert first == [0, 1, 2, 3]
    d = Conditional(100, then=RandomInit(space), otherwise=GridSearch(space, points=10))
    d.load_state_dict(c.state_dict())
    assert [d([], rng)[0]["a"] for _ in range(3)] == [4, 5, 6]
    ga = default_propagator(space, 4)
    ga.load_state_dict(ga.state_dict())  # no stateful step: an empty round trip


def test_compose_applies_in_order() -> None:
    rng = np.random.default_rng(16)
    double = lambda ps, r: [p for p in ps for _ in range(2)]  # noqa: E731
    first = lambda ps, r: list(ps[:1])  # noqa: E731
    assert Compose(double, first)([{"i": 1}, {"i": 2}], rng) == [{"i": 1}]
    assert len(Compose(first, double, double)([{"i": 1}, {"i": 2}], rng)) == 4
    with pytest.raises(ValueError, match="at least one"):
        Compose()


def test_default_propagator_random_until_pop_size_then_breeds_near_parents() -> None:
    space = Space({f"x{i}": Float(0.0, 1.0) for i in range(4)})
    prop, rng = default_propagator(space, pop_size=5, random_init_prob=0.0), np.random.default_rng(17)
    near = [{k: 0.9 + 0.01 * i for k in space} for i in range(5)]
    # below pop_size: random configurations (not near the parents)
    early = [prop(near[:4], rng)[0]["x0"] for _ in range(300)]
    assert abs(np.median(early) - 0.5) < 0.1
    # at pop_size: children of the parents (at most one coordinate per mutation step moves far)
    late = [prop(near, rng)[0] for _ in range(300)]
    assert np.median([c["x0"] for c in late]) > 0.85
    assert np.mean([sum(abs(c[k] - 0.92) > 0.2 for k in c) for c in late]) < 1.0


def test_same_seed_same_sequence() -> None:
    space = Space({"x": Float(1e-3, 1.0, log=True), "n": (1, 9), "c": ("a", "b", "c"), "o": (1, 2, 4, 8)})
    pool = [space.sample(np.random.default_rng(i)) for i in range(8)]

    def run(seed):
        prop, rng = default_propagator(space, pop_size=4), np.random.default_rng(seed)
        return [prop(pool, rng) for _ in range(50)]

    assert run(3) == run(3)
    assert run(3) != run(4)


# --- grid search --------------------------------------------------------------------------------------------

GRID_SPACE = Space({"a": ("x", "y", "z"), "b": (0, 4), "c": (0.0, 1.0)})  # 3 x 3 x 3 points with points=3


def walk(g: GridSearch, rng: np.random.Generator) -> list[dict]:
    out = []
    while g.cursor < g.size:
        out.extend(g([], rng))
    return out


def test_grid_search_single_worker_follows_space_grid() -> None:
    rng = np.random.default_rng(18)
    g = grid_search(GRID_SPACE, points=3)
    assert g.size == 27 == GRID_SPACE.grid_size(3)
    assert walk(g, rng) == list(GRID_SPACE.grid(3))
    with pytest.raises(SpaceExhausted, match="grid done: all 27 points evaluated"):  # used up: the search ends
        g([], rng)


@pytest.mark.parametrize("stride", [1, 2, 3, 5, 7, 27, 40])
def test_grid_search_visits_every_point_exactly_once_across_workers(stride) -> None:
    rng = np.random.default_rng(19)
    seen: Counter[tuple] = Counter()
    for offset in range(stride):
        for cfg in walk(GridSearch(GRID_SPACE, points=3, offset=offset, stride=stride), rng):
            seen[GRID_SPACE.key(cfg)] += 1
    assert set(seen) == {GRID_SPACE.key(c) for c in GRID_SPACE.grid(3)}
    assert set(seen.values()) == {1}


def test_grid_search_state_dict_resumes() -> None:
    rng = np.random.default_rng(20)
    g = GridSearch(GRID_SPACE, points=3, offset=1, stride=2)
    head = [g([], rng)[0] for _ in range(5)]
    state = g.state_dict()
    tail = walk(g, rng)
    h = GridSearch(GRID_SPACE, points=3, offset=1, stride=2)
    h.load_state_dict(state)
    assert walk(h, rng) == tail
    assert len(head) + len(tail) == len(range(1, 27, 2))
    c = Compose(GridSearch(GRID_SPACE, points=3))  # Compose carries the state of its steps
    c([], rng)
    c([], rng)
    d = Compose(GridSearch(GRID_SPACE, points=3))
    d.load_state_dict(c.state_dict())
    assert d([], rng) == c([], rng)


def test_grid_search_validates_offset() -> None:
    for offset, stride in ((2, 2), (-1, 3)):
        with pytest.raises(ValueError, match=f"offset={offset}"):
            GridSearch(GRID_SPACE, offset=offset, stride=stride)
    with pytest.raises(ValueError, match="stride"):
        GridSearch(GRID_SPACE, stride=0)


def test_adaptive_ga_steps_shrink_with_the_population() -> None:
    space, rng = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}), np.random.default_rng(5)
    prop = AdaptiveGA(space, pop_size=8, random_init_prob=0.0)
    tight = [{"x": 0.5 + 0.001 * i, "y": 0.5 - 0.001 * i} for i in range(8)]
    wide = [{"x": 0.1 * i + 0.1, "y": 0.9 - 0.1 * i} for i in range(8)]
    spread = {name: np.std([prop(pool, rng)[0]["x"] for _ in range(400)]) for name, pool in
              (("tight", tight), ("wide", wide))}
    assert spread["tight"] < 0.02 < 0.1 < spread["wide"]


def test_portfolio_moves_probability_to_the_strategy_that_succeeds() -> None:
    space, rng = Space({"x": Float(0.0, 1.0)}), np.random.default_rng(2)
    good, bad = RandomInit(space), RandomInit(space)
    port = Portfolio([good, bad], min_prob=0.1, decay=0.9)
    for _ in range(300):
        child = port([], rng)[0]
        k = port._made[(child["x"],)]
        port.feedback(child, success=k == 0)
    p = port.probs()
    assert p[0] > 0.8 and p[1] >= 0.1 - 1e-12 and abs(sum(p) - 1) < 1e-9
    restored = Portfolio([good, bad])
    restored.load_state_dict(port.state_dict())
    assert np.allclose(restored.probs(), p)
    with pytest.raises(ValueError, match="rates=.*one rate per strategy"):
        Portfolio([good]).load_state_dict(port.state_dict())


def test_portfolio_picks_in_proportion_and_forgets_children_without_feedback() -> None:
    space, rng = Space({"x": Float(0.0, 1.0)}), np.random.default_rng(3)
    port = Portfolio([RandomInit(space), RandomInit(space), RandomInit(space)], min_prob=0.0, memory=50)
    port.rates = [0.6, 0.3, 0.1]
    picks = []
    for _ in range(3000):
        child = port([], rng)[0]
        picks.append(port._made[tuple(child.values())])
    share = np.bincount(picks, minlength=3) / len(picks)
    assert np.allclose(share, [0.6, 0.3, 0.1], atol=0.04)
    assert len(port._made) == 50  # the oldest children without feedback were forgotten


def test_adaptive_ga_recomputes_steps_only_when_the_population_changes() -> None:
    space, rng = Space({"x": Float(0.0, 1.0)}), np.random.default_rng(4)
    prop = AdaptiveGA(space, pop_size=4, random_init_prob=0.0)
    pool = [{"x": 0.1 * i} for i in range(4)]
    prop(pool, rng)
    first = prop._sigma
    prop(list(pool), rng)  # a new list of the same configurations: cached
    assert prop._sigma is first
    prop([*pool[:3], {"x": 0.9}], rng)  # one member replaced: recomputed
    assert prop._sigma is not first and prop._sigma[0] > first[0]
