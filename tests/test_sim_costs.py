"""The message cost model of the simulator: the shipped measurement, the fit, the formulas, the checks on input."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from evohpo.sim.costs import NUMBERS, WHATS, CostModel, stages

KNOWN = CostModel(latency=2e-6, bandwidth=5e9, serialize=3e-7, serialize_per_byte=8e-9, post=7e-7, receive=8e-7,
                  receive_per_byte=1e-8, empty_poll=1.4e-6, collective=4e-6, wake=3e-4, machine="synthetic")

# How far the shipped model's prediction of a row may be from its measurement (predicted / measured), per kind.
# Measured with `python bench/mpi_costs.py` on the 2-core VM of costs.json (see bench/results/mpi_costs.md): the
# worst rows were pingpong at 16 KiB (0.61; MPICH switches protocol between 4 and 64 KiB, so one line cannot pass
# through every size) and 1 MiB (1.28), receive of the 256-individual MIGRANT (0.88: slightly superlinear in the
# size), serialize within 1%; post, a constant fitted to messages of 290-700 B, was 1.00 there but 0.71-1.31 in
# an earlier run. The one-coefficient kinds (empty_poll, collective at 2 ranks, wake) have one row each, which the
# fit meets exactly. The bounds leave room for a rerun on a noisy machine.
TOLERANCE = {"pingpong": 2.0, "serialize": 1.25, "post": 1.5, "receive": 1.3, "empty_poll": 1.01, "collective": 1.01,
             "wake": 1.01}


def synthetic_rows(model: CostModel, noise: float = 0.0, seed: int = 0) -> list[dict]:
    """Rows like the bench's, with the seconds ``model`` predicts (times a factor in [1 - noise, 1 + noise])."""
    rng = np.random.default_rng(seed)
    spec = ([("pingpong", b, 2) for b in (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)]
            + [("serialize", b, 2) for b in (290, 322, 662, 2116, 7945, 31383)]
            + [("post", b, 2) for b in (290, 322, 662)]
            + [("receive", b, 2) for b in (290, 322, 662, 2116, 7945, 31383)]
            + [("empty_poll", 0, 2)] + [("collective", 0, p) for p in (2, 4, 8, 16)] + [("wake", 0, 1)])
    rows = []
    for what, nbytes, ranks in spec:
        r = {"what": what, "bytes": nbytes, "ranks": ranks, "seconds": 1.0}
        r["seconds"] = model.predict(r) * (1 + noise * rng.uniform(-1, 1))
        rows.append(r)
    return rows


def fields_of(model: CostModel) -> dict[str, float]:
    return {name: getattr(model, name) for name in NUMBERS}


# -- the shipped measurement -------------------------------------------------------------------------------------

def test_the_shipped_model_loads_and_was_measured_on_every_kind_of_row():
    model = CostModel.load()
    assert model.machine and "MPI" in model.machine
    assert {r["what"] for r in model.rows} == set(WHATS)
    assert model.bandwidth > 0 and model.latency > 0 and model.serialize_per_byte > 0


def test_the_shipped_model_is_what_fit_makes_of_its_rows():
    model = CostModel.load()
    refit = CostModel.fit(model.rows, machine=model.machine)
    for name, value in fields_of(model).items():
        assert getattr(refit, name) == pytest.approx(value, rel=1e-6, abs=0), name
    assert refit == model


@pytest.mark.parametrize("what", WHATS)
def test_the_shipped_model_predicts_its_rows_within_the_measured_tolerance(what):
    model = CostModel.load()
    rows = [r for r in model.rows if r["what"] == what]
    assert rows
    bad = [(r.get("payload"), r["bytes"], r["ranks"], model.predict(r) / r["seconds"]) for r in rows
           if not 1 / TOLERANCE[what] <= model.predict(r) / r["seconds"] <= TOLERANCE[what]]
    assert not bad, f"{what}: predicted / measured outside x{TOLERANCE[what]}: {bad}"


# -- the formulas -------------------------------------------------------------------------------------------------

