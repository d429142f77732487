"""Search quality at equal budgets: evohpo strategies vs Propulate 1.2.2, Optuna TPE and CMA-ES, serial IPOP-CMA-ES
(the cmaes package) and random search.

    .venv/bin/python bench/quality.py                  # full run; writes bench/results/quality.{md,json}
    .venv/bin/python bench/quality.py --quick          # 3 seeds, a few problems (smoke use)
    .venv/bin/python bench/quality.py --problems sphere-5d,table:cnn_digits@100 --seeds 5
    .venv/bin/python bench/quality.py --problems 'table1:*' --json /tmp/q.json --out /tmp/q.md  # scratch files
    .venv/bin/python bench/quality.py --evohpo-strategies ga,guided,random
    .venv/bin/python bench/quality.py --problems continuous2,continuous,tables --evohpo-strategies auto,ga+cmaes,ga \
        --cap 'optuna=@table*|sphere-5d|...' --reuse bench/results/quality-continuous-zero-cost.json \
        --json bench/results/quality-continuous.json --out bench/results/quality-continuous.md
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
- Optuna CMA-ES: ``CmaEsSampler(seed=s)``, serial, E trials, the sampler's defaults (x0 = the centre of the space,
  sigma0 = min range / 6); ``restart_strategy="ipop"`` only where the installed Optuna still has it (before 4.4; from
  4.4 the argument is deprecated and ignored, so Optuna 5 runs without restarts; the report says which). Numeric
  spaces only: problems with choices (tables, mixed) are n/a, as CmaEsSampler samples categoricals at random.
- IPOP-CMA-ES (``cmaes-ipop``): ``cmaes.CMA`` (the cmaes package), serial, on the unit cube ``[0, 1]^d`` (floats
  linearly, log floats in log space, ints and choices by level ``min(k - 1, floor(u k))`` of their ``k`` values),
  i.e. sigma = 0.3 x each parameter's range, bounds the box, mean a uniform random point, the default population
  ``4 + 3 ln d`` first; whenever ``should_stop()``, a restart from a new uniform point with the population doubled;
  ``numpy.random.default_rng(s)`` draws the means and each CMA's seed; E evaluations in all (the last generation may
  be cut short).
- random: plain uniform sampling (``random.Random(s)``; log-uniform for log floats); on a finite table, E
  distinct configurations drawn without replacement.

Evaluation cost: in the parallel methods (evohpo, Propulate) every evaluation sleeps ``--eval-seconds`` (default
2 ms) after computing the loss. With losses that cost nothing, 4 ranks on 2 cores take turns by scheduler time
slices: one rank runs tens to hundreds of evaluations while its peers wait for a core and hear nothing, which no
search of real trainings sees and which makes an asynchronous method's results depend on the machine's load. The
serial methods are not slowed (their quality does not depend on time). Results carry ``eval_seconds``; ``--resume``
and ``--reuse`` keep a parallel method's results only at the same value.

MPI jobs run ``mpiexec -n 4 python -m mpi4py bench/quality.py --worker ...``; one job holds all seeds of a
(method, problem), each seed on a fresh ``COMM_WORLD.Dup()``, one result line per seed. Propulate and Optuna
and cmaes run in the peers' venv (``bench/_peers.py``, ``bench/.peers-venv``, ``_peers.PEERS``: Propulate, optuna,
cmaes), one process per seed for Optuna, one per cell for IPOP-CMA-ES. At most two jobs run at once, at most one of
them an MPI job. A seed that fails or exceeds ``--timeout`` is recorded as such (the job
is relaunched for the seeds after it); after two failed seeds in a row the rest of that cell is skipped. A lock
file next to the JSON keeps a second driver from writing the same results file.

evohpo runs from a snapshot of ``evohpo/`` taken at start (the working tree, or ``--evohpo-ref COMMIT`` via
a read-only ``git archive``), so that edits made during a run do not mix versions; each evohpo result carries
the snapshot's content hash, and ``--resume`` keeps only the evohpo results of the same sources (the peers'
results are kept: re-running after a change to evohpo re-runs the evohpo columns only). Every result of a
table problem carries the table file's content hash too, and ``--resume`` drops (re-runs) those of a table
that was rebuilt since. ``--evohpo-tree DIR`` runs evohpo from ``DIR/evohpo`` (a copy of the working tree made
once), so that the invocations of a ``--resume`` series keep one evohpo, and its results, while others edit the tree.

Cheaper runs: ``--cap METHOD=SEEDS[@GLOB|GLOB...]`` (repeatable) runs METHOD on its first SEEDS seeds only and, with
globs, only on the problems whose key or label matches (e.g. ``--cap optuna-cmaes=5@*-5d``; ``--cap
'optuna=@table*'`` keeps TPE to the tables); cells left out read "not run", and a cell with fewer seeds than the
run says how many. ``--reuse FILE`` (repeatable) takes the ok results of the peers (never evohpo's) for this run's
cells from another results file instead of running them (a table's only while the table is unchanged); each keeps
``reused_from`` and the report lists what was reused from where, with that file's peers' versions.

Tables (bench/tables) come in two forms. ``table:NAME``: a lookup returns the configuration's mean over the
table's seeds (noise-free). ``table1:NAME`` ("single run"), as a real search sees it: one training per
configuration, i.e. the value at stored seed ``blake2b(table, benchmark seed, configuration) mod seeds``
(``Table.single_run``); the same for every method, rank and process, so a repeated evaluation returns the same
value. Default tasks hold both forms of every table at ``TABLE_BUDGETS``.

``--problems continuous2`` (not in the default run) is the rotated and ill-conditioned group after BBOB (see
``evohpo.testing.functions``: ellipsoid, rot-ellipsoid, discus, bent-cigar, sharp-ridge, diff-powers, rot-rastrigin,
schaffer-f7; shifted optimum, [-5, 5]^d) at 5-D with 1,000 evaluations and 20-D with 2,000 (``rot-ellipsoid-5d``
etc. also select single problems and globs).

The score is the regret of the best loss found (best loss - known minimum; for ``table:``, - the table's best
mean). On ``table1:`` the incumbent is the configuration with the lowest observed (single-run) value, the
first evaluated on ties (across MPI ranks by ``time.monotonic()``); its regret is its mean over all seeds - the
table's best mean, so picking a configuration that was lucky on its one seed costs.

Output: Markdown tables (median [IQR] of the regret per method; best median bold; wins, mean rank over problems and
each evohpo strategy's better / tie / worse medians against Propulate, Optuna TPE, Optuna CMA-ES and IPOP-CMA-ES),
one per section (continuous and mixed, tables, tables single run) with a summary of the sections first (mean ranks
among the methods run on all of a section's problems, the head-to-head counts), to ``bench/results/quality.md``, and
the raw per-seed results to ``bench/results/quality.json`` (``--out``, ``--json`` for other files).

This file is the entry point (for the driver and, under mpiexec, the workers); the code is the package
``bench/qualitybench/``: ``problems`` (problems and their space format), ``methods`` (the optimizer adapters and
the worker entry), ``tasks``, ``driver`` (jobs, scheduling, lock, resumption), ``report`` (statistics and the
Markdown), ``__main__`` (the command line); helpers shared with bench/overhead.py are in ``bench/_common.py``.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    here = str(Path(__file__).resolve().parent)  # bench/: the qualitybench package, _common, tables
    if here not in sys.path:
        sys.path.insert(0, here)
    from qualitybench.__main__ import main

    main()
