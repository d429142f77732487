"""Statistics over the seeds of each cell (quartiles, ranks, Vargha-Delaney A) and the Markdown report."""

from __future__ import annotations

import math
import os
import statistics
from typing import TYPE_CHECKING, Any

from .problems import is_single_run, make_problem, table_key
from .tasks import RANKS, Task

if TYPE_CHECKING:
    from .driver import Driver


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    """Inclusive quartiles (all three the value for one)."""
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def fmt(x: float | None) -> str:
    """A regret for the tables: 3 significant digits, exponent form outside [1e-3, 1e4), ``-`` for none."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.2e}".replace("e-0", "e-").replace("e+0", "e+")
    return f"{x:.3g}"


def _shown(x: float) -> float:
    """``x`` rounded as :func:`fmt` prints it."""
    return float(fmt(x))


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
    """The column name of a method."""
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
            text = f"{fmt(q2)} [{fmt(q1)}, {fmt(q3)}]"
            if best is not None and c["median"] == best:
                text = f"**{fmt(q2)}** [{fmt(q1)}, {fmt(q3)}]"
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
    """The Markdown report of the driver's results."""
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
                  + ", ".join(f"{name} {fmt(v)}" for name, v in floors.items()) + ".", ""]
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
                    lines.append(f"| {t.label} | {t.budget:,} | {method_name(o)} | {fmt(me)} | {fmt(mo)} "
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

