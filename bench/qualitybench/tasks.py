"""Tasks: the (problem, budget) rows of a run, their defaults and the ``--problems`` selection."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from .problems import TABLE_PREFIXES, table_key, table_names

RANKS = 4  # MPI ranks of the evohpo and Propulate jobs; budgets are rounded down to a multiple

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
# Rotated and ill-conditioned functions after BBOB (shifted optimum, [-5, 5]^d), 5-D at 1,000 and 20-D at 2,000
# evaluations: ``--problems continuous2`` (not in the default run: Optuna's serial samplers take minutes per seed
# at these budgets).
BBOB_NAMES = ("ellipsoid", "rot-ellipsoid", "discus", "bent-cigar", "sharp-ridge", "diff-powers", "rot-rastrigin",
              "schaffer-f7")
CONTINUOUS2: list[tuple[str, int]] = [(f"{n}-{d}d", b) for d, b in ((5, 1000), (20, 2000)) for n in BBOB_NAMES]
MIXED: list[tuple[str, int]] = [("mixed-6d", 200), ("mixed-6d", 500)]
TABLE_BUDGETS = (100, 240)  # table:NAME@40 etc. on request
QUICK: list[tuple[str, int]] = [("sphere-5d", 500), ("rastrigin-5d", 500), ("himmelblau", 500), ("mixed-6d", 200)]
QUICK_TABLE_BUDGETS = (100,)


@dataclass
class Task:
    """One (problem, budget); ``budget`` is the total number of evaluations every method gets."""

    key: str
    budget: int

    @property
    def label(self) -> str:
        """The row's name in the report: the key, or the table's name (``(single run)`` for ``table1:``)."""
        if (tk := table_key(self.key)) is None:
            return self.key
        name = Path(tk[0]).stem if tk[0].endswith(".json") else tk[0]
        return f"{name} (single run)" if tk[1] else name

    @property
    def id(self) -> str:
        return f"{self.key}@{self.budget}"


def default_tasks(quick: bool) -> list[Task]:
    """The rows of a full run (``--quick``: a few), both table forms of every table at the table budgets."""
    base = QUICK if quick else CONTINUOUS + MIXED
    tables = table_names()
    if quick:
        tables = tables[:1]
    budgets = QUICK_TABLE_BUDGETS if quick else TABLE_BUDGETS
    return [Task(k, b) for k, b in base] + [Task(f"{prefix}{t}", b) for prefix in TABLE_PREFIXES
                                            for t in tables for b in budgets]


def select_tasks(spec: str | None, quick: bool) -> list[Task]:
    """``--problems``: comma list of ``KEY`` (its default budgets), ``KEY@BUDGET``, globs, ``tables`` (mean and
    single-run rows), ``continuous``, ``continuous2`` (the rotated / ill-conditioned set, also found by name and
    glob); ``table:NAME`` or ``table:PATH.json`` for a table (mean over its seeds), ``table1:NAME|PATH`` for its
    single-run form."""
    defaults = (default_tasks(quick) + (default_tasks(False) if quick else [])
                + [Task(k, b) for k, b in CONTINUOUS2])
    if not spec:
        return default_tasks(quick)
    out: list[Task] = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        key, _, budget = item.partition("@")
        if key == "tables":
            found = [t for t in default_tasks(False) if table_key(t.key) is not None]
        elif key == "continuous":
            found = [Task(k, b) for k, b in CONTINUOUS]
        elif key == "continuous2":
            found = [Task(k, b) for k, b in CONTINUOUS2]
        else:
            found = [t for t in defaults if fnmatch.fnmatch(t.key, key) or fnmatch.fnmatch(t.label, key)]
        if budget:
            keys = list(dict.fromkeys(t.key for t in found)) or [key]
            found = [Task(k, int(budget)) for k in keys]
        elif not found and table_key(key) is not None:
            found = [Task(key, b) for b in (QUICK_TABLE_BUDGETS if quick else TABLE_BUDGETS)]
        if not found:
            raise SystemExit(f"--problems: nothing matches {item!r}; known: "
                             f"{', '.join(sorted({t.key for t in default_tasks(False)} | dict(CONTINUOUS2).keys()))}")
        for t in found:
            t = Task(t.key, RANKS * (t.budget // RANKS))
            if all(t.id != o.id for o in out):
                out.append(t)
    return out
