"""Search quality at equal budgets: evohpo strategies vs Propulate 1.2.2 vs Optuna TPE vs random search.

    .venv/bin/python bench/quality.py                  # full run; writes bench/results/quality.{md,json}
    .venv/bin/python bench/quality.py --quick          # 3 seeds, a few problems (smoke use)
    .venv/bin/python bench/quality.py --problems sphere-5d,table:cnn_digits@100 --seeds 5
    .venv/bin/python bench/quality.py --problems 'table1:*' --json /tmp/q.json --out /tmp/q.md  # scratch files
    .venv/bin/python bench/quality.py --evohpo-strategies ga,guided,random
    .venv/bin/python bench/quality.py --resume         # after an evohpo change: re-runs the evohpo columns only
    .venv/bin/python bench/quality.py --report-only    # rewrite the Markdown from the JSON, run nothing

Every method gets the same number of evaluations E per problem and seed (E = 4 x (budget // 4)):

- evohpo (one column per ``--evohpo-strategies`` entry): ``evohpo.optimize(loss, space, generations=E/4,
  propagator=STRATEGY, seed=s)`` on 4 MPI ranks, defaults otherwise (pop_size = max(8, 2 x ranks)).
- Propulate 1.2.2, tutorial defaults, on 4 MPI ranks: ``get_default_propagator(pop_size=2 x ranks, limits,
  rng)``, ``Propulator(loss, propagator, rng, generations=E/4)``, ``rng = random.Random(1000 s + rank)`` (the
  tutorials use ``seed + rank``, which repeats streams across seeds), checkpoint pickles off (the dump token
  still travels). Space in its own format: floats ``(lo, hi)``, ints ``(lo, hi)``, strings as a tuple of the
  strings, ordered numeric choices as an int index range ``(0, k - 1)`` mapped to the level in the loss,
  log-scaled floats as a float range over ``log(x)`` (Propulate has no log scale; exponentiated in the loss).
- Optuna TPE: ``TPESampler(seed=s)``, serial, E trials; ``suggest_float`` (``log=True`` for log floats),
  ``suggest_int``, ``suggest_categorical`` for strings, ``suggest_int`` over the level index for ordered
  numeric choices.
- random: plain uniform sampling (``random.Random(s)``; log-uniform for log floats); on a finite table, E
  distinct configurations drawn without replacement.

MPI jobs run ``mpiexec -n 4 python -m mpi4py bench/quality.py --worker ...``; one job holds all seeds of a
(method, problem), each seed on a fresh ``COMM_WORLD.Dup()``, one result line per seed. Propulate and Optuna
run in the peers' venv (``bench/_peers.py``, ``bench/.peers-venv`` with optuna added). At most two jobs run at
once, at most one of them an MPI job. A seed that fails or exceeds ``--timeout`` is recorded as such (the job
is relaunched for the seeds after it); after two failed seeds in a row the rest of that cell is skipped. A lock
file next to the JSON keeps a second driver from writing the same results file.

evohpo runs from a snapshot of ``evohpo/`` taken at start (the working tree, or ``--evohpo-ref COMMIT`` via
a read-only ``git archive``), so that edits made during a run do not mix versions; each evohpo result carries
the snapshot's content hash, and ``--resume`` keeps only the evohpo results of the same sources (the peers'
results are kept: re-running after a change to evohpo re-runs the evohpo columns only). Every result of a
table problem carries the table file's content hash too, and ``--resume`` drops (re-runs) those of a table
that was rebuilt since.

Tables (bench/tables) come in two forms. ``table:NAME``: a lookup returns the configuration's mean over the
table's seeds (noise-free). ``table1:NAME`` ("single run"), as a real search sees it: one training per
configuration, i.e. the value at stored seed ``blake2b(table, benchmark seed, configuration) mod seeds``
(``Table.single_run``); the same for every method, rank and process, so a repeated evaluation returns the same
value. Default tasks hold both forms of every table at ``TABLE_BUDGETS``.

The score is the regret of the best loss found (best loss - known minimum; for ``table:``, - the table's best
mean). On ``table1:`` the incumbent is the configuration with the lowest observed (single-run) value, the
first evaluated on ties (across MPI ranks by ``time.monotonic()``); its regret is its mean over all seeds - the
table's best mean, so picking a configuration that was lucky on its one seed costs.

Output: a Markdown table (median [IQR] of the regret per method; best median bold; wins and mean rank over
problems) to ``bench/results/quality.md`` and the raw per-seed results to ``bench/results/quality.json``
(``--out``, ``--json`` for other files).
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import hashlib
import importlib.util
import io
import json
import math
import os
import platform
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MARK = "@@QUALITY "
RANKS = 4

# (problem, budget): continuous test functions (evohpo.testing.functions), the mixed synthetic problem; tables are
# added from bench/tables at run time with TABLE_BUDGETS.
# Budgets are mostly 500: Optuna TPE's serial cost (~20 s per 500 trials, ~50 s per 1,000 on this shared
# 2-core machine) dominates the run time.
CONTINUOUS: list[tuple[str, int]] = [
    ("sphere-5d", 500), ("rosenbrock-5d", 500), ("rastrigin-5d", 500), ("rastrigin-10d", 1000),
    ("griewank-10d", 500), ("schwefel-5d", 500), ("ackley-5d", 500), ("bisphere-10d", 1000),
    ("birastrigin-10d", 500), ("quartic-10d", 500), ("step-10d", 500), ("himmelblau", 500),
    ("bukin", 500), ("leon", 500),
]
MIXED: list[tuple[str, int]] = [("mixed-6d", 200), ("mixed-6d", 500)]
TABLE_BUDGETS = (100, 240)  # table:NAME@40 etc. on request
QUICK: list[tuple[str, int]] = [("sphere-5d", 500), ("rastrigin-5d", 500), ("himmelblau", 500), ("mixed-6d", 200)]
QUICK_TABLE_BUDGETS = (100,)


# ---------------------------------------------------------------------------------------------------------------
# Problems. Stdlib only at module level: the same code runs in evohpo's venv and in the clean peers' venv, which
# loads evohpo/benchmarks.py and bench/tables/table.py from their files (evohpo is not installed there).
# A space is {name: ("float", lo, hi, log) | ("int", lo, hi) | ("choice", values)}.
# ---------------------------------------------------------------------------------------------------------------

def _load_file(name: str, path: Path) -> Any:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Problem:
    """A loss over a neutral space description with a known minimum."""

    key: str
    space: dict[str, tuple]
    loss: Callable[[dict[str, Any]], float]
    minimum: float
    table: Any = None  # a bench.tables Table (its .space goes to evohpo unchanged)
    single_run: bool = False  # a table answering one stored training per configuration (Table.single_run)

    def loss_at(self, seed: int) -> Callable[[dict[str, Any]], float]:
        """The loss a run with benchmark seed ``seed`` sees (single-run tables draw their training per seed)."""
        return functools.partial(self.table.single_run, seed=seed) if self.single_run else self.loss

    def regret(self, loss: float) -> float:
        return float(loss) - self.minimum

    def score(self, rec: dict[str, Any]) -> dict[str, float]:
        """The fields that score a result line: ``regret`` = best loss - minimum; on a single-run table the
        incumbent (``best_params``, lowest observed value) is scored by its mean over all the table's seeds,
        ``incumbent_mean``, so ``regret`` = that mean - the table's best mean (never below 0)."""
        if not self.single_run:
            return {"regret": self.regret(rec["best"])}
        mean = self.table.lookup(rec["best_params"])
        return {"incumbent_mean": mean, "regret": self.regret(mean)}


