"""Print landscape statistics of the tables (used for README.md).

    .venv/bin/python bench/tables/summarize.py [name ...]

Per table: size, min / median / max of the mean error, the best configuration, the fraction of
configurations within 0.01 (absolute) and within 1% (relative) of the best, the seed noise (mean
over configurations of the per-seed standard deviation), the number of local minima under
one-parameter moves (ordered parameter: to an adjacent level; unordered: to any other level;
a point is a local minimum when no neighbour is strictly better), and random search's expected
regret after n lookups (uniform draws with replacement).
"""

from __future__ import annotations

import itertools
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from table import Table, load_table, names  # noqa: E402


def local_minima(t: Table) -> int:
    count = 0
    for combo in itertools.product(*t.levels.values()):
        p = dict(zip(t.levels, combo))
        m = t.lookup(p)
        better = False
        for n, vals in t.levels.items():
            i = vals.index(p[n])
            nbrs = [j for j in (i - 1, i + 1) if 0 <= j < len(vals)] if t.ordered[n] else \
                [j for j in range(len(vals)) if j != i]
            if any(t.lookup({**p, n: vals[j]}) < m for j in nbrs):
                better = True
                break
        count += not better
    return count


def random_search_regret(t: Table, n: int) -> float:
    v, N = t._sorted, t.size
    return sum(v[i] * (((N - i) / N) ** n - ((N - i - 1) / N) ** n) for i in range(N)) - t.best


def summarize(t: Table) -> str:
    noise = statistics.fmean(statistics.pstdev(r["val_error"]) for r in t.rows)
    secs = sum(r.get("train_seconds", 0) for r in t.rows) * t.seeds
    lines = [
        f"## {t.name}",
        f"- size: {t.size} configurations x {t.seeds} seeds; levels: "
        + ", ".join(f"{k} {len(v)}" for k, v in t.levels.items()),
        f"- mean error: min {t.best:.4f}, median {t.median:.4f}, max {t.worst:.4f}",
        f"- best: {t.best_params}",
        f"- within 0.01 of best: {t.fraction_within(0.01):.1%}; within 1% (relative) of best: "
        f"{t.fraction_within(0.01 * t.best):.1%}; within 0.05: {t.fraction_within(0.05):.1%}",
        f"- seed noise (mean per-config std over seeds): {noise:.4f}",
        f"- local minima (one-parameter moves): {local_minima(t)}",
        "- random search expected regret after n lookups: "
        + ", ".join(f"n={n}: {random_search_regret(t, n):.4f}" for n in (10, 30, 100)),
        f"- summed train_seconds over all trainings: {secs:.0f}s",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    for nm in sys.argv[1:] or names():
        print(summarize(load_table(nm)))
        print()
