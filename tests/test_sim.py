"""The simulator (``evohpo.sim``): the contract suite's scenarios in virtual time, determinism, the engine's clock
and accounting, and the design changes that keep per-evaluation costs flat as the number of workers grows."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random

import numpy as np
import pytest
from contract import SCENARIOS, check, run_sim

from evohpo.core.individual import Individual
from evohpo.core.migration import IslandLayout, make_topology
from evohpo.parallel.result import Summary
from evohpo.parallel.transport import Tag
from evohpo.sim import CostModel, Durations, Engine, SimTransport, SimulationError, simulate
from evohpo.sim.__main__ import main

FREE = CostModel(latency=0.0, bandwidth=1e18, serialize=0.0, serialize_per_byte=0.0, post=0.0, receive=0.0,
                 receive_per_byte=0.0, empty_poll=0.0, collective=0.0)
SLOW = CostModel(latency=0.01, bandwidth=1e6, serialize=0.001, serialize_per_byte=0.0, post=0.002, receive=0.003,
                 receive_per_byte=0.0, empty_poll=0.0, collective=0.05)


# --- the contract, simulated --------------------------------------------------------------------------------
@pytest.mark.parametrize("name,n", [(name, n) for name in SCENARIOS for n in (2, 4)])
def test_contract_scenarios_in_virtual_time(name: str, n: int) -> None:
    """The same scenarios and the same check as threads and MPI: budgets, termination, sharing, stops, time limit."""
    sc = SCENARIOS[name]
    check(sc, n, run_sim(sc, n))


@pytest.mark.parametrize("name", ["shared_total", "termination", "island_sharing"])
def test_contract_scenarios_on_sixteen_workers(name: str) -> None:
    sc = SCENARIOS[name]
    check(sc, 16, run_sim(sc, 16, cpu=1e-4))


# --- determinism ----------------------------------------------------------------------------------------------
def _run(seed: int, **kw: object) -> object:
    return simulate(16, 2, max_evaluations=96, durations=Durations("lognormal", 10.0, 1.0, failures=0.1),
                    costs=SLOW, cpu=1e-3, seed=seed, options={"propagator": "ga"}, **kw)


def test_a_seed_gives_the_same_trace() -> None:
    a, b, c = _run(3), _run(3), _run(4)
    assert a.trace == b.trace and len(a.trace) == 96
    assert (a.wall, a.utilization, a.messages_per_evaluation, a.best) == (b.wall, b.utilization,
                                                                          b.messages_per_evaluation, b.best)
    assert a.trace != c.trace
    assert a.failed == sum(math.isnan(t[4]) for t in a.trace) > 0  # failures are results, not the end
    assert a.reason == "budget reached"


def test_measured_cpu_is_charged_to_the_clock() -> None:
    r = simulate(4, 1, max_evaluations=40, durations=Durations("fixed", 1.0), costs=FREE, cpu="measured",
                 options={"propagator": "ga"})
    assert 0 < r.cpu_per_evaluation < 0.05  # real code: microseconds to milliseconds, never nothing
    assert r.wall > 10.0  # ten evaluations of one second each per worker, plus the optimizer's time


def test_the_wake_cost_is_charged_after_each_evaluation_with_measured_cpu() -> None:
    """The optimizer's code runs slower right after an evaluation than in the simulator (warm caches): the model's
    wake is charged once per evaluation, as CPU, only where the CPU is measured."""
    slow_wake = dataclasses.replace(FREE, wake=0.5)
    measured = simulate(1, 1, durations=Durations("fixed", 1.0), costs=slow_wake, cpu="measured",
                        options={"generations": 4, "propagator": "ga"})
    assert 6.0 <= measured.wall < 6.1 and measured.cpu_per_evaluation >= 0.5
    constant = simulate(1, 1, durations=Durations("fixed", 1.0), costs=slow_wake, cpu=0.0,
                        options={"generations": 4, "propagator": "ga"})
    assert constant.wall == pytest.approx(4.0)


# --- the engine's clock and accounting -----------------------------------------------------------------------
def test_wall_and_utilization_add_up() -> None:
    """Fixed evaluations, free messages: each worker runs its 5 one after the other; a constant CPU per
    evaluation lengthens the wall by exactly that."""
    free = simulate(4, 1, durations=Durations("fixed", 2.0), costs=FREE, cpu=0.0, options={"generations": 5})
    assert free.wall == pytest.approx(10.0) and free.utilization == pytest.approx(1.0)
    busy = simulate(4, 1, durations=Durations("fixed", 2.0), costs=FREE, cpu=0.5, options={"generations": 5})
    assert busy.wall == pytest.approx(12.5) and busy.utilization == pytest.approx(0.8)
    parts = busy.utilization + busy.idle_end + busy.idle_between + busy.idle_receive
    assert parts == pytest.approx(1.0) and busy.idle_between == pytest.approx(0.2)


def test_a_message_arrives_after_the_models_costs() -> None:
    engine = Engine(2, SLOW, cpu=0.0)
    seen: dict[str, float] = {}

    def body(rank: int) -> None:
        t = SimTransport(engine, rank)
        if rank == 0:
            engine.sleep(1.0)
            t.send(1, Tag.PROGRESS, (1, 0.5))
            seen["sent"] = engine.now()
        else:
            got: list = []
            t.wait(lambda: bool(got), got.extend)
            seen["arrived"], seen["payload"] = engine.now(), got[0][2]
        t.close()
        t.wait(t.finished, lambda msgs: None)

    engine.run(body)
    nbytes = engine.procs[0].sent_bytes
    assert seen["sent"] == pytest.approx(1.0 + SLOW.send_cpu(nbytes, 1))
    assert seen["arrived"] == pytest.approx(1.0 + SLOW.send_cpu(nbytes, 1) + SLOW.transfer(nbytes)
                                            + SLOW.receive_cpu(nbytes))
    assert seen["payload"] == (1, 0.5)
    # waiting: for the message, then for the termination exchange (the last close plus the collective's time)
    waited = seen["arrived"] - SLOW.receive_cpu(nbytes) + SLOW.collective_time(2)
    assert engine.procs[1].blocked == pytest.approx(waited)


def test_a_wait_for_a_message_that_never_comes_is_reported_as_a_hang() -> None:
    engine = Engine(3, FREE, cpu=0.0)

    def body(rank: int) -> None:
        t = SimTransport(engine, rank)
        if rank == 2:
            t.wait(lambda: False, lambda msgs: None)

    with pytest.raises(SimulationError, match=r"1 simulated workers wait forever.*2: message"):
        engine.run(body)


def test_an_exception_in_a_worker_reaches_the_caller() -> None:
    engine = Engine(2, FREE, cpu=0.0)

    def body(rank: int) -> None:
        if rank == 1:
            raise KeyError("broken worker")

    with pytest.raises(KeyError, match="broken worker"):
        engine.run(body)


def test_engine_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="cpu=-1"):
        Engine(2, FREE, cpu=-1)
    with pytest.raises(ValueError, match="cpu='fast'"):
        Engine(2, FREE, cpu="fast")
    with pytest.raises(ValueError, match="workers=0"):
        simulate(0)


# --- durations ----------------------------------------------------------------------------------------------
def test_durations_draw_around_their_median() -> None:
    rng = np.random.default_rng(0)
    for d in (Durations("lognormal", 60, 1.0), Durations("uniform", 0.05, 0.8), Durations("fixed", 3.0)):
        draws = [d.draw(rng)[0] for _ in range(4000)]
        assert np.median(draws) == pytest.approx(d.median, rel=0.06)
    heavy = [Durations("lognormal", 60, 1.0).draw(rng)[0] for _ in range(4000)]
    assert np.quantile(heavy, 0.99) > 8 * 60  # exp(2.33): the heavy tail
    share = Durations("fixed", 1.0, failures=0.2, stragglers=0.1, straggler_factor=5.0)
    out = [share.draw(rng) for _ in range(4000)]
    assert np.mean([f for _, f in out]) == pytest.approx(0.2, abs=0.03)
    assert np.mean([t == 5.0 for t, _ in out]) == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize("kwargs,match", [
    ({"distribution": "gamma"}, "distribution='gamma'"), ({"median": 0}, "median=0"),
    ({"failures": 1.5}, "failures=1.5"), ({"spread": -1}, "spread=-1"),
    ({"distribution": "uniform", "spread": 2}, "spread=2"), ({"stragglers": math.nan}, "stragglers=nan"),
])
def test_bad_durations_name_the_field(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Durations(**kwargs)


def test_durations_parse() -> None:
    assert Durations.parse("lognormal:60:1") == Durations("lognormal", 60.0, 1.0)
    assert Durations.parse("fixed:0.05") == Durations("fixed", 0.05, 0.0)
    for bad in ("lognormal", "uniform:ten", "fixed:1:2:3"):
        with pytest.raises(ValueError, match="DISTRIBUTION:MEDIAN"):
            Durations.parse(bad)


# --- the command line ---------------------------------------------------------------------------------------
def test_cli_reports_where_the_time_went(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    out = tmp_path / "r.json"
    assert main(["-w", "16", "-i", "2", "-n", "64", "--durations", "uniform:10:0.5", "--cpu", "0.001",
                 "--propagator", "ga", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "16 workers, 2 islands" in text and "64 evaluations" in text and "utilization" in text
    assert "best loss over virtual time" in text and out.exists()


def test_cli_bad_input_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--durations", "weibull:3"]) == 2
    assert "distribution='weibull'" in capsys.readouterr().err
    assert main(["--cpu", "fast"]) == 2
    assert "--cpu='fast'" in capsys.readouterr().err


# --- what keeps costs flat as W grows -------------------------------------------------------------------------
def test_messages_and_cpu_per_evaluation_stay_flat_with_the_number_of_islands() -> None:
    """Islands of 8 in a continuous space: a worker messages its 7 peers (and rank 0, migrants) whatever the
    number of islands; before, each start also sent a NOTICE to every other island."""
    small, large = (simulate(w, w // 8, max_evaluations=4 * w, durations=Durations("uniform", 10, 0.5),
                             costs=SLOW, cpu=1e-4, options={"propagator": "ga"}) for w in (32, 256))
    assert small.messages_by_tag["RESULT"] < 10 and "NOTICE" not in large.messages_by_tag
    assert large.messages_per_evaluation < 1.25 * small.messages_per_evaluation
    assert large.bytes_per_evaluation < 1.25 * small.bytes_per_evaluation


def test_only_finite_spaces_tell_other_islands_what_started() -> None:
    """A NOTICE per start and other island keeps islands from breeding the same configuration of a finite space;
    in a continuous one that has probability zero, so nothing is sent."""
    finite = simulate(8, 4, max_evaluations=32, durations=Durations("uniform", 1, 0.5), costs=FREE, cpu=1e-4,
                      loss=lambda p: float(p["a"] + p["b"]), space={"a": list(range(8)), "b": list(range(8))},
                      options={"propagator": "ga"})
    continuous = simulate(8, 4, max_evaluations=32, durations=Durations("uniform", 1, 0.5), costs=FREE, cpu=1e-4,
                          options={"propagator": "ga"})
    assert finite.messages_by_tag.get("NOTICE", 0) > 0.5
    assert "NOTICE" not in continuous.messages_by_tag and continuous.messages_by_tag["RESULT"] >= 0.9


def test_topology_rows_without_a_dense_matrix() -> None:
    complete, ring = make_topology("complete", 5), make_topology("ring", 5)
    assert complete.row(2).tolist() == [1, 1, 0, 1, 1] and ring.row(4).tolist() == [1, 0, 0, 0, 0]
    assert complete.matrix is None and make_topology("ring", 1).row(0).tolist() == [0]
    given = make_topology([[0, 2], [1, 5]], 2)
    assert given.row(1).tolist() == [1, 0]  # its diagonal zeroed
    with pytest.raises(ValueError, match="topology='star'"):
        make_topology("star", 3)


def test_island_layout_lookups() -> None:
    layout = IslandLayout.make(10, island_sizes=[4, 1, 5])
    assert [layout.island_of(r) for r in range(10)] == [0] * 4 + [1] + [2] * 5
    assert layout.workers(2) == [5, 6, 7, 8, 9] and layout.n_ranks == 10
    with pytest.raises(ValueError, match="rank=10"):
        layout.island_of(10)


def _ind(i: int, loss: float, island: int, worker: int) -> Individual:
    return Individual(id=f"{worker}-{i}", params={"x": float(i)}, loss=loss, island=island, rank=worker)


def test_the_final_reduction_does_not_depend_on_the_order_of_workers() -> None:
    rng = random.Random(5)
    summaries = []
    for w in range(9):
        inds = sorted((_ind(k, rng.choice([0.5, 1.0, rng.random()]), w % 3, w) for k in range(4)),
                      key=lambda i: (i.loss, i.id))[:3]
        summaries.append(Summary(inds, {w % 3: inds[0]}, 4, w % 2, 0))

    def reduce(order: list[Summary]) -> Summary:
        out = order[0]
        for s in order[1:]:
            out = Summary.merge(out, s, top_n=3)
        return out

    want = reduce(summaries)
    for order in itertools.islice(itertools.permutations(summaries), 0, 2000, 97):
        got = reduce(list(order))
        assert [i.id for i in got.top] == [i.id for i in want.top]
        assert {k: v.id for k, v in got.islands.items()} == {k: v.id for k, v in want.islands.items()}
    assert want.done == 36 and want.failed == 4 and len(want.top) == 3


def _threads(n: int, **kwargs: object) -> list:
    """``optimize`` on ``n`` in-process workers (threads on a ThreadHub); their results by rank."""
    import threading

    import evohpo
    from evohpo.parallel.transport import ThreadHub

    out: list = [None] * n
    errors: list[BaseException] = []

    def work(t: object) -> None:
        try:
            out[t.rank] = evohpo.optimize(lambda p: float(p["x"] ** 2), {"x": (-1.0, 1.0)}, comm=t,
                                          progress_interval=1e9, **kwargs)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in ThreadHub(n).transports()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return out


def test_islands_default_to_at_most_max_island_workers_and_a_resume_keeps_their_number(monkeypatch, tmp_path) -> None:
    """Islands default to one per MAX_ISLAND ranks; resumed on fewer ranks (where the default would be fewer
    islands) a search keeps the islands it had instead of being refused for another layout."""
    import evohpo.core.migration as migration

    monkeypatch.setattr(migration, "MAX_ISLAND", 2)
    assert IslandLayout.make(5, None).sizes == (2, 2, 1)
    first = _threads(4, max_evaluations=8, checkpoint=str(tmp_path))
    assert len(first[0].islands) == 2 and first[0].n_evaluations == 8
    resumed = _threads(2, max_evaluations=16, checkpoint=str(tmp_path))
    assert len(resumed[0].islands) == 2 and resumed[0].resumed == 8 and resumed[0].n_evaluations == 8  # 8 more
    fresh = _threads(2, max_evaluations=4)
    assert len(fresh[0].islands) == 1


def test_on_error_raise_ends_the_simulation_with_the_losss_exception() -> None:
    def broken(params: dict) -> float:
        raise ZeroDivisionError("the loss broke")

    with pytest.raises(ZeroDivisionError, match="the loss broke"):
        simulate(4, 1, durations=Durations("fixed", 1.0), costs=FREE, cpu=0.0, loss=broken, space={"x": (0.0, 1.0)},
                 options={"generations": 2, "on_error": "raise"})
