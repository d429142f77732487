"""The methods and the worker entry that runs one (method, table, budget) job's seeds, printing one marked result
line per seed: evohpo (under mpiexec, 4 ranks), DEHB and Optuna (serial, in the peers' venv), random search at full
fidelity and the one-step top-K baseline (serial, anywhere). Standard library only at module level.

Every method trains single-run curves through a ``StepMeter`` (``steps``): each step it trains costs 1 step of the
budget, and the serial methods stop when the budget is used. evohpo stops itself (``step_budget``; a training that
started finishes, so it may overshoot by < R per worker): its meters count without a limit, and the run is scored
at the steps it used.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from typing import Any

from .steps import BudgetExhausted, StepMeter, merge, one_step_top_k, random_full, resume_pruned, score

MARK = "@@PRUNING "

# evohpo columns: method name -> (the pruner passed to optimize, built in the worker where evohpo is importable;
# the propagator, None: the default)
EVOHPO: dict[str, tuple[Any, str | None]] = {
    "evohpo-asha": ("asha", None),  # the default: ASHA(min_steps=1, eta=3, min_reports=6)
    "evohpo-none": ("none", None),
    "evohpo-median": ("median", None),
    "evohpo-asha-mr1": (("ASHA", {"min_reports": 1}), None),
    "evohpo-asha-mr3": (("ASHA", {"min_reports": 3}), None),
    "evohpo-asha-mr12": (("ASHA", {"min_reports": 12}), None),
    "evohpo-asha-random": ("asha", "random"),  # no breeding: random candidates + ASHA (plain asynchronous SH)
    "evohpo-asha-eta2": (("ASHA", {"eta": 2}), None),
    "evohpo-asha-eta4": (("ASHA", {"eta": 4}), None),
    # what-if: the default, then, when it stopped early (every configuration tried) with budget left, the rest spent
    # on continuing its pruned trainings to the end, furthest first (no evohpo feature: computed after the search)
    "evohpo-asha-resume": ("asha", None),
}
WHAT_IF = ("evohpo-asha-resume",)
PEERS = ("dehb", "dehb-scratch", "optuna-hyperband", "optuna-sha")  # in the peers' venv
LOCAL = ("random", "top-k")  # pure Python, run in the driver


def load_table(name: str) -> Any:
    """A curve table by name or path (``bench/`` must be on ``sys.path``)."""
    from curves.curves import load_curves

    return load_curves(name)


def _pruner(spec: Any) -> Any:
    import evohpo

    if isinstance(spec, tuple):
        return getattr(evohpo, spec[0])(**spec[1])
    return spec


def run_evohpo(args: argparse.Namespace, emit: Callable[[dict[str, Any]], None]) -> None:
    """Under mpiexec: ``evohpo.optimize`` with ``max_steps=R, step_budget=N`` for each seed on a fresh
    ``COMM_WORLD.Dup()``; the loss replays the single-run curve with ``evohpo.report`` per step, each step taking
    ``--step-seconds`` (a sleep)."""
    from mpi4py import MPI

    import evohpo

    world = MPI.COMM_WORLD
    table = load_table(args.table)
    space = table.space
    R = table.max_steps
    for seed in _seeds(args.seed_list):
        comm = world.Dup()
        meter = StepMeter(table, seed, None, stamp=True)

        def loss(params: dict[str, Any], meter: StepMeter = meter) -> float:
            tr = meter.open(params)
            for step in range(1, R + 1):
                value = tr.advance(step)
                time.sleep(args.step_seconds)  # a step outlasts a message between ranks, as a real one does
                evohpo.report(step, value)
            return tr.value

        comm.Barrier()
        t0 = time.perf_counter()
        pruner, propagator = EVOHPO[args.method]
        res = evohpo.optimize(loss, space, comm=comm, max_steps=R, step_budget=args.budget, pruner=_pruner(pruner),
                              propagator=propagator, seed=seed, progress_interval=1e9)
        wall = time.perf_counter() - t0
        parts = comm.gather(meter.part(), root=0)
        if comm.rank == 0:
            used, trainings, comps = merge(parts)
            distinct = len({k for p in parts for k in p["opened"]})
            extra: dict[str, Any] = {}
            if args.method in WHAT_IF:
                pruned = [(dict(i.params), i.step, i.loss) for i in res.archive if i.status == "pruned" and i.step]
                more = resume_pruned(table, seed, args.budget - used, pruned, used)
                spent = more[-1].used - used if more else 0
                extra = {"search_steps": used, "resumed": len(more), "resumed_steps": spent}
                comps, used = comps + more, used + spent
            rec = score(table, used, trainings, comps, distinct)
            best = res.best.params if res.best is not None else None
            rec.update({"seed": seed, "wall": wall, "n_steps_reported": res.n_steps, "n_pruned": res.n_pruned,
                        "n_evaluations": res.n_evaluations, "reason": res.reason,
                        "per_rank_steps": [p["used"] for p in parts], "returned": best,
                        "returned_observed": res.best_value,
                        "returned_regret": table.regret(table.final(best)) if best else None, **extra})
            if args.method in WHAT_IF:  # the what-if returns the best complete training, resumed ones included
                rec.update({"returned": rec["incumbent"], "returned_regret": rec["regret"]})
            emit(rec)
        comm.Barrier()
        comm.Free()


# -- Optuna -----------------------------------------------------------------------------------------------------

def _suggest(trial: Any, table: Any) -> dict[str, Any]:
    """Ordered numeric levels as an int index (``suggest_int``), strings as ``suggest_categorical`` (as
    bench/quality.py)."""
    p = {}
    for n, levels in table.levels.items():
        if table.ordered.get(n):
            p[n] = levels[trial.suggest_int(n, 0, len(levels) - 1)]
        else:
            p[n] = trial.suggest_categorical(n, list(levels))
    return p


def run_optuna(meter: StepMeter, pruner: str) -> dict[str, Any]:
    """Optuna TPE (``TPESampler(seed=s)``) with ``HyperbandPruner(min_resource=1, max_resource=R,
    reduction_factor=3)`` or ``SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)``; ``trial.report`` after
    every step and ``trial.should_prune()``. Each trial is a new training (a repeated configuration trains again).
    The study is named ``pruning-SEED``, so that Hyperband's brackets, and the run, repeat."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # not the trial that the budget cut
    R = meter.max_steps
    if pruner == "hyperband":
        p = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=R, reduction_factor=3)
    else:
        p = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    # a fixed study name: HyperbandPruner puts trials in brackets by a hash of it (a random name each run otherwise)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=meter.seed), pruner=p,
                                study_name=f"pruning-{meter.seed}")
    configs: dict[int, dict[str, Any]] = {}

    def objective(trial: Any) -> float:
        configs[trial.number] = _suggest(trial, meter.table)
        tr = meter.open(configs[trial.number])
        for step in range(1, R + 1):
            trial.report(tr.advance(step), step)
            if step < R and trial.should_prune():
                raise optuna.TrialPruned()
        return tr.value

    try:
        study.optimize(objective, n_trials=10**9)
    except BudgetExhausted:
        pass
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = configs[study.best_trial.number] if done else None  # best_trial: the best complete trial
    return {"n_trials": len(study.trials), "n_pruned": pruned, "version": optuna.__version__, "returned": best,
            "returned_regret": meter.table.regret(meter.table.final(best)) if best else None}


