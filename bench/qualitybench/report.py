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
    if abs(x) >= 999.5:  # 3 significant digits would read 1.23e+03
        return f"{x:.0f}"
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
METHOD_NAMES = {"propulate": "Propulate 1.2.2", "optuna": "Optuna TPE", "optuna-cmaes": "Optuna CMA-ES",
                "cmaes-ipop": "IPOP-CMA-ES (cmaes)", "random": "random"}
REFERENCES = ("propulate", "optuna", "optuna-cmaes", "cmaes-ipop")  # each evohpo column is compared with these


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


def versus(summ: dict[str, dict[str, Any]], tasks: list[Task], m: str, ref: str) -> list[int]:
    """``[better, tie, worse]``: on how many of ``tasks`` the median of ``m`` is below / equal to / above that of
    ``ref`` (as printed), over the tasks where both have results."""
    out = [0, 0, 0]
    for t in tasks:
        a, b = summ[t.id][m]["median"], summ[t.id][ref]["median"]
        if a != math.inf and b != math.inf:
            out[(a == b) + 2 * (a > b)] += 1
    return out


def mean_ranks(summ: dict[str, dict[str, Any]], tasks: list[Task], methods: list[str]) -> dict[str, float]:
    """Mean over ``tasks`` of the rank (1 = best median) among ``methods``, each of which must have a result in
    every one of the tasks."""
    total = {m: 0.0 for m in methods}
    for t in tasks:
        for m, r in _ranks({m: summ[t.id][m]["median"] for m in methods}).items():
            total[m] += r
    return {m: total[m] / len(tasks) for m in methods} if tasks else {}


def complete(summ: dict[str, dict[str, Any]], tasks: list[Task], methods: list[str]) -> list[str]:
    """The methods with a result in every one of ``tasks``."""
    return [m for m in methods if all(summ[t.id][m]["regrets"] for t in tasks)]


def regret_table(summ: dict[str, dict[str, Any]], tasks: list[Task], methods: list[str],
                 n_seeds: int | None = None) -> list[str]:
    """Markdown rows: median [IQR] per method and task, then wins, mean rank and each evohpo column vs the
    reference peers (Propulate, Optuna TPE and CMA-ES, IPOP-CMA-ES) present. A row's ranks are among the methods
    with a result in it; a method's mean rank is over the rows it has (their count given when not all)."""
    lines = ["| problem | budget | " + " | ".join(method_name(m) for m in methods) + " |",
             "|---|---:|" + "---:|" * len(methods)]
    ranks_sum = {m: 0.0 for m in methods}
    ranked = {m: 0 for m in methods}
    wins = {m: 0 for m in methods}
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
                cells.append(f"n/a: {_short(c['why'])}" if c["n"] else "not run")
                continue
            q1, q2, q3 = c["q"]
            text = f"{fmt(q2)} [{fmt(q1)}, {fmt(q3)}]"
            if best is not None and c["median"] == best:
                text = f"**{fmt(q2)}** [{fmt(q1)}, {fmt(q3)}]"
            if c["n_ok"] < c["n"]:
                text += f" ({c['n_ok']}/{c['n']} ok: {_short(c['why'])})"
            elif n_seeds is not None and c["n_ok"] != n_seeds:
                text += f" ({c['n_ok']} seeds)"
            cells.append(text)
        lines.append(f"| {t.label} | {t.budget:,} | " + " | ".join(cells) + " |")
        if finite:
            n_rows += 1
            for m, r in _ranks({m: v for m, v in medians.items() if v != math.inf}).items():
                ranks_sum[m] += r
                ranked[m] += 1
            for m in methods:
                if medians[m] == best:
                    wins[m] += 1
    lines.append("| **wins** (ties count for each) | | " + " | ".join(str(wins[m]) for m in methods) + " |")
    lines.append("| **mean rank** (1 = best) | | " + " | ".join(
        (f"{ranks_sum[m] / ranked[m]:.2f}" + ("" if ranked[m] == n_rows else f" ({ranked[m]} rows)"))
        if ranked[m] else "-" for m in methods) + " |")
    for ref in REFERENCES:
        if ref in methods and any(summ[t.id][ref]["regrets"] for t in tasks):
            lines.append(f"| **vs {method_name(ref)}**: better / tie / worse median | | " + " | ".join(
                "/".join(map(str, versus(summ, tasks, m, ref))) if m.startswith("evohpo:") else "" for m in methods)
                + " |")
    lines.append("")
    return lines


GROUPS = (("continuous", "Continuous and mixed problems"), ("tables", "Tables (mean over seeds)"),
          ("single", "Tables, single run"))


def task_groups(tasks: list[Task]) -> dict[str, list[Task]]:
    """The tasks by report section: continuous (and mixed), tables (mean), tables (single run)."""
    return {"continuous": [t for t in tasks if table_key(t.key) is None],
            "tables": [t for t in tasks if table_key(t.key) is not None and not is_single_run(t.key)],
            "single": [t for t in tasks if is_single_run(t.key)]}


