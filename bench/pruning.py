"""Pruning on learning-curve tables at equal step budgets: evohpo with and without early stopping vs DEHB, Optuna TPE
with Hyperband and with successive halving, random search at full fidelity and the 1-step top-K baseline.

    .venv/bin/python bench/pruning.py                  # full run; writes bench/results/pruning.{md,json}
    .venv/bin/python bench/pruning.py --quick          # 2 seeds, 1 table, budget 10 x R, to a temporary folder
    .venv/bin/python bench/pruning.py --tables cnn_digits_curves --budgets 20 --seeds 5 --methods evohpo-asha,dehb
    .venv/bin/python bench/pruning.py --resume         # after an evohpo change: re-runs the evohpo columns only
    .venv/bin/python bench/pruning.py --tables sgd_digits_curves --resume --evohpo-tree /tmp/tree  # add a table
    .venv/bin/python bench/pruning.py --report-only    # rewrite the Markdown from the JSON, run nothing

Problems: the learning-curve tables of bench/curves (``cnn_digits_curves``, ``mlp_digits_curves``,
``sgd_digits_curves``, ``hgb_digits_curves``): every configuration of a grid trained with 3 seeds, the validation
error recorded after every step 1..R. Every method sees single-run curves as its observations: a training of a
configuration replays ``table.single_run_curve(params, seed)`` (one stored training per configuration, chosen by a
hash of the benchmark seed and the configuration), and each step it trains costs 1 step of the budget N (the same
for every method: ``--budgets`` multiples of R, 20 x R and 60 x R by default). Seeds 0..9.

Score: the regret of the configuration each method returns as its best, judged by what it observed: the table's mean
final value of that configuration over its seeds - ``table.best``. evohpo: ``SearchResult.best`` (complete trainings
only); Optuna: ``study.best_trial`` (complete trials only); DEHB: its incumbent (the lowest value told, at any
fidelity); random search and top-K: the complete training (R steps) with the lowest observed final value, the first to
complete on ties. The report also scores every method by that last rule (``regret`` in the JSON; the returned
configuration's is ``returned_regret``): observed values are discrete, ties at the lowest are common, and tie rules
differ. A run without a complete training scores the table's worst regret. For every run the JSON also holds the
best-so-far regret (by the one rule) against steps used (``trajectory``; evohpo's ranks merged by time), from which
the report takes the steps evohpo + ASHA needs to reach the median final regret of evohpo without pruning, and
evohpo's regret at exactly N steps. The single-run floor is the regret of training every configuration once to the
end and keeping the lowest observed value.

Methods (``--methods``):

- ``evohpo-asha``: ``evohpo.optimize(loss, table.space, max_steps=R, step_budget=N, seed=s)`` on 4 MPI ranks (one
  island), pruner default: ``ASHA(min_steps=1, eta=3, min_reports=6)``; the loss replays the curve with
  ``evohpo.report(step, value)`` after each step and returns the value after R steps; each step sleeps
  ``--step-seconds`` (1 ms): with zero-cost steps the 4 ranks (on 2 cores) outran their own messages and ~25% of the
  trainings of a pruned search on a finite grid were duplicates started by two workers at once (none with 1 ms). evohpo
  trains exactly N steps: no training starts once N is used, and the last ones stop where the budget ends (before
  that change, running trainings finished: an overshoot < R per worker; the report scores every run at exactly N,
  from its trajectory). It stops early when every configuration of the grid
  has been trained and every pruned one was trained again to its end (``space exhausted``; a second training
  starts from scratch and pays all its steps: evohpo does not resume a training).
- ``evohpo-none`` (``pruner="none"``: every training runs R steps), ``evohpo-median`` (``MedianStopping()``),
  ``evohpo-asha-mr1`` / ``-mr3`` / ``-mr12`` (``ASHA(min_reports=1 | 3 | 12)``): the same, the first-few rule measured.
  Diagnostics: ``evohpo-asha-random`` (``propagator="random"``: ASHA without breeding), ``evohpo-asha-eta2`` /
  ``-eta4`` (``ASHA(eta=2 | 4)``).
- ``dehb``: DEHB (the ``dehb`` package, serial ``ask``/``tell``, ``min_fidelity=1, max_fidelity=R, eta=3``,
  ``n_workers=1``, ``seed=s``), fidelity = steps (rounded to an int in [1, R]); ConfigSpace: numeric levels as
  ``OrdinalHyperparameter``, strings as ``CategoricalHyperparameter``. DEHB's API evaluates a configuration at a
  fidelity and knows nothing of continuing a training; this column gives it a checkpoint per configuration: a
  configuration asked again at a higher fidelity pays only the new steps, at a fidelity it reached, nothing (after
  500 such free jobs in a row DEHB counts as stalled and stops: it has converged on trainings it already has).
  ``dehb-scratch``: every job trains from scratch and costs its fidelity in steps (as DEHB's own cost accounting).
- ``optuna-hyperband``: Optuna ``TPESampler(seed=s)`` with ``HyperbandPruner(min_resource=1, max_resource=R,
  reduction_factor=3)``; ``optuna-sha``: with ``SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)``.
  ``trial.report(value, step)`` after every step, ``trial.should_prune()`` before the next; numeric levels as
  ``suggest_int`` over the level index, strings as ``suggest_categorical``. Each trial is a new training (a
  configuration sampled again trains again). The study is named ``pruning-SEED`` (Hyperband assigns trials to
  brackets by a hash of the study name, a random one by default), so Optuna's runs repeat exactly, as DEHB's, random
  search's and top-K's do; evohpo's do not (4 asynchronous ranks).
- ``random``: distinct configurations in random order, each trained R steps, until N is used.
- ``top-k``: the "train every candidate 1 step, keep the top K, train those fully" baseline (Egele et al. 2023):
  M = min(N // 2, grid size) random distinct configurations trained 1 step, then the K = min(M, (N - M) // (R - 1))
  with the lowest value after 1 step continued to R (half the budget screens, the rest trains; M + K (R - 1) <= N).

DEHB, Optuna and random search stop when their budget is used (a training cut there counts its steps and does not
complete). DEHB and Optuna run in the peers' venv (``bench/_peers.py``: ``PEERS`` + ``dehb``, ``bench/.peers-venv``),
serial, one process per (method, table, budget); evohpo under ``mpiexec -n 4 python -m mpi4py bench/pruning.py
--worker ...``, one job per (variant, table, budget) with its seeds, each seed on a fresh ``COMM_WORLD.Dup()``, from a
snapshot of ``evohpo/`` taken at start. At most two jobs run at once, at most one under mpiexec.

Output: a summary (the goals counted), per budget a table (rows: curve tables; columns: methods; median [IQR] regret;
the single-run floor) with evohpo + ASHA's wins / ties / losses against each (lower median wins, equal within 1e-9
ties), the same scored by one incumbent rule, Vargha-Delaney A of evohpo + ASHA against each, the first-few rule table,
the diagnostics (breeding, eta, exhausted grids), evohpo at exactly N steps, the steps ratio ("same best as without
pruning with how many fewer steps"), steps used. ``bench/results/pruning.md`` and ``bench/results/pruning.json``
(per-seed records, with ``summary``: medians, IQRs, head-to-heads, ratios). Run time of the full run on this 2-core
machine: about 20 minutes.

The code is the package ``bench/pruningbench/``: ``steps`` (the step meter, scoring, the random and top-K baselines),
``methods`` (evohpo, DEHB, Optuna adapters and the worker entry), ``driver``, ``report``, ``__main__``.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    here = str(Path(__file__).resolve().parent)  # bench/: pruningbench, qualitybench, _common, curves
    if here not in sys.path:
        sys.path.insert(0, here)
    from pruningbench.__main__ import main

    main()