MIX_OPT_LR = {"sgd": 1e-1, "rmsprop": 1e-3, "adam": 1e-3, "adamw": 3e-3}
MIX_OPT_PEN = {"sgd": 0.3, "rmsprop": 0.2, "adam": 0.05, "adamw": 0.0}
MIX_ACT_PEN = {"relu": 0.1, "tanh": 0.25, "sigmoid": 0.6, "gelu": 0.0}
MIX_BATCH = (16, 32, 64, 128, 256)


def mixed_loss(p: dict[str, Any]) -> float:
    """A synthetic 6-parameter HPO-like loss: log-float lr whose best value depends on the optimizer (string),
    int layers, float dropout, string activation, ordered numeric batch size; minimum 0 at lr=3e-3, adamw,
    gelu, batch 64, 4 layers, dropout 0.25."""
    opt, act = str(p["optimizer"]), str(p["activation"])
    b = MIX_BATCH.index(int(p["batch"]))
    return (0.5 * (math.log10(float(p["lr"])) - math.log10(MIX_OPT_LR[opt])) ** 2 + MIX_OPT_PEN[opt]
            + MIX_ACT_PEN[act] + 0.05 * abs(b - 2) + 0.04 * (int(p["layers"]) - 4) ** 2
            + (float(p["dropout"]) - 0.25) ** 2)


MIXED_SPACE: dict[str, tuple] = {
    "lr": ("float", 1e-5, 1.0, True),
    "layers": ("int", 1, 8),
    "dropout": ("float", 0.0, 0.8, False),
    "activation": ("choice", ("relu", "tanh", "sigmoid", "gelu")),
    "optimizer": ("choice", ("sgd", "rmsprop", "adam", "adamw")),
    "batch": ("choice", MIX_BATCH),
}


def _evohpo_dir() -> Path:
    """The evohpo sources in use: the driver's snapshot (QUALITY_EVOHPO_DIR) or the working tree."""
    snap = os.environ.get("QUALITY_EVOHPO_DIR")
    return Path(snap) / "evohpo" if snap else ROOT / "evohpo"


def table_module() -> Any:
    return _load_file("_evohpo_bench_table", HERE / "tables" / "table.py")


def table_names() -> list[str]:
    try:
        return list(table_module().names())
    except Exception:  # noqa: BLE001 - no tables module yet: no table problems
        return []


TABLE_PREFIXES = {"table:": False, "table1:": True}  # key prefix -> single run


def table_key(key: str) -> tuple[str, bool] | None:
    """``(NAME or PATH, single_run)`` for ``table:NAME`` (mean) and ``table1:NAME`` (single run); else None."""
    for prefix, single in TABLE_PREFIXES.items():
        if key.startswith(prefix):
            return key[len(prefix):], single
    return None


@functools.cache
def table_sha(key: str) -> str | None:
    """A content hash of the table behind a ``table:``/``table1:`` key (None for other problems): ``--resume``
    drops results of a table that was rebuilt since."""
    if (tk := table_key(key)) is None:
        return None
    path = table_module().load_table(tk[0]).path
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def _current_table_sha(key: str) -> str | None:
    try:
        return table_sha(key)
    except (OSError, ValueError):  # the table is gone or unreadable: its old results are stale too
        return None


def is_single_run(key: str) -> bool:
    return (tk := table_key(key)) is not None and tk[1]


def make_problem(key: str) -> Problem:
    """``sphere-5d``, ``himmelblau``, ``mixed-6d``, ``table:NAME`` (or ``table:/path/to/table.json``): the mean over
    the table's seeds; ``table1:NAME``: one training per configuration and benchmark seed (``Table.single_run``)."""
    if key == "mixed-6d":
        return Problem(key, dict(MIXED_SPACE), mixed_loss, 0.0)
    if (tk := table_key(key)) is not None:
        tbl = table_module().load_table(tk[0])
        space = {n: ("choice", tuple(v)) for n, v in tbl.levels.items()}
        return Problem(key, space, tbl.lookup, float(tbl.best), tbl, single_run=tk[1])
    bm = _load_file("_evohpo_benchmarks", _evohpo_dir() / "testing" / "functions.py")
    name, dim = key, None
    if "-" in key and key.rsplit("-", 1)[1].rstrip("d").isdigit():
        name, d = key.rsplit("-", 1)
        dim = int(d.rstrip("d"))
    p = bm.get(name, dim)
    space = {f"x{i}": ("float", lo, hi, False) for i, (lo, hi) in enumerate(p.bounds)}
    return Problem(key, space, p.loss, float(p.minimum))


