"""Workers of several ranks, the parts that need no mpiexec: how the ranks form workers, how the k outcomes of
one evaluation combine into one, the checks of ``ranks_per_worker``, the worker's communicator in the evaluation's
context, and ``evohpo.hpo.distributed.process_group`` where there is nothing to set up. The MPI side is in
test_group_mpi.py."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
from mpi4py import MPI

import evohpo
from evohpo.core.context import EvalContext, evaluating
from evohpo.core.individual import INTERRUPTED, PRUNED
from evohpo.core.reporting import Pruned
from evohpo.hpo.distributed import process_group
from evohpo.parallel.evaluation import Outcome
from evohpo.parallel.group import RankOutcome, WorkerGroup, combine, split_workers, worker_ranks
from evohpo.parallel.signals import StopSignals
from evohpo.parallel.transport import local_transport

CTX = EvalContext("0-3", rank=0, island=0, island_rank=0, generation=3)


def trace(*lines: str) -> str:
    """An error text as ``evaluate`` writes it: a traceback whose last line names the exception."""
    return "\n".join(["Traceback (most recent call last):", '  File "train.py", line 9, in loss', *lines])


# --- worker_ranks ---------------------------------------------------------------------------------------
def test_workers_are_consecutive_ranks_of_one_node():
    assert worker_ranks(["a", "a", "a", "a"], 2) == [[0, 1], [2, 3]]
    assert worker_ranks(["a", "b", "a", "b"], 2) == [[0, 2], [1, 3]]  # a launcher that deals ranks round-robin
    assert worker_ranks(["n1", "n2", "n1", "n2", "n1", "n2"], 3) == [[0, 2, 4], [1, 3, 5]]
    # nodes in the order of their first rank, whatever the order of the later ones
    assert worker_ranks(["a", "a", "b", "b", "a", "a"], 2) == [[0, 1], [4, 5], [2, 3]]


def test_a_worker_spans_nodes_only_when_the_ranks_per_node_are_no_multiple_of_k():
    hosts = ["a", "a", "a", "b", "b", "b"]
    workers = worker_ranks(hosts, 2)
    assert workers == [[0, 1], [2, 3], [4, 5]]
    assert [len({hosts[r] for r in w}) for w in workers] == [1, 2, 1]


def test_one_rank_per_worker_is_every_rank_on_its_own():
    assert worker_ranks(["a", "b", "a"], 1) == [[0], [2], [1]]
    assert worker_ranks(["a"], 1) == [[0]]
    assert sorted(r for w in worker_ranks(list("abcabcab"), 1) for r in w) == list(range(8))


def test_k_must_divide_the_ranks():
    with pytest.raises(ValueError, match=r"ranks_per_worker=3 does not divide the 4 ranks") as info:
        worker_ranks(["a"] * 4, 3)
    assert "mpirun -n 3" in str(info.value)  # a number of ranks that would do
    with pytest.raises(ValueError, match=r"ranks_per_worker=4 does not divide the 2 ranks"):
        worker_ranks(["a", "a"], 4)
    with pytest.raises(ValueError, match=r"ranks_per_worker=2 does not divide the 5 ranks.*mpirun -n 4"):
        worker_ranks(["a"] * 5, 2)


@pytest.mark.parametrize("k", [0, -1, True, 1.5, 2.0, "2", None])
def test_k_must_be_a_positive_int(k):
    with pytest.raises(ValueError, match=r"ranks_per_worker=.* must be a positive int"):
        worker_ranks(["a", "a"], k)
    with pytest.raises(ValueError, match="ranks_per_worker"):
        split_workers(None, k)


# --- combine ----------------------------------------------------------------------------------------------
def ok(rank: int, loss: float, ended: float = 1.0) -> RankOutcome:
    return RankOutcome(rank, loss, None, None, ended)


def failed(rank: int, error: str, ended: float) -> RankOutcome:
    return RankOutcome(rank, math.nan, error, None, ended)


def test_ranks_that_agree_give_the_roots_outcome():
    root = Outcome(0.25)
    assert combine(root, 1.0, [ok(1, 0.25), ok(2, 0.25)]) is root
    assert combine(root, 1.0, []) is root  # (one rank: nothing to combine)


def test_losses_within_rounding_agree():
    root = Outcome(3.0)
    assert combine(root, 1.0, [ok(1, 3.0 * (1 + 1e-12)), ok(2, 3.0 * (1 - 1e-12))]) is root
    assert combine(Outcome(-2.0), 1.0, [ok(1, -2.0 * (1 + 1e-12))]).error is None


def test_losses_that_disagree_make_a_failed_individual_naming_both():
    other = 1.0 * (1 + 1e-8)
    out = combine(Outcome(1.0), 1.0, [ok(1, 1.0), ok(2, other)])
    assert math.isnan(out.loss) and out.status is None  # failed (the evolver makes it so: an error, no status)
    assert "different losses" in out.error
    assert "rank 0: 1.0" in out.error and f"rank 2: {other!r}" in out.error
    assert "rank 1:" not in out.error  # the rank that agreed is not named
    assert isinstance(out.exception, RuntimeError) and str(out.exception) == out.error


def test_a_follower_that_failed_first_is_named_with_its_error():
    root = Outcome(math.nan, trace("KeyError: 'late'"), exception=KeyError("late"))
    follower = failed(1, trace("torch.OutOfMemoryError: CUDA out of memory"), ended=10.0)
    out = combine(root, 11.0, [follower, ok(2, math.nan, ended=12.0)])
    first, *rest = out.error.splitlines()
    assert first.startswith("rank 1 of the worker failed first")
    assert "then rank 0: KeyError: 'late'" in first  # the root's own, later failure: its last line
    assert rest[-1] == "torch.OutOfMemoryError: CUDA out of memory"  # what log lines show: the first failure
    assert follower.error in out.error
    assert math.isnan(out.loss) and out.status is None
    assert isinstance(out.exception, RuntimeError) and str(out.exception) == out.error  # not the root's KeyError


def test_failures_are_ordered_by_time_then_rank():
    out = combine(Outcome(0.5), 5.0, [failed(2, trace("ValueError: two"), ended=3.0),
                                      failed(1, trace("ValueError: one"), ended=3.0),
                                      failed(3, trace("ValueError: three"), ended=1.0)])
    first = out.error.splitlines()[0]
    assert first.startswith("rank 3 of the worker failed first (then rank 1: ValueError: one; rank 2: ValueError: two)")
    assert out.error.splitlines()[-1] == "ValueError: three"


def test_a_root_that_failed_first_keeps_its_exception():
    boom = ValueError("root broke")
    root = Outcome(math.nan, trace("ValueError: root broke"), exception=boom)
    out = combine(root, 9.0, [failed(1, trace("RuntimeError: Connection closed by peer"), ended=9.5)])
    assert out.exception is boom  # (on_error="raise" raises what the loss function raised)
    assert out.error.startswith("rank 0 of the worker failed first (then rank 1: RuntimeError: Connection closed")
    assert out.error.splitlines()[-1] == "ValueError: root broke"


def test_a_root_failure_without_an_exception_gets_one():
    root = Outcome(math.inf, "loss_fn returned inf")
    out = combine(root, 1.0, [ok(1, math.inf)])
    assert out.error == "rank 0 of the worker failed first:\nloss_fn returned inf"
    assert isinstance(out.exception, RuntimeError)


def test_an_interruption_on_any_rank_wins():
    stop = "interrupted: the grace period after a stop signal ran out"
    out = combine(Outcome(0.5), 1.0, [ok(1, 0.5), RankOutcome(2, math.nan, stop, INTERRUPTED, 0.5)])
    assert out.status == INTERRUPTED and math.isnan(out.loss)
    assert out.error == f"{stop} (rank 2 of the worker)"
    # over a failure that came earlier, and over the root's pruning
    root = Outcome(math.nan, trace("ValueError: x"), exception=ValueError("x"))
    assert combine(root, 0.1, [RankOutcome(1, math.nan, stop, INTERRUPTED, 5.0)]).status == INTERRUPTED
    assert combine(Outcome(0.3, status=PRUNED), 1.0,
                   [RankOutcome(1, math.nan, stop, INTERRUPTED, 1.0)]).status == INTERRUPTED
    root = Outcome(math.nan, stop, INTERRUPTED)
    assert combine(root, 1.0, [ok(1, 0.5)]).error == f"{stop} (rank 0 of the worker)"


def test_a_pruned_root_gives_the_pruned_outcome():
    root = Outcome(0.7, status=PRUNED)
    assert combine(root, 1.0, [RankOutcome(1, 0.7, None, PRUNED, 1.0)]) is root
    assert combine(root, 1.0, [RankOutcome(1, 0.9, None, PRUNED, 1.0)]) is root  # the root's value counts


def test_a_failure_wins_over_the_roots_pruning():
    out = combine(Outcome(0.7, status=PRUNED), 1.0, [failed(1, trace("ValueError: late"), ended=2.0)])
    assert out.status is None and out.error.startswith("rank 1 of the worker failed first")


def test_a_follower_pruned_while_the_root_returned_a_loss_is_a_failure():
    out = combine(Outcome(0.4), 1.0, [ok(1, 0.4), RankOutcome(2, 0.4, None, PRUNED, 1.0)])
    assert out.status is None and math.isnan(out.loss)
    assert "rank 2: pruned" in out.error and "rank 1" not in out.error
    assert isinstance(out.exception, RuntimeError)


# --- split_workers and optimize's checks --------------------------------------------------------------------
def test_one_rank_per_worker_keeps_the_communicator():
    assert split_workers(None, 1) == (None, None)
    group, comm = split_workers(MPI.COMM_WORLD, 1)
    assert group is None and comm is MPI.COMM_WORLD
    transport = local_transport()
    assert split_workers(transport, 1)[1] is transport


def test_several_ranks_per_worker_need_an_mpi_communicator():
    with pytest.raises(ValueError, match=r"ranks_per_worker=2 needs an MPI communicator.*ThreadTransport"):
        split_workers(local_transport(), 2)


def test_several_ranks_per_worker_need_as_many_ranks():
    with pytest.raises(ValueError, match=r"ranks_per_worker=2 does not divide the 1 ranks"):
        split_workers(MPI.COMM_SELF, 2)


@pytest.mark.parametrize("k", [0, 2])
def test_optimize_refuses_a_bad_ranks_per_worker(k, tmp_path):
    calls = []

    def loss(p):
        calls.append(p)
        return 0.0

    with pytest.raises(ValueError, match=f"ranks_per_worker={k}"):
        evohpo.optimize(loss, {"x": (0.0, 1.0)}, max_evaluations=2, ranks_per_worker=k,
                        checkpoint=str(tmp_path / "ckpt"))
    assert not calls and not (tmp_path / "ckpt").exists()


# --- the evaluation's context ------------------------------------------------------------------------------
def test_the_context_has_a_communicator_only_with_a_group():
    assert CTX.comm is None
    comm = object()
    assert EvalContext("0-1", 0, 0, 0, 1, group=SimpleNamespace(comm=comm)).comm is comm


def test_process_group_outside_an_evaluation_is_an_error():
    with pytest.raises(RuntimeError, match="outside an evaluation"):
        process_group()


def test_process_group_is_none_without_several_ranks():
    with evaluating(CTX):
        assert process_group() is None
    with evaluating(EvalContext("0-1", 0, 0, 0, 1, group=SimpleNamespace(size=1, comm=MPI.COMM_SELF))):
        assert process_group("gloo") is None


# --- a worker's root on its own (a worker of one rank: no follower to wait for) -------------------------
class Reports:
    """A reporter that prunes at ``prune_at``."""

    def __init__(self, prune_at: int) -> None:
        self.prune_at, self.last_step, self.last_loss, self.pruned_at = prune_at, None, None, None
        self.pruned_why = None

    def report(self, step, value, metrics):
        self.last_step, self.last_loss = step, value
        if step == self.prune_at:
            pruned = Pruned(step, value, "test")
            self.pruned_at, self.pruned_why = step, str(pruned)
            raise pruned


def test_the_root_evaluates_with_the_workers_communicator_and_breaks_on_a_failure():
    group = WorkerGroup(MPI.COMM_SELF.Dup())
    seen, broken, closed = [], [], []
    group.on_break("test", lambda: broken.append(group._seq))
    group.on_close("test", lambda: closed.append(True))
    signals = StopSignals(None)
    try:
        def loss(p):
            seen.append(evohpo.current().comm)
            return p["x"]

        assert group.evaluate(loss, {"x": 0.5}, CTX, signals) == Outcome(0.5)
        assert seen == [group.comm] and not broken

        def raising(p):
            raise ValueError("boom")

        out = group.evaluate(raising, {"x": 0.5}, CTX, signals)
        assert out.error.startswith("rank 0 of the worker failed first") and isinstance(out.exception, ValueError)
        assert broken == [2]  # the second evaluation's collectives, once
        assert group.evaluate(loss, {"x": 0.25}, CTX, signals).loss == 0.25 and broken == [2]

        def pruned(p):
            for step in range(1, 5):
                evohpo.report(step, p["x"] + step)
            return 0.0

        out = group.evaluate(pruned, {"x": 0.5}, replace(CTX, reporter=Reports(prune_at=2)), signals)
        assert out.status == PRUNED and out.loss == 2.5 and broken == [2]  # pruning breaks nothing
        assert out.error == "pruned at step 2 (value 2.5): test"
    finally:
        group.close()
    assert closed == [True]