def test_transfer_send_and_receive_cpu_formulas():
    m = KNOWN
    assert m.transfer(0) == pytest.approx(2e-6)
    assert m.transfer(5_000_000) == pytest.approx(2e-6 + 1e-3)
    assert m.send_cpu(1000, 0) == pytest.approx(3e-7 + 8e-6)
    assert m.send_cpu(1000, 3) == pytest.approx(3e-7 + 8e-6 + 3 * 7e-7)
    assert m.receive_cpu(0) == pytest.approx(8e-7)
    assert m.receive_cpu(1000) == pytest.approx(8e-7 + 1e-5)


@pytest.mark.parametrize(("size", "n"), [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (8, 3), (9, 4), (16, 4), (1000, 10),
                                         (1024, 10), (1025, 11)])
def test_the_collective_takes_ceil_log2_stages(size, n):
    assert stages(size) == n == (math.ceil(math.log2(size)) if size > 1 else 0)
    assert KNOWN.collective_time(size) == pytest.approx(4e-6 * n)


def test_a_collective_of_no_ranks_is_an_error():
    with pytest.raises(ValueError, match="size=0"):
        KNOWN.collective_time(0)


def test_predict_gives_each_kind_its_formula():
    m = KNOWN

    def p(what, nbytes=0, ranks=2):
        return m.predict({"what": what, "bytes": nbytes, "ranks": ranks, "seconds": 1.0})

    assert p("pingpong", 1000) == m.transfer(1000)
    assert p("serialize", 1000) == pytest.approx(m.serialize + m.serialize_per_byte * 1000)
    assert p("post", 1000) == m.post
    assert p("receive", 1000) == m.receive_cpu(1000)
    assert p("empty_poll") == m.empty_poll
    assert p("collective", ranks=8) == m.collective_time(8)
    assert p("wake") == m.wake


# -- the fit ------------------------------------------------------------------------------------------------------

def test_fit_recovers_the_model_that_made_the_rows():
    fitted = CostModel.fit(synthetic_rows(KNOWN), machine="synthetic")
    for name, value in fields_of(KNOWN).items():
        assert getattr(fitted, name) == pytest.approx(value, rel=1e-9), name


def test_fit_of_noisy_rows_is_near_the_model():
    fitted = CostModel.fit(synthetic_rows(KNOWN, noise=0.03, seed=1))
    for name, value in fields_of(KNOWN).items():
        assert getattr(fitted, name) == pytest.approx(value, rel=0.15), name


def test_fit_clips_a_negative_intercept_at_zero_and_fits_the_slope_alone():
    rows = [r for r in synthetic_rows(KNOWN) if r["what"] != "serialize"]
    rows += [{"what": "serialize", "bytes": 100, "ranks": 2, "seconds": 1e-6},
             {"what": "serialize", "bytes": 1000, "ranks": 2, "seconds": 20e-6}]  # the line crosses 0 at 55 B
    fitted = CostModel.fit(rows)
    assert fitted.serialize == 0
    # through the origin, least squares in the relative error: slope = mean of b/s over mean of (b/s)^2
    q = np.array([100 / 1e-6, 1000 / 20e-6])
    assert fitted.serialize_per_byte == pytest.approx(q.sum() / (q**2).sum(), rel=1e-9)


def test_fit_weighs_rows_by_relative_error():
    # a tiny and a huge pingpong, both 10% above a line: the fit should not sacrifice the tiny one
    rows = [r for r in synthetic_rows(KNOWN) if r["what"] != "pingpong"]
    for b in (64, 1048576):
        rows.append({"what": "pingpong", "bytes": b, "ranks": 2, "seconds": KNOWN.transfer(b) * 1.1})
    fitted = CostModel.fit(rows)
    assert fitted.latency == pytest.approx(KNOWN.latency * 1.1, rel=1e-6)
    assert fitted.bandwidth == pytest.approx(KNOWN.bandwidth / 1.1, rel=1e-6)


@pytest.mark.parametrize("what", WHATS)
def test_fit_needs_every_kind_of_row(what):
    rows = [r for r in synthetic_rows(KNOWN) if r["what"] != what]
    with pytest.raises(ValueError, match=repr(what)):
        CostModel.fit(rows)


def test_fit_needs_a_cost_per_byte_in_the_pingpong_rows():
    rows = [r for r in synthetic_rows(KNOWN) if r["what"] != "pingpong"]
    rows += [{"what": "pingpong", "bytes": b, "ranks": 2, "seconds": s} for b, s in ((64, 3e-6), (1024, 2e-6))]
    with pytest.raises(ValueError, match="bandwidth"):
        CostModel.fit(rows)