# -- DEHB -------------------------------------------------------------------------------------------------------

def _configspace(table: Any, seed: int) -> Any:
    """Ordered numeric levels as ``OrdinalHyperparameter``, strings as ``CategoricalHyperparameter``."""
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=seed)
    for n, levels in table.levels.items():
        if table.ordered.get(n):
            cs.add(CS.OrdinalHyperparameter(n, sequence=list(levels)))
        else:
            cs.add(CS.CategoricalHyperparameter(n, choices=list(levels)))
    return cs


def steps_of(fidelity: float, max_steps: int) -> int:
    """DEHB's fidelity (a float in [1, R]) as whole steps: rounded, at least 1, at most R."""
    return max(1, min(max_steps, int(math.floor(float(fidelity) + 0.5))))


STALL = 500  # DEHB with kept trainings: consecutive jobs that trained no new step before it counts as stalled


def run_dehb(meter: StepMeter, tmp: str) -> dict[str, Any]:
    """DEHB (the ``dehb`` package), serial ask/tell, ``min_fidelity=1, max_fidelity=R, eta=3``, fidelity = steps
    (rounded). ``meter.keep``: a configuration asked again continues its training (only new steps are charged, as
    with a checkpoint per configuration; a repeat at a fidelity it already reached costs nothing); otherwise every
    job trains from scratch and costs its fidelity in steps. With kept trainings DEHB can converge on configurations
    it has all trained: after ``STALL`` jobs in a row that cost nothing, the run stops (``stalled``)."""
    from importlib.metadata import version

    from dehb import DEHB

    R = meter.max_steps
    cs = _configspace(meter.table, meter.seed)
    opt = DEHB(cs=cs, dimensions=len(cs), min_fidelity=1, max_fidelity=R, eta=3, n_workers=1,
               output_path=tmp, seed=meter.seed, log_level="ERROR", save_freq="end")
    jobs = free = 0
    stalled = False
    try:
        while True:
            job = opt.ask()
            f = steps_of(job["fidelity"], R)
            tr = meter.open(dict(job["config"]))
            before = meter.used
            value = tr.advance(f)
            opt.tell(job, {"fitness": value, "cost": f})
            jobs += 1
            free = free + 1 if meter.used == before else 0
            if free >= STALL:
                stalled = True  # every job asks for trainings it already has: it cannot spend the rest
                break
    except BudgetExhausted:
        pass
    cfg = own = None  # DEHB's incumbent: the lowest value told, at any fidelity
    if opt.inc_config is not None and math.isfinite(opt.inc_score):
        cfg = {n: _plain_value(v) for n, v in opt.de[opt.max_fidelity].vector_to_configspace(opt.inc_config).items()}
        own = meter.table.regret(meter.table.final(cfg))
    return {"jobs": jobs, "stalled": stalled, "returned": cfg, "returned_observed": float(opt.inc_score),
            "returned_regret": own, "version": version("dehb")}