def summary(summ: dict[str, dict[str, Any]], tasks: list[Task], methods: list[str]) -> list[str]:
    """Bullet lines: per section, the mean rank among the methods run on all its problems, and each evohpo
    strategy's better / tie / worse medians against each reference peer."""
    evo = [m for m in methods if m.startswith("evohpo:")]
    lines = ["## Summary", ""]
    for key, title in GROUPS:
        group = task_groups(tasks)[key]
        if not group:
            continue
        full = complete(summ, group, methods)
        ranks = mean_ranks(summ, group, full)
        lines.append(f"- **{title}** ({len(group)} problems). Mean rank among the methods run on all of them "
                     "(1 = best): " + ", ".join(f"{method_name(m)} {ranks[m]:.2f}"
                                                for m in sorted(full, key=lambda m: ranks[m])) + ".")
        for ref in REFERENCES:
            if ref not in methods:
                continue
            have = [t for t in group if summ[t.id][ref]["regrets"]]
            if not have:
                continue
            counts = {m: versus(summ, have, m, ref) for m in evo}
            lines.append(f"  - vs {method_name(ref)} ({len(have)} problems{'' if len(have) == len(group) else ' run'}"
                         "), evohpo's median better / tie / worse: " + ", ".join(
                             f"{method_name(m)} {'/'.join(map(str, counts[m]))}" for m in evo) + ".")
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
              f"{RANKS} MPI ranks x budget/{RANKS} evaluations each, "
              + (f"every evaluation sleeping {1000 * meta['eval_seconds']:g} ms (`--eval-seconds`: with evaluations "
                 "that cost nothing, 4 ranks on 2 cores run in bursts of a scheduler time slice, which no real search "
                 "sees)" if meta.get("eval_seconds") else "evaluations costing nothing (`--eval-seconds 0`)")
              + "; Optuna TPE, Optuna CMA-ES and IPOP-CMA-ES "
              "serial; random = uniform sampling (without replacement on tables). Every method gets exactly `budget` "
              "evaluations. " + "See the docstring of bench/quality.py for each method's settings."
              + (f" Optuna CMA-ES: `{meta['optuna_cmaes']}`." if "optuna-cmaes" in methods and "optuna_cmaes" in meta
                 else ""), ""]
    notes = []
    if meta.get("caps"):
        notes.append("Capped (`--cap`; cells outside read 'not run', cells with fewer seeds say how many): "
                     + "; ".join(f"{method_name(m)}: {text}" for m, text in meta["caps"].items()) + ".")
    reused: dict[tuple[str, str], int] = {}
    for r in drv.results.values():
        if r.get("reused_from") and r.get("method") in methods and f"{r['problem']}@{r['budget']}" in \
                {t.id for t in tasks}:
            reused[(r["reused_from"], r["method"])] = reused.get((r["reused_from"], r["method"]), 0) + 1
    for src, peers in meta.get("reused_sources", {}).items():
        counts = [f"{method_name(m)} {n}" for (s, m), n in sorted(reused.items()) if s == src]
        if counts:
            notes.append(f"Reused, not re-run (`--reuse`), from {src}, {peers}: seed results of "
                         + ", ".join(counts) + ".")
    by_version: dict[str, list[str]] = {}
    for m in methods:
        if m.startswith("evohpo:"):
            for v in sorted({r.get("evohpo_version") for (_, mm, _), r in drv.results.items() if mm == m}):
                by_version.setdefault(v, []).append(method_name(m))
    if set(by_version) - {meta.get("evohpo_version")}:  # --keep-other-evohpo: columns of other evohpo sources
        notes.append("evohpo columns by sources (`--resume --keep-other-evohpo`): " + "; ".join(
            f"{', '.join(cols)}: {meta.get('evohpo_sources', {}).get(v, f'sources sha256 {v}')}"
            for v, cols in by_version.items()) + ".")
    if notes:
        lines += [" ".join(notes), ""]
    groups = task_groups(tasks)
    if sum(1 for g in groups.values() if g) > 1:
        lines += summary(summ, tasks, methods)
    for key, title in GROUPS:
        group = groups[key]
        if not group:
            continue
        if key == "single":
            floors = {t.label: single_run_floor(make_problem(t.key).table, args.seeds) for t in group}
            lines += [f"## {title}", "", SINGLE_RUN_NOTE + "Listed apart, with their own wins and ranks: "
                      "their noise floor is high. Floor = the median regret of an exhaustive search (every "
                      "configuration of the table once, the incumbent picked among the lowest values at random): "
                      + ", ".join(f"{name} {fmt(v)}" for name, v in floors.items()) + ".", ""]
        elif groups["continuous"] and (groups["tables"] or groups["single"]):
            lines += [f"## {title}", ""]
        lines += regret_table(summ, group, methods, args.seeds)

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

