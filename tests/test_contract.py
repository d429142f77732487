"""The worker loop's contract (``contract.py``): every scenario in one process on 2 and 4 workers (threads on a
ThreadHub) and under mpiexec on 2 and 4 ranks, checked by the same function; and migration and pollination at the
level of ``core.migration``'s pure functions, with no transport at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from contract import SCENARIOS, check, run_threads

from evohpo.core.individual import Individual
from evohpo.core.migration import IslandLayout, MigrationPolicy, depart, emigrate, immigrate, make_topology
from evohpo.core.population import Population
from evohpo.core.space import Float, Space

HERE = Path(__file__).parent
MPIEXEC = Path(sys.executable).parent / "mpiexec"
CASES = [(name, n) for name in SCENARIOS for n in (2, 4)]


# --- the scenarios ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,n", CASES)
def test_in_process(name: str, n: int) -> None:
    sc = SCENARIOS[name]
    check(sc, n, run_threads(sc, n, timeout=30))


_MPI_RUNS: dict[int, tuple[bool, object]] = {}


def mpi_contract(ranks: int) -> dict[str, list[dict]]:
    """Every scenario in one mpiexec launch per rank count (start-up costs a second); the outcome is kept, so
    that a failed launch fails each of its tests once instead of launching again."""
    if ranks not in _MPI_RUNS:
        cmd = [str(MPIEXEC), "-n", str(ranks), sys.executable, "-m", "mpi4py", str(HERE / "mpi_scenarios.py"),
               "contract", json.dumps({"scenarios": list(SCENARIOS)})]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
        except subprocess.TimeoutExpired as e:
            _MPI_RUNS[ranks] = (False, f"mpiexec -n {ranks} hung for {e.timeout} s")
        else:
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not line:
                _MPI_RUNS[ranks] = (False, f"rc {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
            else:
                _MPI_RUNS[ranks] = (True, json.loads(line[0][len("RESULT "):]))
    ok, out = _MPI_RUNS[ranks]
    assert ok, out
    return out  # type: ignore[return-value]


@pytest.mark.mpi
@pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")
@pytest.mark.parametrize("name,ranks", CASES)
def test_mpi(name: str, ranks: int) -> None:
    check(SCENARIOS[name], ranks, mpi_contract(ranks)[name])


# --- migration and pollination as pure functions --------------------------------------------------------------
SPACE = Space({"x": Float(0.0, 100.0)})
LAYOUT = IslandLayout((2, 2))  # island 0: ranks 0 and 1; island 1: ranks 2 and 3


def ind(ind_id: str, loss: float, island: int = 0, rank: int = 0) -> Individual:
    return Individual(ind_id, {"x": loss}, loss, island=island, rank=rank)


def population(n: int = 12, pool_size: int = 8, island: int = 0) -> Population:
    pop = Population(SPACE, pool_size)
    for k in range(n):
        assert pop.add(ind(f"0-{k}", float(k + 1), island))
    return pop


def policy(**kw) -> MigrationPolicy:
    return MigrationPolicy(make_topology(kw.pop("topology", "complete"), 2), **{"prob": 1.0, "emigrants": 100,
                                                                                  **kw})


def due_rng(prob: float = 1.0, island_size: int = 2) -> np.random.Generator:
    """A generator whose first draw makes emigration due (prob / island_size per worker)."""
    seed = next(s for s in range(1000) if np.random.default_rng(s).random() < prob / island_size)
    return np.random.default_rng(seed)


def owned(pop: Population, rank: int, island: int = 0) -> set[str]:
    return {i.id for i in pop.pool() if LAYOUT.owner(i.id, island) == rank}


def test_each_individual_has_exactly_one_owner_per_island() -> None:
    ids = [f"{r}-{g}" for r in range(4) for g in range(50)]
    for island in (0, 1):
        owners = [LAYOUT.owner(i, island) for i in ids]
        assert set(owners) == set(LAYOUT.workers(island))  # spread over the island's workers
        assert owners == [IslandLayout.make(4, 2).owner(i, island) for i in ids]  # the same on every rank


def test_emigrants_are_the_pool_members_this_rank_owns_and_leave_the_origin() -> None:
    picked = {}
    for rank in (0, 1):
        pop, pol = population(), policy()
        pool = [i.id for i in pop.pool()]
        mine = owned(pop, rank)
        assert mine and len(mine) < len(pool)  # both workers own some: the test can tell them apart
        out = emigrate(pop, pol, LAYOUT, 0, rank, due_rng())
        assert out is not None and out.dest == 1 and out.mode == "migrate"
        ids = [i.id for i, _ in out.batch]
        assert set(ids) == mine and ids == [i for i in pool if i in mine]  # best first
        assert all(hop == 1 for _, hop in out.batch) and pol.hops == dict.fromkeys(ids, 1)
        assert all(i in pop and not pop.is_active(i) for i in ids)  # archived still, no longer breeding here
        assert not set(ids) & {i.id for i in pop.pool()}
        assert pop.n_active == 12 - len(ids)
        picked[rank] = set(ids)
    assert picked[0] | picked[1] == {f"0-{k}" for k in range(8)} and not picked[0] & picked[1]


def test_at_most_emigrants_leave_the_best_or_random_ones_of_those_owned() -> None:
    pop = population()
    mine = [i.id for i in pop.pool() if i.id in owned(pop, 0)]
    out = emigrate(pop, policy(emigrants=2), LAYOUT, 0, 0, due_rng())
    assert out is not None and [i.id for i, _ in out.batch] == mine[:2]
    pop = population()
    for seed in range(20):
        out = emigrate(pop, policy(emigrants=2, selection="random", pollinate=True), LAYOUT, 0, 0,
                       np.random.default_rng(seed))
        if out is not None:
            ids = [i.id for i, _ in out.batch]
            assert len(ids) == 2 and set(ids) <= set(mine)


def test_pollinating_emigrants_are_copies_that_stay_active_at_home() -> None:
    pop, pol = population(), policy(pollinate=True)
    out = emigrate(pop, pol, LAYOUT, 0, 1, due_rng())
    assert out is not None and out.mode == "pollinate" and {i.id for i, _ in out.batch} == owned(pop, 1)
    assert pop.n_active == 12 and not pol.hops  # nothing left: no hop counted


def test_a_pollinating_island_sends_no_copy_back_to_where_it_was_bred() -> None:
    pop, pol = population(n=4), policy(pollinate=True, emigrants=2)
    for k in range(4):  # copies of island 1's individuals (ranks 2, 3), better than every local one
        pop.add(ind(f"{2 + k % 2}-{k}", 0.01 * (k + 1), island=0, rank=2 + k % 2))
    sent = set()
    for rank in (0, 1):
        out = emigrate(pop, pol, LAYOUT, 0, rank, due_rng())
        sent |= {i.id for i, _ in out.batch} if out is not None else set()
    assert sent and all(i.startswith("0-") for i in sent)  # island 1 has the originals already


def test_nobody_leaves_when_not_due_without_a_route_or_owning_nothing() -> None:
    pop, pol = population(), policy(prob=0.0)
    assert emigrate(pop, pol, LAYOUT, 0, 0, np.random.default_rng(0)) is None
    pol = policy(topology=[[0.0, 0.0], [1.0, 0.0]])  # island 0 may send nowhere
    assert emigrate(pop, pol, LAYOUT, 0, 0, due_rng()) is None
    lone = Population(SPACE, 8)
    lone.add(ind("x", 1.0))
    other = 1 - LAYOUT.owner("x", 0)
    assert emigrate(lone, policy(), LAYOUT, 0, other, due_rng()) is None
    assert pop.n_active == 12 and lone.n_active == 1 and not pol.hops
    single = MigrationPolicy(make_topology("complete", 1), prob=1.0)  # one island: never due
    assert not any(single.due(np.random.default_rng(s), 1) for s in range(50))


def test_emigration_is_due_with_prob_per_island_shared_by_its_workers() -> None:
    rng = np.random.default_rng(0)
    share = np.mean([policy(prob=0.6).due(rng, 2) for _ in range(4000)])
    assert abs(share - 0.3) < 0.03, share


def test_a_migrant_arrives_active_and_older_or_repeated_moves_are_ignored() -> None:
    pop, pol = population(2, island=1), policy()
    x = ind("0-5", 0.5, island=0)
    immigrate(pop, pol, 1, "migrate", [(x, 1)])
    assert pop.is_active("0-5") and pop.get("0-5").island == 1 and pol.hops == {"0-5": 1}
    depart(pop, pol, [("0-5", 2)])  # it moved on (a peer of this island sent it)
    assert not pop.is_active("0-5")
    immigrate(pop, pol, 1, "migrate", [(x, 1)])  # its first arrival, delivered again late: stays gone
    depart(pop, pol, [("0-5", 1)])
    assert not pop.is_active("0-5") and pol.hops == {"0-5": 2}


def test_a_departure_older_than_a_seen_return_is_ignored() -> None:
    # the island's other worker: the individual came back (hop 2) before it heard that it left (hop 1)
    pop, pol = population(), policy()
    immigrate(pop, pol, 0, "migrate", [(ind("0-3", 4.0, island=1), 2)])
    depart(pop, pol, [("0-3", 1)])
    assert pop.is_active("0-3") and pol.hops == {"0-3": 2}


def test_a_migrant_that_comes_back_is_reactivated() -> None:
    pop, pol = population(), policy(emigrants=1)
    out = emigrate(pop, pol, LAYOUT, 0, 0, due_rng())
    assert out is not None
    [(x, hop)] = out.batch
    assert hop == 1 and not pop.is_active(x.id)
    immigrate(pop, pol, 0, "migrate", [(x.moved(1), 2)])  # it lived on island 1 and returns
    assert pop.is_active(x.id) and len(pop) == 12 and pop.get(x.id) is x and pol.hops[x.id] == 2
    assert pol.next_hop(x.id) == 3
    assert x in pop.pool()  # breeding again


def test_a_pollinating_copy_replaces_the_worst_active_only_once_the_pool_is_full() -> None:
    pop, pol = Population(SPACE, 3), policy(pollinate=True)
    for k, loss in enumerate([1.0, 2.0]):
        pop.add(ind(f"a{k}", loss))
    immigrate(pop, pol, 0, "pollinate", [(ind("c0", 0.5, island=1), 1)])
    assert pop.n_active == 3  # room in the pool: nothing replaced
    immigrate(pop, pol, 0, "pollinate", [(ind("c1", 0.7, island=1), 1)])
    assert pop.n_active == 3 and not pop.is_active("a1") and pop.get("a1") is not None
    assert pop.get("c1").island == 0 and not pol.hops
    immigrate(pop, pol, 0, "pollinate", [(ind("c1", 0.7, island=1), 1)])  # sent again: already here
    assert pop.n_active == 3 and {i.id for i in pop.pool()} == {"c0", "c1", "a0"}


def test_a_pollinating_copy_never_replaces_itself() -> None:
    pop, pol = Population(SPACE, 2), policy(pollinate=True)
    for k, loss in enumerate([1.0, 2.0]):
        pop.add(ind(f"a{k}", loss))
    immigrate(pop, pol, 0, "pollinate", [(ind("bad", 9.0, island=1), 1)])  # worse than all: it is the worst
    assert pop.n_active == 3 and all(pop.is_active(i) for i in ("a0", "a1", "bad"))