def _plain_value(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def run_serial(method: str, table: Any, seed: int, budget: int, tmp: str = "/tmp") -> dict[str, Any]:
    """One seed of a serial method; its scored result line."""
    meter = StepMeter(table, seed, budget, keep=(method == "dehb"))
    t0 = time.perf_counter()
    if method == "random":
        extra = random_full(meter)
    elif method == "top-k":
        extra = one_step_top_k(meter)
    elif method in ("dehb", "dehb-scratch"):
        extra = run_dehb(meter, tmp)
    elif method == "optuna-hyperband":
        extra = run_optuna(meter, "hyperband")
    elif method == "optuna-sha":
        extra = run_optuna(meter, "sha")
    else:
        raise ValueError(f"unknown serial method {method!r}")
    wall = time.perf_counter() - t0
    rec = score(table, meter.used, meter.trainings, meter.completions, len(meter.opened))
    if method in LOCAL:  # they return the incumbent of the uniform rule
        extra = {**extra, "returned": rec["incumbent"], "returned_regret": rec["regret"]}
    return {"seed": seed, **rec, "wall": wall, **extra}


def _seeds(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def worker(args: argparse.Namespace) -> None:
    """``--worker``: run ``--method`` on ``--table`` at ``--budget`` for the seeds of ``--seed-list``; one MARK line
    per seed."""

    def emit(rec: dict[str, Any]) -> None:
        print(MARK + json.dumps(rec), flush=True)

    if args.method in EVOHPO:
        run_evohpo(args, emit)
        return
    import tempfile

    table = load_table(args.table)
    for seed in _seeds(args.seed_list):
        with tempfile.TemporaryDirectory(prefix="pruning-dehb-") as tmp:
            emit(run_serial(args.method, table, seed, args.budget, tmp))
