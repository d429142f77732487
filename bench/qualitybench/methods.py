"""The optimizer adapters (evohpo, Propulate, Optuna TPE and CMA-ES, serial IPOP-CMA-ES from the cmaes package,
random search) and the worker entry that runs one (method, problem) job's seeds inside mpiexec (or a plain
subprocess for the serial peers), printing one marked result line per seed. Standard library only at module level,
as in :mod:`qualitybench.problems`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

from _common import quiet_propulator
from tables.table import plain

from .problems import Problem, make_problem, ordered

MARK = "@@QUALITY "


class Tracker:
    """Wraps a loss: evaluations, best loss and its params (the first on ties), distinct configurations, time
    inside."""

    def __init__(self, loss: Callable[[dict[str, Any]], float], decode: Callable[[Any], dict[str, Any]],
                 names: Iterable[str]) -> None:
        self.loss, self.decode, self.names = loss, decode, list(names)
        self.n, self.best, self.inside = 0, math.inf, 0.0
        self.best_params: dict[str, Any] | None = None
        self.best_at = math.inf  # time.monotonic() of the best's evaluation: one clock for all ranks of a host
        self.seen: set[tuple] = set()
        self.cost = 0.0  # seconds each evaluation sleeps (``--eval-seconds``, parallel methods only)

    def __call__(self, params: Any, *rest: Any) -> float:
        t0 = time.perf_counter()
        p = self.decode(params)
        value = float(self.loss(p))
        if self.cost:
            time.sleep(self.cost)
        self.n += 1
        self.seen.add(tuple(plain(p[n]) for n in self.names))
        if value < self.best:
            self.best, self.best_at = value, time.monotonic()
            self.best_params = {n: plain(p[n]) for n in self.names}
        self.inside += time.perf_counter() - t0
        return value

    def stats(self, wall: float) -> dict[str, Any]:
        """This tracker's part of a result line (picklable, for an MPI gather); :func:`result_line` merges them."""
        return {"n": self.n, "best": self.best, "best_params": self.best_params, "best_at": self.best_at,
                "seen": list(self.seen), "wall": wall, "inside": self.inside}


