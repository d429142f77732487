"""The unit-cube view of a space that the vector strategies (CMA-ES, PSO, Nelder-Mead) move in."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from evohpo.core.space import Choice, Float, Int, Space
from evohpo.core.vector import Vectorizer
from tests.strategies import spaces

SPACE = Space({"lr": Float(1e-4, 1e-1, log=True), "layers": Int(1, 5), "width": Int(8, 512, log=True),
               "batch": Choice([16, 32, 64, 128]), "act": Choice(["relu", "tanh"]), "drop": Float(0.0, 0.5)})


def test_numbers_and_ordered_choices_are_coordinates_unordered_ones_are_not() -> None:
    v = Vectorizer(SPACE)
    assert v.names == ["lr", "layers", "width", "batch", "drop"] and v.unordered == ["act"] and v.dims == 5
    assert np.allclose(v.steps, [0.0, 0.25, 0.0, 1 / 3, 0.0])  # integers and levels: the distance of neighbours
    p = {"lr": 1e-3, "layers": 4, "width": 64, "batch": 64, "act": "tanh", "drop": 0.25}
    x = v.encode(p)
    assert np.allclose(x, [1 / 3, 0.75, 0.5, 2 / 3, 0.5])
    q = v.decode(x, template={"act": "tanh"})
    assert q["act"] == "tanh" and q["layers"] == 4 and q["batch"] == 64 and q["width"] == 64
    assert abs(q["lr"] - 1e-3) < 1e-12 and list(q) == list(SPACE)
    far = v.decode(np.array([2.0, -1.0, 0.49, 0.2, 7.0]), template={"act": "relu"})  # clipped to the cube
    assert far == {"lr": 0.1, "layers": 1, "width": far["width"], "batch": 32, "act": "relu", "drop": 0.5}


@settings(max_examples=150, deadline=None)
@given(spaces(), st.integers(0, 2**32 - 1))
def test_decode_always_gives_a_configuration_of_the_space(space: Space, seed: int) -> None:
    v = Vectorizer(space)
    rng = np.random.default_rng(seed)
    template = space.sample(rng)
    p = v.decode(rng.normal(0.5, 1.0, v.dims), template)
    assert space.contains(p)
    again = v.decode(v.encode(p), template)
    assert space.key(again) == space.key(p)  # a configuration's point decodes to itself