def _ordered(values: tuple) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


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

    def __call__(self, params: Any, *rest: Any) -> float:
        t0 = time.perf_counter()
        p = self.decode(params)
        value = float(self.loss(p))
        self.n += 1
        self.seen.add(tuple(_plain(p[n]) for n in self.names))
        if value < self.best:
            self.best, self.best_at = value, time.monotonic()
            self.best_params = {n: _plain(p[n]) for n in self.names}
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


def _plain(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    return v


# ---------------------------------------------------------------------------------------------------------------
# Worker side (inside mpiexec, or a plain subprocess for Optuna): runs the seeds, prints one MARK line per seed.
# ---------------------------------------------------------------------------------------------------------------

def _evohpo_space(problem: Problem) -> Any:
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
        elif _ordered(spec[1]):
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
            import evohpo

            space = _evohpo_space(problem)
            tracker = Tracker(problem.loss_at(seed), lambda p: p, problem.space)
            comm.Barrier()
            t0 = time.perf_counter()
            evohpo.optimize(tracker, space, comm=comm, generations=gens, propagator=args.strategy, seed=seed,
                            progress_interval=1e9)
        else:
            import propulate
            from propulate._globals import DUMP_TAG
            from propulate.utils import get_default_propagator

            class Propulator(propulate.Propulator):
                """Checkpoint pickles off; the dump token still travels (as in bench/overhead.py)."""

                def _dump_checkpoint(self) -> None:
                    dest = (self.island_comm.rank + 1) % self.island_comm.size
                    self.island_comm.send(True, dest=dest, tag=DUMP_TAG)

                def _dump_final_checkpoint(self) -> None:
                    pass

            limits, decode = _propulate_space(problem)
            tracker = Tracker(problem.loss_at(seed), decode, problem.space)
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


def _run_optuna(args: argparse.Namespace, problem: Problem) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def suggest(trial: Any) -> dict[str, Any]:
        p: dict[str, Any] = {}
        for n, spec in problem.space.items():
            if spec[0] == "float":
                p[n] = trial.suggest_float(n, spec[1], spec[2], log=spec[3])
            elif spec[0] == "int":
                p[n] = trial.suggest_int(n, spec[1], spec[2])
            elif _ordered(spec[1]):
                p[n] = spec[1][trial.suggest_int(n, 0, len(spec[1]) - 1)]
            else:
                p[n] = trial.suggest_categorical(n, list(spec[1]))
        return p

    for seed in _parse_seeds(args.seed_list):
        tracker = Tracker(problem.loss_at(seed), lambda p: p, problem.space)
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        t0 = time.perf_counter()
        study.optimize(lambda trial, tracker=tracker: tracker(suggest(trial)), n_trials=args.budget)
        print(MARK + json.dumps(result_line(seed, [tracker.stats(time.perf_counter() - t0)])), flush=True)


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
    problem = make_problem(args.problem)
    if args.worker == "optuna":
        _run_optuna(args, problem)
    else:
        _run_mpi(args, problem)


# ---------------------------------------------------------------------------------------------------------------
# Driver side.
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Task:
    """One (problem, budget); ``budget`` is the total number of evaluations every method gets."""

    key: str
    budget: int

    @property
    def label(self) -> str:
        if (tk := table_key(self.key)) is None:
            return self.key
        name = Path(tk[0]).stem if tk[0].endswith(".json") else tk[0]
        return f"{name} (single run)" if tk[1] else name

    @property
    def id(self) -> str:
        return f"{self.key}@{self.budget}"


@dataclass
class Job:
    method: str  # "evohpo:ga", "propulate", "optuna", "random"
    task: Task
    seeds: list[int]
    mpi: bool
    python: Path | None = None
    reason: str | None = None  # set: every seed gets this reason without running


@dataclass
class Driver:
    args: argparse.Namespace
    results: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    job_times: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    log: Any = sys.stderr
    problems: dict[str, Problem] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def record(self, job: Job, seed: int, rec: dict[str, Any]) -> None:
        rec = {"problem": job.task.key, "budget": job.task.budget, "method": job.method, **rec, "seed": seed}
        if job.method.startswith("evohpo:"):
            rec["evohpo_version"] = self.meta.get("evohpo_version")
        if (sha := table_sha(job.task.key)) is not None:
            rec["table_sha"] = sha
        if rec.get("status") == "ok":
            rec.update(self.problems[job.task.key].score(rec))
        with self.lock:
            self.results[(job.task.id, job.method, seed)] = rec

    def save(self) -> None:
        with self.lock:
            rows = sorted(self.results.values(), key=lambda r: (r["problem"], r["budget"], r["method"], r["seed"]))
            data = {"meta": self.meta, "job_seconds": dict(self.job_times), "runs": rows}
        out = Path(self.args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, out)

    def say(self, text: str) -> None:
        with self.lock:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", file=self.log, flush=True)

    # -- running -------------------------------------------------------------------------------------------

    def run_job(self, job: Job) -> None:
        t0 = time.perf_counter()
        if job.reason is not None:
            for s in job.seeds:
                self.record(job, s, {"status": "skipped", "error": job.reason})
        elif job.method == "random":
            for s in job.seeds:
                try:
                    self.record(job, s, {"status": "ok", **random_search(self.problems[job.task.key],
                                                                        job.task.budget, s)})
                except Exception as e:  # noqa: BLE001 - reported in the cell
                    self.record(job, s, {"status": "failed", "error": f"{type(e).__name__}: {e}"[:200]})
        else:
            self._run_subprocess(job)
        dt = time.perf_counter() - t0
        with self.lock:
            self.job_times[job.method] = self.job_times.get(job.method, 0.0) + dt
        ok = [self.results.get((job.task.id, job.method, s), {}) for s in job.seeds]
        good = [r for r in ok if r.get("status") == "ok"]
        med = statistics.median(r["regret"] for r in good) if good else None
        self.say(f"{job.method:14s} {job.task.id:28s} seeds {_seed_text(job.seeds):8s} {dt:7.1f} s  "
                 + (f"median regret {_fmt(med)}" if med is not None else "no result")
                 + ("" if len(good) == len(job.seeds) else f"  ({len(job.seeds) - len(good)} not ok: "
                    f"{next((r.get('error') for r in ok if r.get('status') != 'ok'), '?')})"))
        self.save()

    def _command(self, job: Job, seeds: list[int]) -> list[str]:
        side = "optuna" if job.method == "optuna" else job.method.split(":")[0]
        cmd = [str(job.python), "-m", "mpi4py"] if job.mpi else [str(job.python)]
        cmd += [str(Path(__file__).resolve()), "--worker", side, "--problem", job.task.key,
                "--budget", str(job.task.budget), "--seed-list", ",".join(map(str, seeds))]
        if job.method.startswith("evohpo:"):
            cmd += ["--strategy", job.method.split(":", 1)[1]]
        if job.mpi:
            cmd = [str(job.python.parent / "mpiexec"), "-n", str(RANKS)] + cmd
        return cmd

    def _run_subprocess(self, job: Job) -> None:
        left = list(job.seeds)
        failures = 0
        while left:
            if failures >= 2:
                for s in left:
                    self.record(job, s, {"status": "skipped", "error": "skipped after 2 failed seeds in a row"})
                return
            done, reason = self._launch(job, left)
            for s, rec in done.items():
                self.record(job, s, {"status": "ok", **rec})
            left = [s for s in left if s not in done]
            if reason is None and left:
                reason = "failed: no result line (exit 0)"
            if left:
                self.record(job, left[0], {"status": "timeout" if reason.startswith("timeout") else "failed",
                                           "error": reason})
                left = left[1:]
                failures = failures + 1 if not done else 1
            else:
                failures = 0

    def _launch(self, job: Job, seeds: list[int]) -> tuple[dict[int, dict[str, Any]], str | None]:
        """Run the seeds in one subprocess; a per-seed deadline. Returns the results and why it stopped early."""
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONUNBUFFERED": "1"}
        env.pop("PYTHONPATH", None)
        cwd = ROOT
        if job.method.startswith("evohpo:") and os.environ.get("QUALITY_EVOHPO_DIR"):
            # the snapshot first on sys.path ('python -m' puts the cwd first, so the cwd is the snapshot too)
            cwd = env["PYTHONPATH"] = os.environ["QUALITY_EVOHPO_DIR"]
        with tempfile.TemporaryFile(mode="w+") as err:
            proc = subprocess.Popen(self._command(job, seeds), cwd=cwd, env=env, stdout=subprocess.PIPE,
                                    stderr=err, text=True, start_new_session=True)
            lines: queue.Queue[str | None] = queue.Queue()

            def read() -> None:
                for line in proc.stdout:
                    lines.put(line)
                lines.put(None)

            threading.Thread(target=read, daemon=True).start()
            done: dict[int, dict[str, Any]] = {}
            reason = None
            deadline = time.monotonic() + self.args.timeout
            while True:
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    reason = f"timeout after {self.args.timeout:.0f} s"
                    _kill(proc)
                    break
                if line is None:
                    break
                if line.startswith(MARK):
                    rec = json.loads(line[len(MARK):])
                    done[int(rec.pop("seed"))] = rec
                    deadline = time.monotonic() + self.args.timeout
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _kill(proc)
            if reason is None and len(done) < len(seeds):
                err.seek(0)
                tail = [ln.strip() for ln in err.read().splitlines() if ln.strip()]
                tail = [ln for ln in tail if "Traceback" not in ln] or tail
                errs = [ln for ln in tail if "Error" in ln or "error" in ln]
                reason = f"failed (exit {proc.returncode}): {(errs or tail or ['no output'])[-1][:160]}"
            return done, reason

    def run_all(self, jobs: list[Job]) -> None:
        """At most ``--jobs`` jobs at once, at most one of them under mpiexec."""
        pending = list(jobs)
        cond = threading.Condition()
        state = {"mpi": False}

        def take() -> Job | None:
            with cond:
                while True:
                    if not pending:
                        return None
                    for i, job in enumerate(pending):
                        if not job.mpi or not state["mpi"]:
                            if job.mpi:
                                state["mpi"] = True
                            return pending.pop(i)
                    cond.wait()

        def lane() -> None:
            while (job := take()) is not None:
                try:
                    self.run_job(job)
                except Exception as e:  # noqa: BLE001 - a driver bug must not stop the other lane
                    self.say(f"{job.method} {job.task.id}: driver error {type(e).__name__}: {e}")
                    for s in job.seeds:
                        if (job.task.id, job.method, s) not in self.results:
                            self.record(job, s, {"status": "failed", "error": f"driver: {e}"[:200]})
                finally:
                    with cond:
                        if job.mpi:
                            state["mpi"] = False
                        cond.notify_all()

        threads = [threading.Thread(target=lane) for _ in range(max(1, self.args.jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def _kill(proc: subprocess.Popen) -> None:
    """End the process group this script started for ``proc`` (mpiexec and its ranks)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


def _seed_text(seeds: list[int]) -> str:
    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


# -- task selection -----------------------------------------------------------------------------------------

def default_tasks(quick: bool) -> list[Task]:
    base = QUICK if quick else CONTINUOUS + MIXED
    tables = table_names()
    if quick:
        tables = tables[:1]
    budgets = QUICK_TABLE_BUDGETS if quick else TABLE_BUDGETS
    return [Task(k, b) for k, b in base] + [Task(f"{prefix}{t}", b) for prefix in TABLE_PREFIXES
                                            for t in tables for b in budgets]


def select_tasks(spec: str | None, quick: bool) -> list[Task]:
    """``--problems``: comma list of ``KEY`` (its default budgets), ``KEY@BUDGET``, globs, ``tables`` (mean and
    single-run rows), ``continuous``; ``table:NAME`` or ``table:PATH.json`` for a table (mean over its seeds),
    ``table1:NAME|PATH`` for its single-run form."""
    defaults = default_tasks(quick) + (default_tasks(False) if quick else [])
    if not spec:
        return default_tasks(quick)
    out: list[Task] = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        key, _, budget = item.partition("@")
        if key == "tables":
            found = [t for t in default_tasks(False) if table_key(t.key) is not None]
        elif key == "continuous":
            found = [Task(k, b) for k, b in CONTINUOUS]
        else:
            found = [t for t in defaults if fnmatch.fnmatch(t.key, key) or fnmatch.fnmatch(t.label, key)]
        if budget:
            keys = list(dict.fromkeys(t.key for t in found)) or [key]
            found = [Task(k, int(budget)) for k in keys]
        elif not found and table_key(key) is not None:
            found = [Task(key, b) for b in (QUICK_TABLE_BUDGETS if quick else TABLE_BUDGETS)]
        if not found:
            raise SystemExit(f"--problems: nothing matches {item!r}; known: "
                             f"{', '.join(sorted({t.key for t in default_tasks(False)}))}")
        for t in found:
            t = Task(t.key, RANKS * (t.budget // RANKS))
            if all(t.id != o.id for o in out):
                out.append(t)
    return out


# -- statistics and report ----------------------------------------------------------------------------------

def quartiles(xs: list[float]) -> tuple[float, float, float]:
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.2e}".replace("e-0", "e-").replace("e+0", "e+")
    return f"{x:.3g}"


def _shown(x: float) -> float:
    """``x`` rounded as :func:`_fmt` prints it."""
    return float(_fmt(x))


def superiority(a: list[float], b: list[float]) -> float:
    """P(a < b) + P(a = b) / 2 over all pairs (Vargha-Delaney A on 'smaller is better')."""
    if not a or not b:
        return float("nan")
    s = sum(1.0 if x < y else 0.5 if x == y else 0.0 for x in a for y in b)
    return s / (len(a) * len(b))


def _ranks(values: dict[str, float]) -> dict[str, float]:
    """Average ranks, 1 = smallest; ties share the mean of their positions."""
    order = sorted(values, key=lambda m: values[m])
    out: dict[str, float] = {}
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for m in order[i:j + 1]:
            out[m] = (i + j) / 2 + 1
        i = j + 1
    return out


SINGLE_RUN_NOTE = ("Single run (`table1:`): a configuration's value is one of its stored trainings, picked by a "
                   "hash of (seed, configuration), so a repeat returns the same value; the incumbent (lowest value "
                   "seen, first evaluated on ties) is scored by its mean over all the table's seeds. ")
METHOD_NAMES = {"propulate": "Propulate 1.2.2", "optuna": "Optuna TPE", "random": "random"}


def method_name(m: str) -> str:
    return f"evohpo {m.split(':', 1)[1]}" if m.startswith("evohpo:") else METHOD_NAMES.get(m, m)


def summarize(results: dict[tuple[str, str, int], dict[str, Any]], tasks: list[Task], methods: list[str],
              n_seeds: int) -> dict[str, dict[str, Any]]:
    """Per task id: per method the regrets, median, quartiles, a cell text and the status of failures."""
    out: dict[str, dict[str, Any]] = {}
    for t in tasks:
        row: dict[str, Any] = {}
        for m in methods:
            recs = [r for (tid, mm, _), r in results.items() if tid == t.id and mm == m]
            ok = [r for r in recs if r.get("status") == "ok"]
            regrets = [max(0.0, r["regret"]) if r["regret"] > -1e-12 else r["regret"] for r in ok]
            cell: dict[str, Any] = {"regrets": regrets, "n_ok": len(ok), "n": len(recs),
                                    "walls": [r["wall"] for r in ok],
                                    "distinct": [r.get("distinct", 0) for r in ok],
                                    "evals": [r.get("n", 0) for r in ok]}
            bad = [r for r in recs if r.get("status") != "ok"]
            cell["why"] = bad[0].get("error") or bad[0].get("status") if bad else None
            if regrets:
                cell["q"] = quartiles(regrets)
                cell["median"] = _shown(cell["q"][1])  # compared as printed: what looks equal ties
            else:
                cell["median"] = math.inf
            row[m] = cell
        out[t.id] = row
    return out


def single_run_floor(table: Any, seeds: int) -> float:
    """Median over benchmark seeds of the regret of evaluating every configuration once (single run); among
    configurations tied at the lowest value, the expected regret of picking one at random."""
    regrets = []
    for seed in range(seeds):
        values = [(table.single_run(r["params"], seed), float(r["mean"])) for r in table.rows]
        low = min(v for v, _ in values)
        tied = [mean for v, mean in values if v == low]
        regrets.append(statistics.fmean(tied) - table.best)
    return statistics.median(regrets)


def regret_table(summ: dict[str, dict[str, Any]], tasks: list[Task], methods: list[str]) -> list[str]:
    """Markdown rows: median [IQR] per method and task, then wins, mean rank and each evohpo column vs Propulate."""
    lines = ["| problem | budget | " + " | ".join(method_name(m) for m in methods) + " |",
             "|---|---:|" + "---:|" * len(methods)]
    ranks_sum = {m: 0.0 for m in methods}
    wins = {m: 0 for m in methods}
    versus = {m: [0, 0, 0] for m in methods}  # better, tie, worse median than Propulate
    n_rows = 0
    for t in tasks:
        row = summ[t.id]
        medians = {m: row[m]["median"] for m in methods}
        finite = [v for v in medians.values() if v != math.inf]
        best = min(finite) if finite else None
        cells = []
        for m in methods:
            c = row[m]
            if not c["regrets"]:
                cells.append(f"n/a: {_short(c['why'])}")
                continue
            q1, q2, q3 = c["q"]
            text = f"{_fmt(q2)} [{_fmt(q1)}, {_fmt(q3)}]"
            if best is not None and c["median"] == best:
                text = f"**{_fmt(q2)}** [{_fmt(q1)}, {_fmt(q3)}]"
            if c["n_ok"] < c["n"]:
                text += f" ({c['n_ok']}/{c['n']} ok: {_short(c['why'])})"
            cells.append(text)
        lines.append(f"| {t.label} | {t.budget:,} | " + " | ".join(cells) + " |")
        if finite:
            n_rows += 1
            for m, r in _ranks(medians).items():
                ranks_sum[m] += r
            for m in methods:
                if medians[m] == best:
                    wins[m] += 1
        prop = medians.get("propulate", math.inf)
        for m in methods:
            if m.startswith("evohpo:") and prop != math.inf and medians[m] != math.inf:
                versus[m][(medians[m] == prop) + 2 * (medians[m] > prop)] += 1
    lines.append("| **wins** (ties count for each) | | " + " | ".join(str(wins[m]) for m in methods) + " |")
    lines.append("| **mean rank** (1 = best) | | " + " | ".join(
        f"{ranks_sum[m] / n_rows:.2f}" if n_rows else "-" for m in methods) + " |")
    if "propulate" in methods:
        lines.append("| **vs Propulate**: better / tie / worse median | | " + " | ".join(
            "/".join(map(str, versus[m])) if m.startswith("evohpo:") else "" for m in methods) + " |")
    lines.append("")
    return lines


def report(drv: Driver, tasks: list[Task], methods: list[str], elapsed: float) -> str:
    args = drv.args
    summ = summarize(drv.results, tasks, methods, args.seeds)
    meta = drv.meta
    lines = [f"# Search quality at equal budgets{' (--quick)' if args.quick else ''}", ""]
    lines += [f"{meta['date']}, {meta['host']}, {meta['cpus']} cores shared with other work (load average "
              f"{meta['load_before']:.1f} before, {os.getloadavg()[0]:.1f} after); "
              + _invocations(meta, elapsed) + "; "
              f"{args.seeds} seeds (0..{args.seeds - 1}) per cell; evohpo {meta['evohpo']}, "
              f"{meta['peers']}.", "",
              "Regret = best loss found - known minimum (tables: - the best mean validation error of the table). "
              f"Cell: median [25%, 75%] over seeds; **bold** = best median of the row. evohpo and Propulate: "
              f"{RANKS} MPI ranks x budget/{RANKS} evaluations each; Optuna TPE serial; random = uniform sampling "
              "(without replacement on tables). Every method gets exactly `budget` evaluations. "
              + "See the docstring of bench/quality.py for each method's settings.", ""]
    main = [t for t in tasks if not is_single_run(t.key)]
    single = [t for t in tasks if is_single_run(t.key)]
    if main:
        lines += regret_table(summ, main, methods)
    if single:
        floors = {t.label: single_run_floor(make_problem(t.key).table, args.seeds) for t in single}
        lines += ["## Tables, single run", "", SINGLE_RUN_NOTE + "Listed apart, with their own wins and ranks: "
                  "their noise floor is high. Floor = the median regret of an exhaustive search (every configuration "
                  "of the table once, the incumbent picked among the lowest values at random): "
                  + ", ".join(f"{name} {_fmt(v)}" for name, v in floors.items()) + ".", ""]
        lines += regret_table(summ, single, methods)

    # wall time and evaluations
    lines += ["## Time and distinct evaluations", "",
              "Wall time of the optimize call per run (MPI: longest rank; evohpo and Propulate share 2 cores among "
              f"{RANKS} ranks, with other work on the machine), summed over all runs; job time includes process "
              "startup. Distinct = different configurations evaluated (mean over seeds; tables and mixed only).", "",
              "| | " + " | ".join(method_name(m) for m in methods) + " |", "|---|" + "---:|" * len(methods)]
    tot = {m: sum(sum(summ[t.id][m]["walls"]) for t in tasks) for m in methods}
    med = {m: [statistics.median(summ[t.id][m]["walls"]) for t in tasks if summ[t.id][m]["walls"]] for m in methods}
    lines.append("| optimize-call wall, all runs (s) | " + " | ".join(f"{tot[m]:.1f}" for m in methods) + " |")
    lines.append("| median run wall, mean over problems (s) | " + " | ".join(
        f"{statistics.fmean(med[m]):.2f}" if med[m] else "-" for m in methods) + " |")
    lines.append("| job time incl. startup (s) | " + " | ".join(
        f"{drv.job_times.get(m, 0.0):.0f}" for m in methods) + " |")
    for t in tasks:
        if table_key(t.key) is not None or t.key.startswith("mixed"):
            lines.append(f"| distinct: {t.label} @ {t.budget} | " + " | ".join(
                f"{statistics.fmean(summ[t.id][m]['distinct']):.0f}" if summ[t.id][m]["distinct"] else "-"
                for m in methods) + " |")
    lines.append("")

    # where each evohpo strategy loses
    evo = [m for m in methods if m.startswith("evohpo:")]
    others = [m for m in methods]
    lines += ["## Where each evohpo strategy loses", "",
              "Per evohpo strategy, the problems where another method has a lower median regret: both medians, "
              "their ratio (evohpo / other; inf when the other's median is 0) and A = P(evohpo regret < other's) "
              "+ P(tie)/2 over all seed pairs (0.5 = even; below 0.29 is a 'large' effect by Vargha-Delaney).", ""]
    for e in evo:
        lines += [f"### {method_name(e)}", "", "| problem | budget | loses to | evohpo median | other median "
                  "| ratio | A |", "|---|---:|---|---:|---:|---:|---:|"]
        count = 0
        for t in tasks:
            row = summ[t.id]
            if not row[e]["regrets"]:
                continue
            for o in others:
                if o == e or not row[o]["regrets"]:
                    continue
                me, mo = row[e]["median"], row[o]["median"]
                if mo < me:
                    ratio = "inf" if mo == 0 else f"{me / mo:.3g}x"
                    a = superiority(row[e]["regrets"], row[o]["regrets"])
                    lines.append(f"| {t.label} | {t.budget:,} | {method_name(o)} | {_fmt(me)} | {_fmt(mo)} "
                                 f"| {ratio} | {a:.2f} |")
                    count += 1
        if not count:
            lines.append("| (none) | | | | | | |")
        lines.append("")
    return "\n".join(lines)


def _invocations(meta: dict[str, Any], elapsed: float) -> str:
    runs = [*meta.get("invocations", []), {"date": meta["date"], "minutes": elapsed / 60, "jobs": meta.get("jobs")}]
    if len(runs) == 1:
        return f"whole run {elapsed / 60:.1f} min"
    parts = ", ".join(f"{r['date'][-5:]} {r['minutes']:.1f} min ({r['jobs']} jobs)" for r in runs)
    return f"run in {len(runs)} invocations (--resume), {sum(r['minutes'] for r in runs):.1f} min in all: {parts}"


def _short(text: str | None) -> str:
    if not text:
        return "?"
    text = text.replace("|", "/")
    return text if len(text) <= 60 else text[:57] + "..."


def _versions(python: Path | None, packages: list[str]) -> str:
    if python is None:
        return "n/a"
    code = (f"import importlib.metadata as m\nfor p in {packages!r}:\n  try: print(p, m.version(p))\n"
            "  except Exception: print(p, '?')")
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60).stdout
        return ", ".join(out.splitlines())
    except Exception:  # noqa: BLE001
        return "?"


def _git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "?"
    except Exception:  # noqa: BLE001
        return "?"


def snapshot_evohpo(dest: Path, ref: str | None) -> str:
    """Copy evohpo/ (the working tree, or ``ref`` via read-only ``git archive``) under ``dest``; return a
    content hash, so that every evohpo run of one invocation uses the same code while others edit the tree."""
    import hashlib
    import shutil
    import tarfile

    if ref:
        tar = subprocess.run(["git", "archive", "--format=tar", ref, "evohpo"], cwd=ROOT, capture_output=True,
                             check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            tf.extractall(dest, filter="data")
    else:
        shutil.copytree(ROOT / "evohpo", dest / "evohpo", ignore=shutil.ignore_patterns("__pycache__"))
    digest = hashlib.sha256()
    for f in sorted((dest / "evohpo").rglob("*.py")):
        digest.update(str(f.relative_to(dest)).encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _git_dirty() -> bool:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", "evohpo"], cwd=ROOT, capture_output=True,
                             text=True, timeout=30).stdout
        return bool(out.strip())
    except Exception:  # noqa: BLE001
        return False


def report_only(args: argparse.Namespace) -> None:
    """Rewrite the Markdown from ``--json`` alone: its methods, problems, results and times; nothing runs."""
    data = json.loads(Path(args.json).read_text())
    drv = Driver(args)
    drv.meta = data["meta"]
    drv.job_times = dict(data.get("job_seconds", {}))
    for r in data["runs"]:
        drv.results[(f"{r['problem']}@{r['budget']}", r["method"], r["seed"])] = r
    tasks = [Task(k, int(b)) for k, _, b in (t.rpartition("@") for t in drv.meta["tasks"])]
    args.seeds, args.quick = drv.meta["seeds"], False
    minutes = drv.meta.get("minutes", 0.0)
    md = report(drv, tasks, list(drv.meta["methods"]), 60 * minutes)
    print(md)
    Path(args.out).write_text(md)


def _lock(path: Path) -> Path:
    """One driver per results file: two drivers saving the same JSON would overwrite each other's results."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
                os.kill(pid, 0)
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)  # left by a driver that is gone
                continue
            except PermissionError:
                pass
            raise SystemExit(f"another bench/quality.py (pid {pid}) is writing {path}; wait for it, or give "
                             f"--json and --out elsewhere") from None
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return lock
    raise SystemExit(f"cannot take the lock {lock}")


def driver(args: argparse.Namespace) -> None:
    if args.report_only:
        return report_only(args)
    lock = _lock(Path(args.json))
    try:
        with tempfile.TemporaryDirectory(prefix="quality-evohpo-") as snap:
            version = snapshot_evohpo(Path(snap), args.evohpo_ref)
            os.environ["QUALITY_EVOHPO_DIR"] = snap
            _driver(args, version)
    finally:
        lock.unlink(missing_ok=True)


def _driver(args: argparse.Namespace, version: str) -> None:
    t_start = time.perf_counter()
    if args.quick and not args.seeds_given:
        args.seeds = 3
    if args.quick and not args.json_given:
        args.json = str(HERE / "results" / "quality-quick.json")
    if args.quick and not args.out_given:
        args.out = str(HERE / "results" / "quality-quick.md")
    strategies = [s.strip() for s in args.evohpo_strategies.split(",") if s.strip()]
    methods = [f"evohpo:{s}" for s in strategies] + ["propulate", "optuna", "random"]
    if args.methods:
        keep = {m.strip() for m in args.methods.split(",")}
        methods = [m for m in methods if m in keep or m.split(":")[0] in keep]
    tasks = select_tasks(args.problems, args.quick)
    drv = Driver(args)
    for t in tasks:
        try:
            drv.problems[t.key] = make_problem(t.key)
        except Exception as e:  # noqa: BLE001
            raise SystemExit(f"problem {t.key!r}: {type(e).__name__}: {e}") from None

    evo_py = Path(sys.executable)
    peers_py, peers_reason = None, None
    if any(m in ("propulate", "optuna") for m in methods):
        sys.path.insert(0, str(HERE))
        try:
            from _peers import PROPULATE, ensure_venv

            drv.say(f"peers venv {args.peers_venv} (propulate 1.2.2 + optuna) ...")
            peers_py = ensure_venv(args.peers_venv, (*PROPULATE, "optuna"))
        except Exception as e:  # noqa: BLE001 - peers become n/a cells
            peers_reason = f"peers venv unavailable: {type(e).__name__}: {e}"[:200]
            drv.say(peers_reason)
    drv.meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "host": platform.node(), "cpus": os.cpu_count(),
                "load_before": os.getloadavg()[0], "seeds": args.seeds, "ranks": RANKS,
                "evohpo": (f"{args.evohpo_ref or 'working tree'} at HEAD {_git_head()}"
                           + (" with uncommitted changes" if not args.evohpo_ref and _git_dirty() else "")
                           + f", sources sha256 {version} ({_versions(evo_py, ['mpi4py', 'numpy'])})"),
                "evohpo_version": version,
                "peers": _versions(peers_py, ["propulate", "optuna", "mpi4py", "numpy"]) if peers_py else
                "peers n/a", "methods": methods, "tasks": [t.id for t in tasks], "argv": sys.argv[1:]}

    seeds = list(range(args.seeds))
    if args.resume and Path(args.json).exists():
        old = json.loads(Path(args.json).read_text())
        stale = rebuilt = 0
        for r in old.get("runs", []):
            if r.get("method", "").startswith("evohpo:") and r.get("evohpo_version") != version:
                stale += 1
            elif "table_sha" in r and r["table_sha"] != _current_table_sha(r["problem"]):
                rebuilt += 1
            elif r.get("status") == "ok":
                drv.results[(f"{r['problem']}@{r['budget']}", r["method"], r["seed"])] = r
        drv.job_times.update({m: t for m, t in old.get("job_seconds", {}).items()
                              if not (stale and m.startswith("evohpo:"))})
        drv.meta["invocations"] = [*old.get("meta", {}).get("invocations", []),
                                   *([{k: old["meta"][k] for k in ("date", "minutes", "jobs")}]
                                     if "minutes" in old.get("meta", {}) else [])]
        drv.say(f"resuming: {len(drv.results)} ok seed results from {args.json}; {stale} evohpo results of "
                f"other evohpo sources and {rebuilt} results of since rebuilt (or removed) tables dropped (they "
                f"run again)")

    jobs: list[Job] = []
    for t in tasks:
        for m in methods:
            todo = [s for s in seeds if (t.id, m, s) not in drv.results]
            if not todo:
                continue
            if m.startswith("evohpo:"):
                jobs.append(Job(m, t, todo, True, evo_py))
            elif m == "propulate":
                jobs.append(Job(m, t, todo, True, peers_py, None if peers_py else peers_reason))
            elif m == "optuna":  # one process per seed: both lanes can share the slowest method
                jobs += [Job(m, t, [s], False, peers_py, None if peers_py else peers_reason) for s in todo]
            else:
                jobs.append(Job(m, t, todo, False))
    drv.say(f"{len(tasks)} problems x {len(methods)} methods x {args.seeds} seeds: {len(jobs)} jobs, "
            f"at most {args.jobs} at once (one under mpiexec)")
    drv.meta["jobs"] = len(jobs)
    drv.run_all(jobs)
    elapsed = time.perf_counter() - t_start
    drv.meta["minutes"] = round(elapsed / 60, 2)
    drv.save()
    md = report(drv, tasks, methods, elapsed)
    print(md)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    drv.say(f"wrote {out} and {args.json} ({elapsed / 60:.1f} min)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, a few problems (writes quality-quick.*)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per cell (default 10; --quick: 3)")
    parser.add_argument("--problems", default=None,
                        help="comma list: KEY, KEY@BUDGET, globs, 'tables', 'continuous', table:NAME|PATH (mean "
                        "over seeds), table1:NAME|PATH (single run)")
    parser.add_argument("--evohpo-strategies", default="ga,plain-ga,adaptive,guided",
                        help="evohpo propagator= values, one column each (ga is the default propagator)")
    parser.add_argument("--methods", default=None, help="keep only these methods (e.g. evohpo,random)")
    parser.add_argument("--jobs", type=int, default=2, help="jobs at once (at most one under mpiexec)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per seed before it is a timeout")
    parser.add_argument("--out", default=None, help="Markdown report (default bench/results/quality.md)")
    parser.add_argument("--json", default=None, help="per-seed results (default bench/results/quality.json)")
    parser.add_argument("--resume", action="store_true", help="keep the ok seed results already in --json")
    parser.add_argument("--report-only", action="store_true", help="only rewrite --out from --json; run nothing")
    parser.add_argument("--peers-venv", default=str(HERE / ".peers-venv"))
    parser.add_argument("--evohpo-ref", default=None,
                        help="run evohpo from this git commit (read-only git archive) instead of the working tree")
    # worker mode
    parser.add_argument("--worker", choices=["evohpo", "propulate", "optuna"], help=argparse.SUPPRESS)
    parser.add_argument("--problem", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="ga", help=argparse.SUPPRESS)
    parser.add_argument("--seed-list", default="0", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return
    args.seeds_given, args.json_given, args.out_given = args.seeds is not None, args.json is not None, \
        args.out is not None
    args.seeds = args.seeds if args.seeds is not None else 10
    args.json = args.json or str(HERE / "results" / "quality.json")
    args.out = args.out or str(HERE / "results" / "quality.md")
    driver(args)


if __name__ == "__main__":
    main()