def result_line(seed: int, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One seed's result from the :meth:`Tracker.stats` of its ranks (one part when serial): the incumbent is the
    lowest loss seen, the earliest evaluated on ties; evaluations and time inside summed, wall the longest."""
    seen = {tuple(x) for part in parts for x in part["seen"]}
    inc = min(parts, key=lambda part: (part["best"], part["best_at"]))
    return {"seed": seed, "best": inc["best"], "best_params": inc["best_params"], "n": sum(x["n"] for x in parts),
            "distinct": len(seen), "wall": max(x["wall"] for x in parts), "inside": sum(x["inside"] for x in parts)}


def _evohpo_space(problem: Problem) -> Any:
    """The problem's space as evohpo's (``evohpo.Float``, ``Int``, ``Choice``; a table's own space)."""
    import evohpo

    if problem.table is not None:
        return problem.table.space  # the Table's own evohpo space
    out = {}
    for n, spec in problem.space.items():
        if spec[0] == "float":
            out[n] = evohpo.Float(spec[1], spec[2], log=spec[3])
        elif spec[0] == "int":
            out[n] = evohpo.Int(spec[1], spec[2])
        else:
            out[n] = evohpo.Choice(spec[1])
    return out


def _propulate_space(problem: Problem) -> tuple[dict[str, tuple], Callable[[Any], dict[str, Any]]]:
    """Propulate limits and a decoder from its individual to the problem's params."""
    limits: dict[str, tuple] = {}
    dec: dict[str, Callable[[Any], Any]] = {}
    for n, spec in problem.space.items():
        if spec[0] == "float" and spec[3]:
            limits[n] = (math.log(spec[1]), math.log(spec[2]))
            dec[n] = lambda v: math.exp(float(v))
        elif spec[0] == "float":
            limits[n] = (float(spec[1]), float(spec[2]))
            dec[n] = float
        elif spec[0] == "int":
            limits[n] = (int(spec[1]), int(spec[2]))
            dec[n] = int
        elif ordered(spec[1]):
            values = spec[1]
            limits[n] = (0, len(values) - 1)
            dec[n] = lambda v, values=values: values[int(v)]
        else:
            limits[n] = tuple(spec[1])
            dec[n] = str
    return limits, lambda ind: {n: f(ind[n]) for n, f in dec.items()}


def _run_mpi(args: argparse.Namespace, problem: Problem) -> None:
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    gens = args.budget // world.size
    for seed in _parse_seeds(args.seed_list):
        comm = world.Dup()
        if args.worker == "evohpo":
            from evohpo import optimize  # before the clock: the name loads the optimizer on first use

            space = _evohpo_space(problem)
            tracker = Tracker(problem.loss_at(seed), lambda p: p, problem.space)
            tracker.cost = args.eval_seconds
            comm.Barrier()
            t0 = time.perf_counter()
            optimize(tracker, space, comm=comm, generations=gens, propagator=args.strategy, seed=seed,
                     progress_interval=1e9)
        else:
            from propulate.utils import get_default_propagator

            Propulator = quiet_propulator()  # checkpoint pickles off, the dump token still travels
            limits, decode = _propulate_space(problem)
            tracker = Tracker(problem.loss_at(seed), decode, problem.space)
            tracker.cost = args.eval_seconds
            rng = random.Random(1000 * seed + comm.rank)
            propagator = get_default_propagator(2 * comm.size, limits, rng=rng)
            with tempfile.TemporaryDirectory(prefix="quality-propulate-") as tmp:
                comm.Barrier()
                t0 = time.perf_counter()
                opt = Propulator(tracker, propagator, rng=rng, island_comm=comm, propulate_comm=comm,
                                 generations=gens, checkpoint_path=tmp)
                opt.propulate(logging_interval=10**9, debug=0)
        stats = comm.gather(tracker.stats(time.perf_counter() - t0), root=0)
        if comm.rank == 0:
            print(MARK + json.dumps(result_line(seed, stats)), flush=True)
        comm.Barrier()


def _suggest(trial: Any, problem: Problem, choices: bool = True) -> dict[str, Any]:
    """The params of one Optuna trial in the problem's space: floats (log-aware), ints, ordered numeric choices as
    a level index, other choices as categorical (``choices=False``: refused, for samplers that would sample them
    independently)."""
    p: dict[str, Any] = {}
    for n, spec in problem.space.items():
        if spec[0] == "float":
            p[n] = trial.suggest_float(n, spec[1], spec[2], log=spec[3])
        elif spec[0] == "int":
            p[n] = trial.suggest_int(n, spec[1], spec[2])
        elif not choices:
            raise ValueError(f"{n}: CmaEsSampler samples categorical parameters independently (n/a)")
        elif ordered(spec[1]):
            p[n] = spec[1][trial.suggest_int(n, 0, len(spec[1]) - 1)]
        else:
            p[n] = trial.suggest_categorical(n, list(spec[1]))
    return p


def _run_study(args: argparse.Namespace, problem: Problem, sampler: Callable[[int], Any], choices: bool) -> None:
    """One serial Optuna study per seed, ``sampler(seed)`` its sampler; one marked result line each."""
    import optuna

    for seed in _parse_seeds(args.seed_list):
        tracker = Tracker(problem.loss_at(seed), lambda p: p, problem.space)
        study = optuna.create_study(sampler=sampler(seed))
        t0 = time.perf_counter()
        study.optimize(lambda trial, tracker=tracker: tracker(_suggest(trial, problem, choices)), n_trials=args.budget)
        print(MARK + json.dumps(result_line(seed, [tracker.stats(time.perf_counter() - t0)])), flush=True)


def _run_optuna(args: argparse.Namespace, problem: Problem) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _run_study(args, problem, lambda seed: optuna.samplers.TPESampler(seed=seed), choices=True)


def optuna_cmaes_kwargs(version: str) -> dict[str, Any]:
    """``CmaEsSampler`` keywords besides the seed: IPOP restarts where this Optuna still has them (before 4.4; from
    4.4 ``restart_strategy`` is deprecated and ignored, so the sampler's defaults run, without restarts)."""
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        return {}
    return {"restart_strategy": "ipop"} if (major, minor) < (4, 4) else {}


def _run_optuna_cmaes(args: argparse.Namespace, problem: Problem) -> None:
    """Optuna's ``CmaEsSampler(seed=s)``: its defaults (x0 = the centre of the space, sigma0 = min range / 6), serial,
    E trials; numeric spaces only (the driver marks problems with choices n/a)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    extra = optuna_cmaes_kwargs(optuna.__version__)
    _run_study(args, problem, lambda seed: optuna.samplers.CmaEsSampler(seed=seed, **extra), choices=False)


def unit_decoder(problem: Problem) -> Callable[[Any], dict[str, Any]]:
    """A decoder from a point of the unit cube ``[0, 1]^d`` (one coordinate per parameter, in space order) to the
    problem's params: floats linearly (log floats in log space), ints and choices by level ``min(k - 1, floor(u k))``
    of their ``k`` values (choices in their listed order)."""
    parts: list[Callable[[float], Any]] = []
    for spec in problem.space.values():
        if spec[0] == "float" and spec[3]:
            lo, hi = math.log(spec[1]), math.log(spec[2])
            parts.append(lambda u, lo=lo, hi=hi: math.exp(lo + u * (hi - lo)))
        elif spec[0] == "float":
            parts.append(lambda u, lo=float(spec[1]), hi=float(spec[2]): lo + u * (hi - lo))
        else:
            values = tuple(range(int(spec[1]), int(spec[2]) + 1)) if spec[0] == "int" else tuple(spec[1])
            parts.append(lambda u, v=values: v[min(len(v) - 1, max(0, int(u * len(v))))])
    names = list(problem.space)
    return lambda x: {n: f(min(1.0, max(0.0, float(u)))) for n, f, u in zip(names, parts, x)}


def _run_cmaes_ipop(args: argparse.Namespace, problem: Problem) -> None:
    """Serial IPOP-CMA-ES from the cmaes package: ``cmaes.CMA`` on the unit cube (:func:`unit_decoder`; sigma 0.3,
    i.e. 0.3 x each parameter's range), bounds [0, 1], mean a uniform random point, default population first; when
    ``should_stop()``, a restart from a new uniform point with the population doubled; E evaluations in all (the
    last generation may be cut short). Seeded: ``numpy.random.default_rng(s)`` draws the means and each CMA's seed."""
    import numpy as np
    from cmaes import CMA

    dim = len(problem.space)
    decode = unit_decoder(problem)
    bounds = np.tile([0.0, 1.0], (dim, 1))
    for seed in _parse_seeds(args.seed_list):
        tracker = Tracker(problem.loss_at(seed), decode, problem.space)
        rng = np.random.default_rng(seed)
        popsize: int | None = None
        restarts = -1
        t0 = time.perf_counter()
        while tracker.n < args.budget:
            opt = CMA(mean=rng.uniform(0.0, 1.0, dim), sigma=0.3, bounds=bounds, seed=int(rng.integers(2**31)),
                      population_size=popsize)
            popsize, restarts = 2 * opt.population_size, restarts + 1  # the next restart's population
            while tracker.n < args.budget and not opt.should_stop():
                sols = []
                for _ in range(opt.population_size):
                    if tracker.n >= args.budget:
                        break
                    x = opt.ask()
                    sols.append((x, tracker(x)))
                if len(sols) < opt.population_size:
                    break
                opt.tell(sols)
        rec = result_line(seed, [tracker.stats(time.perf_counter() - t0)])
        print(MARK + json.dumps({**rec, "restarts": restarts, "popsize": opt.population_size}), flush=True)


def random_search(problem: Problem, budget: int, seed: int) -> dict[str, Any]:
    """Plain uniform sampling; without replacement on a finite (all-choice) space."""
    rng = random.Random(seed)
    tracker = Tracker(problem.loss_at(seed), lambda p: p, problem.space)
    names = list(problem.space)
    t0 = time.perf_counter()
    if all(spec[0] == "choice" for spec in problem.space.values()):
        sizes = [len(problem.space[n][1]) for n in names]
        for flat in rng.sample(range(math.prod(sizes)), min(budget, math.prod(sizes))):
            p = {}
            for n, k in zip(reversed(names), reversed(sizes)):
                flat, i = divmod(flat, k)
                p[n] = problem.space[n][1][i]
            tracker(p)
    else:
        for _ in range(budget):
            p = {}
            for n, spec in problem.space.items():
                if spec[0] == "float" and spec[3]:
                    p[n] = math.exp(rng.uniform(math.log(spec[1]), math.log(spec[2])))
                elif spec[0] == "float":
                    p[n] = rng.uniform(spec[1], spec[2])
                elif spec[0] == "int":
                    p[n] = rng.randint(spec[1], spec[2])
                else:
                    p[n] = rng.choice(spec[1])
            tracker(p)
    return result_line(seed, [tracker.stats(time.perf_counter() - t0)])


def _parse_seeds(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def worker(args: argparse.Namespace) -> None:
    """``--worker evohpo|propulate|optuna|optuna-cmaes|cmaes-ipop``: run the seeds of ``--seed-list`` on
    ``--problem``, one MARK line each."""
    problem = make_problem(args.problem)
    serial = {"optuna": _run_optuna, "optuna-cmaes": _run_optuna_cmaes, "cmaes-ipop": _run_cmaes_ipop}
    serial.get(args.worker, _run_mpi)(args, problem)