def test_fit_needs_a_collective_of_more_than_one_rank():
    rows = [r for r in synthetic_rows(KNOWN) if r["what"] != "collective"]
    rows.append({"what": "collective", "bytes": 0, "ranks": 1, "seconds": 1e-7})
    with pytest.raises(ValueError, match="more than one rank"):
        CostModel.fit(rows)


@pytest.mark.parametrize(("change", "message"), [
    ({"what": "broadcast"}, "'what' must be one of"),
    ({"bytes": -1}, "'bytes' must be an integer >= 0"),
    ({"bytes": 1.5}, "'bytes' must be an integer"),
    ({"ranks": 0}, "'ranks' must be an integer >= 1"),
    ({"seconds": 0.0}, "'seconds' must be a finite number > 0"),
    ({"seconds": math.nan}, "'seconds' must be a finite number > 0"),
])
def test_fit_rejects_a_bad_row_naming_it(change, message):
    rows = synthetic_rows(KNOWN)
    rows[3] = {**rows[3], **change}
    with pytest.raises(ValueError, match=f"row 3: {message}"):
        CostModel.fit(rows)


def test_fit_keeps_extra_keys_of_the_rows():
    rows = synthetic_rows(KNOWN)
    rows[0]["payload"] = "bytes"
    assert CostModel.fit(rows).rows[0]["payload"] == "bytes"


# -- files and checks ---------------------------------------------------------------------------------------------

def test_to_dict_is_json_and_from_dict_reads_it_back(tmp_path):
    model = CostModel.fit(synthetic_rows(KNOWN), machine="synthetic")
    again = CostModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model and again.rows == model.rows and again.machine == "synthetic"
    path = model.save(tmp_path / "sub" / "costs.json")
    assert CostModel.load(path) == model


@pytest.mark.parametrize("name", NUMBERS)
def test_from_dict_names_a_missing_field(name):
    d = KNOWN.to_dict()
    del d[name]
    with pytest.raises(ValueError, match=f"'{name}' is missing"):
        CostModel.from_dict(d)


@pytest.mark.parametrize("name", NUMBERS)
@pytest.mark.parametrize("value", [-1e-6, math.inf, math.nan, "1e-6", None, True])
def test_from_dict_names_a_bad_field_and_its_value(name, value):
    d = {**KNOWN.to_dict(), name: value}
    with pytest.raises(ValueError, match=f"field '{name}' must be") as e:
        CostModel.from_dict(d)
    assert repr(value) in str(e.value)


def test_from_dict_wants_a_positive_bandwidth():
    with pytest.raises(ValueError, match="'bandwidth' must be > 0.*got 0"):
        CostModel.from_dict({**KNOWN.to_dict(), "bandwidth": 0})
    assert CostModel.from_dict({**KNOWN.to_dict(), "latency": 0}).latency == 0  # zero costs are fine


def test_from_dict_rejects_unknown_fields_and_bad_rows():
    with pytest.raises(ValueError, match="unknown cost model field.*latencey"):
        CostModel.from_dict({**KNOWN.to_dict(), "latencey": 1e-6})
    with pytest.raises(ValueError, match="'machine' must be a string"):
        CostModel.from_dict({**KNOWN.to_dict(), "machine": 3})
    with pytest.raises(ValueError, match="row 0 has no 'seconds'"):
        CostModel.from_dict({**KNOWN.to_dict(), "rows": [{"what": "post", "bytes": 1, "ranks": 2}]})


def test_load_names_the_file_of_a_bad_model(tmp_path):
    path = tmp_path / "costs.json"
    path.write_text(json.dumps({**KNOWN.to_dict(), "post": -1.0}))
    with pytest.raises(ValueError, match=r"costs\.json: cost model field 'post' must be >= 0, got -1\.0"):
        CostModel.load(path)


def test_the_model_is_frozen_and_hashable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        KNOWN.latency = 1.0  # type: ignore[misc]
    model = CostModel.fit(synthetic_rows(KNOWN))
    assert hash(model) == hash(dataclasses.replace(model, rows=()))
