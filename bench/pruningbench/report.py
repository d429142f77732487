"""Statistics over the seeds of each cell and the Markdown report of bench/pruning.py."""

from __future__ import annotations

import math
import statistics
from typing import Any

from qualitybench.report import fmt, quartiles, superiority

from .methods import load_table
from .steps import regret_at, single_run_floor, steps_to_reach

NAMES = {
    "evohpo-asha": "evohpo ASHA", "evohpo-none": "evohpo no pruning", "evohpo-median": "evohpo median",
    "evohpo-asha-mr1": "ASHA min_reports=1", "evohpo-asha-mr3": "ASHA min_reports=3",
    "evohpo-asha-mr12": "ASHA min_reports=12", "dehb": "DEHB", "dehb-scratch": "DEHB (from scratch)",
    "optuna-hyperband": "Optuna TPE + Hyperband", "optuna-sha": "Optuna TPE + SHA", "random": "random (full R)",
    "top-k": "1-step top-K", "evohpo-asha-random": "ASHA, random candidates (no breeding)",
    "evohpo-asha-eta2": "ASHA eta=2", "evohpo-asha-eta4": "ASHA eta=4",
    "evohpo-asha-resume": "ASHA, then pruned trainings resumed (what-if)",
}
MAIN = ("evohpo-asha", "evohpo-none", "dehb", "dehb-scratch", "optuna-hyperband", "optuna-sha", "random", "top-k")
RULES = ("evohpo-asha-mr1", "evohpo-asha-mr3", "evohpo-asha", "evohpo-asha-mr12", "evohpo-median", "evohpo-none")
RULE_NAMES = {"evohpo-asha": "ASHA min_reports=6 (default)", "evohpo-median": "median (min_reports=6)",
              "evohpo-none": "no pruning"}
DIAGNOSTICS = ("evohpo-asha", "evohpo-asha-random", "evohpo-asha-eta2", "evohpo-asha-eta4", "evohpo-asha-resume",
               "evohpo-none")
TIE = 1e-9
HEAD = "evohpo-asha"


def returned_regret(r: dict[str, Any]) -> float | None:
    """The regret of the configuration the method returned as its best (``returned_regret``; records written
    before it had the field under other names)."""
    for k in ("returned_regret", "evohpo_best_regret", "own_incumbent_regret"):
        if k in r:
            return r[k]
    return r["regret"]


def cells(data: dict[str, Any], uniform: bool = False) -> dict[tuple[str, int, str], dict[str, Any]]:
    """Per (table, budget multiple, method): regrets over the ok seeds, of the configuration each method returned
    (``uniform``: of the one rule for all, the lowest observed complete training); a run without one scores the
    table's worst regret. Their quartiles, steps used, trajectories."""
    tables = data["meta"]["tables"]
    out: dict[tuple[str, int, str], dict[str, Any]] = {}
    for r in data["runs"]:
        c = out.setdefault((r["table"], r["mult"], r["method"]), {"runs": [], "n": 0, "why": None})
        c["n"] += 1
        if r.get("status") == "ok":
            c["runs"].append(r)
        else:
            c["why"] = c["why"] or r.get("error") or r.get("status")
    for (name, _, _), c in out.items():
        worst = tables[name].get("worst")
        scored = [r["regret"] if uniform else returned_regret(r) for r in c["runs"]]
        c["regrets"] = [x if x is not None else (worst if worst is not None else math.inf) for x in scored]
        c["no_complete"] = sum(x is None for x in scored)
        c["steps"] = [r["steps"] for r in c["runs"]]
        # scored at exactly the budget: the incumbent among the trainings complete within the first N steps
        c["at_budget"] = [min(regret_at(r["trajectory"], r["budget"]), worst if worst is not None else math.inf)
                          for r in c["runs"]]
        c["exhausted"] = sum(str(r.get("reason", "")).startswith("space exhausted") for r in c["runs"])
        c["trajectories"] = [r["trajectory"] for r in c["runs"]]
        if c["regrets"]:
            c["q"] = quartiles(c["regrets"])
            c["median"] = c["q"][1]
        else:
            c["median"] = math.inf
    return out


def _cell_text(c: dict[str, Any] | None, best: float | None, n_seeds: int) -> str:
    if c is None:
        return "not run"
    if not c["regrets"]:
        return f"n/a ({str(c['why'])[:40]})"
    q1, q2, q3 = c["q"]
    text = f"{fmt(q2)} [{fmt(q1)}, {fmt(q3)}]"
    if best is not None and abs(c["median"] - best) <= TIE:
        text = f"**{fmt(q2)}** [{fmt(q1)}, {fmt(q3)}]"
    if len(c["regrets"]) != n_seeds:
        text += f" ({len(c['regrets'])}/{n_seeds} seeds)"
    return text


def floor(data: dict, name: str) -> float | None:
    """The table's single-run floor (``steps.single_run_floor``, median over the run's seeds); computed here for
    results saved without it."""
    t = data["meta"]["tables"][name]
    if t.get("floor") is None:
        try:
            t["floor"] = statistics.median(single_run_floor(load_table(name), range(data["meta"]["seeds"])))
        except Exception:  # noqa: BLE001 - the table is gone: no floor
            return None
    return t["floor"]


def versus(cs: dict, rows: list[tuple[str, int]], a: str, b: str, strict: bool = False) -> list[int]:
    """[wins, ties, losses] of ``a`` against ``b`` over ``rows``: the lower median wins, equal within 1e-9 ties
    (``strict``: ``a`` scored at exactly the budget)."""
    out = [0, 0, 0]
    for name, mult in rows:
        ca, cb = cs.get((name, mult, a)), cs.get((name, mult, b))
        if not ca or not cb or not ca["regrets"] or not cb["regrets"]:
            continue
        d = (statistics.median(ca["at_budget"]) if strict else ca["median"]) - cb["median"]
        out[0 if d < -TIE else 1 if abs(d) <= TIE else 2] += 1
    return out


def regret_table(cs: dict, data: dict, mult: int, methods: list[str]) -> list[str]:
    tables = data["meta"]["tables"]
    n = data["meta"]["seeds"]
    lines = ["| table (R, budget N) | " + " | ".join(NAMES.get(m, m) for m in methods) + " | single-run floor |",
             "|---|" + "---:|" * (len(methods) + 1)]
    for name in tables:
        R = tables[name]["max_steps"]
        row = [cs.get((name, mult, m)) for m in methods]
        finite = [c["median"] for c in row if c and c["regrets"]]
        best = min(finite) if finite else None
        lines.append(f"| {name} ({R}, {mult * R:,}) | " + " | ".join(_cell_text(c, best, n) for c in row)
                     + f" | {fmt(floor(data, name))} |")
    rows = [(name, mult) for name in tables]
    if HEAD in methods:
        lines.append(f"| **{NAMES[HEAD]}: wins / ties / losses** | " + " | ".join(
            "" if m == HEAD else "/".join(map(str, versus(cs, rows, HEAD, m))) for m in methods) + " | |")
    return [*lines, ""]


def compare_table(cs: dict, data: dict, cols: list[str], details: bool = False) -> list[str]:
    """Rows: (table, budget); columns: ``cols`` (evohpo variants), median [IQR] regret; with ``details`` each cell
    also gives the median steps used and how many seeds ended with the space exhausted. Mean ranks and the default
    ASHA's wins / ties / losses against each column close it."""
    tables = data["meta"]["tables"]
    n = data["meta"]["seeds"]
    lines = ["| table | budget | " + " | ".join(RULE_NAMES.get(m, NAMES.get(m, m)) for m in cols) + " |",
             "|---|---:|" + "---:|" * len(cols)]
    ranks: dict[str, list[float]] = {m: [] for m in cols}
    for mult in data["meta"]["mults"]:
        for name in tables:
            row = [cs.get((name, mult, m)) for m in cols]
            meds = {m: c["median"] for m, c in zip(cols, row) if c and c["regrets"]}
            best = min(meds.values()) if meds else None
            texts = []
            for c in row:
                t = _cell_text(c, best, n)
                if details and c and c["regrets"]:
                    t += f"; {statistics.median(c['steps']):,.0f} steps" + (
                        f", {c['exhausted']}/{len(c['runs'])} exhausted" if c["exhausted"] else "")
                texts.append(t)
            lines.append(f"| {name} | {mult}R | " + " | ".join(texts) + " |")
            for m, v in meds.items():  # rank: 1 + how many are better, ties share the mean position
                ranks[m].append(1 + sum(w < v - TIE for w in meds.values())
                                + 0.5 * (sum(abs(w - v) <= TIE for w in meds.values()) - 1))
    lines.append("| **mean rank** (1 = best) | | " + " | ".join(
        f"{statistics.fmean(ranks[m]):.2f}" if ranks[m] else "-" for m in cols) + " |")
    rows = [(t, k) for k in data["meta"]["mults"] for t in tables]
    lines.append(f"| **{NAMES[HEAD]} (default) vs each: wins / ties / losses** | | " + " | ".join(
        "" if m == HEAD else "/".join(map(str, versus(cs, rows, HEAD, m))) for m in cols) + " |")
    return [*lines, ""]


def strict_table(cs: dict, data: dict, cols: list[str]) -> list[str]:
    """evohpo scored as it spent (its overshoot included) and at exactly N steps (the incumbent among the trainings
    complete within the first N steps of the run, the ranks' steps merged by time)."""
    tables = data["meta"]["tables"]
    lines = ["| table | budget | " + " | ".join(f"{NAMES[m]}: as spent / at N" for m in cols) + " |",
             "|---|---:|" + "---:|" * len(cols)]
    for mult in data["meta"]["mults"]:
        for name in tables:
            texts = []
            for m in cols:
                c = cs.get((name, mult, m))
                texts.append(f"{fmt(c['median'])} / {fmt(statistics.median(c['at_budget']))}"
                             if c and c["regrets"] else "-")
            lines.append(f"| {name} | {mult}R | " + " | ".join(texts) + " |")
    lines.append("")
    peers = [m for m in MAIN if m not in cols and any(k[2] == m for k in cs)]
    for mult in data["meta"]["mults"]:
        rows = [(t, mult) for t in tables]
        lines.append(f"At exactly N = {mult}R, {NAMES[HEAD]} vs each peer (wins / ties / losses): " + ", ".join(
            f"{NAMES[m]} {'/'.join(map(str, versus(cs, rows, HEAD, m, strict=True)))}" for m in peers) + ".")
    return [*lines, ""]


def a_table(cs: dict, data: dict, peers: list[str]) -> list[str]:
    """Vargha-Delaney A of evohpo + ASHA against each peer per (table, budget): P(its regret < the peer's) + P(=) / 2
    over all pairs of seeds (0.5: no difference; above: evohpo better)."""
    tables = data["meta"]["tables"]
    lines = ["| table | budget | " + " | ".join(NAMES[m] for m in peers) + " |", "|---|---:|" + "---:|" * len(peers)]
    for mult in data["meta"]["mults"]:
        for name in tables:
            a = cs.get((name, mult, HEAD))
            if not a or not a["regrets"]:
                continue
            texts = []
            for m in peers:
                b = cs.get((name, mult, m))
                texts.append(f"{superiority(a['regrets'], b['regrets']):.2f}" if b and b["regrets"] else "-")
            lines.append(f"| {name} | {mult}R | " + " | ".join(texts) + " |")
    return [*lines, ""]


def steps_ratio(cs: dict, data: dict) -> tuple[list[str], list[dict[str, Any]]]:
    """Per (table, budget): the median final regret of evohpo without pruning (the target), the steps it used, and
    the fewest steps after which the median best-so-far regret of evohpo + ASHA is at or below the target (from its
    runs at the same budget, and from its runs at the largest budget)."""
    tables = data["meta"]["tables"]
    mults = sorted(data["meta"]["mults"])
    lines = ["| table | budget N | target: median final regret without pruning | steps without (median used) | "
             "ASHA steps to reach it (same N) | ratio | ASHA steps to reach it (runs at " + f"{mults[-1]}R) | ratio |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    out = []
    for name in tables:
        for mult in mults:
            none, asha = cs.get((name, mult, "evohpo-none")), cs.get((name, mult, HEAD))
            big = cs.get((name, mults[-1], HEAD))
            if not none or not none["regrets"] or not asha or not asha["regrets"]:
                continue
            target = none["median"]
            without = statistics.median(none["steps"])
            with_same = steps_to_reach(asha["trajectories"], target)
            with_big = steps_to_reach(big["trajectories"], target) if big and big["regrets"] else None
            rec = {"table": name, "mult": mult, "target": target, "steps_without": without, "asha_steps": with_same,
                   "ratio": without / with_same if with_same else None, "asha_steps_big": with_big,
                   "ratio_big": without / with_big if with_big else None}
            out.append(rec)

            def r(x: float | None) -> str:
                return f"{x:.2f}x" if x else "-"

            N = mult * tables[name]["max_steps"]
            lines.append(f"| {name} | {mult}R = {N:,} | {fmt(target)} | {without:,.0f} | "
                         f"{with_same if with_same else 'not reached'} | {r(rec['ratio'])} | "
                         f"{with_big if with_big else 'not reached'} | {r(rec['ratio_big'])} |")
    return [*lines, ""], out


def steps_table(cs: dict, data: dict, methods: list[str]) -> list[str]:
    tables = data["meta"]["tables"]
    lines = ["| table | budget | " + " | ".join(NAMES.get(m, m) for m in methods) + " |",
             "|---|---:|" + "---:|" * len(methods)]
    for mult in data["meta"]["mults"]:
        for name in tables:
            N = mult * tables[name]["max_steps"]
            texts = []
            for m in methods:
                c = cs.get((name, mult, m))
                if not c or not c["runs"]:
                    texts.append("-")
                    continue
                tr = statistics.median(r["trainings"] for r in c["runs"])
                co = statistics.median(r["completed"] for r in c["runs"])
                ds = [r["distinct"] for r in c["runs"] if r.get("distinct") is not None]
                dt = f" ({statistics.median(ds):.0f})" if ds else ""
                texts.append(f"{statistics.median(c['steps']):,.0f} (max {max(c['steps']):,}); {tr:.0f}{dt} / {co:.0f}")
            lines.append(f"| {name} | {N:,} | " + " | ".join(texts) + " |")
    return [*lines, ""]


def summary_lines(cs: dict, data: dict, main: list[str], ratios: list[dict[str, Any]]) -> list[str]:
    """The goals, counted: evohpo + ASHA no worse (win or tie) than DEHB and Optuna + Hyperband on at least 3 of
    every 4 tables and than the 1-step top-K baseline on most; the steps ratio; the best first-few rule."""
    tables = list(data["meta"]["tables"])
    out = ["## Summary", ""]
    for mult in data["meta"]["mults"]:
        rows = [(t, mult) for t in tables]
        parts = []
        for m in main:
            if m == HEAD:
                continue
            w, t, lo = versus(cs, rows, HEAD, m)
            if w + t + lo:
                parts.append(f"{NAMES[m]} {w + t}/{w + t + lo}")
        out.append(f"- Budget {mult} x R: {NAMES[HEAD]} no worse (median) than " + ", ".join(parts) + " tables.")
    reached = [f"{r['table']} @{r['mult']}R {r['ratio']:.1f}x" if r["ratio"] else f"{r['table']} @{r['mult']}R not "
               "reached" for r in ratios]
    out.append("- Steps to the median final regret of evohpo without pruning, without / with ASHA (same budget): "
               + ", ".join(reached) + ".")
    rules = [m for m in RULES[:4] if any(k[2] == m for k in cs)]
    ranks = {m: [] for m in rules}
    for mult in data["meta"]["mults"]:
        for name in tables:
            meds = {m: cs[(name, mult, m)]["median"] for m in rules if cs.get((name, mult, m), {}).get("regrets")}
            for m, v in meds.items():
                ranks[m].append(1 + sum(w < v - TIE for w in meds.values())
                                + 0.5 * (sum(abs(w - v) <= TIE for w in meds.values()) - 1))
    if any(ranks.values()):
        out.append("- First-few rule, mean rank of ASHA over the tables and budgets (1 = best of "
                   f"{len(rules)}): " + ", ".join(f"min_reports={m.rsplit('mr', 1)[1] if 'mr' in m else 6} "
                                                  f"{statistics.fmean(v):.2f}" for m, v in ranks.items() if v) + ".")
    return [*out, ""]


def summary(cs: dict, data: dict) -> dict[str, Any]:
    """Machine-readable medians, IQRs and head-to-heads (added to the JSON)."""
    out: dict[str, Any] = {"cells": {}, "versus": {}}
    tables = data["meta"]["tables"]
    for (name, mult, m), c in cs.items():
        if c["regrets"]:
            out["cells"][f"{name}@{mult}R:{m}"] = {
                "median": c["median"], "q1": c["q"][0], "q3": c["q"][2], "n": len(c["regrets"]),
                "median_steps": statistics.median(c["steps"]), "median_at_N": statistics.median(c["at_budget"]),
                "exhausted": c["exhausted"]}
    for mult in data["meta"]["mults"]:
        rows = [(t, mult) for t in tables]
        out["versus"][f"{mult}R"] = {m: versus(cs, rows, HEAD, m) for m in data["meta"]["methods"] if m != HEAD}
        out["versus_at_N"] = out.get("versus_at_N", {})
        out["versus_at_N"][f"{mult}R"] = {m: versus(cs, rows, HEAD, m, strict=True) for m in MAIN if m != HEAD}
    return out


def report(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The Markdown and the summary for the JSON."""
    meta = data["meta"]
    order = ("cnn", "mlp", "sgd", "hgb")  # the default tables' order, others after them
    meta["tables"] = dict(sorted(meta["tables"].items(), key=lambda kv: next(
        (i for i, p in enumerate(order) if kv[0].startswith(p)), len(order))))
    cs = cells(data)
    methods = meta["methods"]
    main = [m for m in MAIN if m in methods]
    lines = ["# Pruning: learning-curve tables at equal step budgets", "",
             f"{meta['date']}, {meta['host']} ({meta['cpu']}, {meta['cpus']} CPUs, load {meta['load_before']} at "
             f"start), {meta.get('minutes', '?')} min. evohpo: {meta['evohpo']}. Peers: {meta['peers']}.", "",
             "Commands (one results file, completed with `--resume`): " + "; ".join(
                 f"`.venv/bin/python bench/pruning.py {' '.join(inv.get('argv') or [])}` ({inv.get('date')}, "
                 f"{inv.get('minutes')} min)" for inv in [*meta.get("invocations", []), meta]) + ".", "",
             "Score: regret of the configuration each method returns as its best, judged by what it observed "
             "(evohpo: `SearchResult.best`, complete trainings only; Optuna: `study.best_trial`, complete trials "
             "only; DEHB: its incumbent, the lowest value told at any fidelity; random and 1-step top-K: the complete "
             "training with the lowest observed final value, the first on ties) = that configuration's mean final "
             "value over the table's seeds - the table's best mean final value; median [IQR] over seeds "
             f"({meta['seeds']} seeds), best median bold. Every method sees single-run curves and pays 1 step per "
             "step trained; see bench/pruning.py for each method's settings. Single-run floor: the median regret of "
             "training every configuration of the grid to the end once and keeping the lowest observed value (what "
             "judging by single runs costs even with an unlimited budget; a method can beat it by luck or by not "
             "meeting the lucky configurations).", ""]
    ratio_lines, ratios = steps_ratio(cs, data)
    lines += summary_lines(cs, data, main, ratios)
    for mult in meta["mults"]:
        lines += [f"## Budget {mult} x R steps", ""]
        lines += regret_table(cs, data, mult, main)
    peers = [m for m in main if m != HEAD]
    cu = cells(data, uniform=True)
    lines += ["## One incumbent rule for all", "",
              "The same runs, every method scored by one rule: the complete training (R steps) with the lowest "
              "observed final value, the first to complete on ties (evohpo's ranks merged by time). Observed values "
              "are discrete (validation sets of 540-599 samples), so ties at the lowest value are common and the tie "
              "rule alone moves a median.", ""]
    for mult in meta["mults"]:
        lines += [f"Budget {mult} x R:", ""]
        lines += regret_table(cu, data, mult, main)
    lines += ["## How sure: evohpo + ASHA vs each, per table", "",
              "Vargha-Delaney A: P(evohpo + ASHA's regret < the other's) + P(equal) / 2 over all pairs of seeds; 0.5 = "
              "no difference, above = evohpo better (10 vs 10 seeds: |A - 0.5| < 0.27 is not significant at 5%, "
              "two-sided Mann-Whitney).", ""]
    lines += a_table(cs, data, peers)
    lines += ["## First-few rule (min_reports) and other pruners of evohpo", "",
              "evohpo with ASHA (min_steps=1, eta=3) for min_reports in 1, 3, 6 (default), 12, the median rule, and "
              "no pruning; median [IQR] regret.", ""]
    lines += compare_table(cs, data, [m for m in RULES if m in methods])
    diag = [m for m in DIAGNOSTICS if m in methods]
    if len(diag) > 2:
        lines += ["## Diagnostics: breeding, eta", "",
                  "evohpo + ASHA with its default breeding vs random candidates (no breeding from pruned or complete "
                  "trainings: plain asynchronous successive halving), eta 2 and 4 instead of 3, a what-if (the default "
                  "search, then, where it stopped early because every configuration of the grid had been tried, the "
                  "rest of the budget spent on continuing its pruned trainings to the end, furthest first, as if they "
                  "could resume: computed after the search; evohpo itself trains pruned configurations again from "
                  "scratch once every configuration was tried), and no pruning. Each "
                  "cell: median [IQR] regret; median steps used; seeds that stopped early because every configuration "
                  "of the grid had been tried and every pruned one trained to its end.", ""]
        lines += compare_table(cs, data, diag, details=True)
    evo = [m for m in ("evohpo-asha", "evohpo-none") if m in methods]
    if evo:
        lines += ["## evohpo at exactly N steps", "",
                  "The main tables score evohpo at the steps it spent (a running training finishes after the budget "
                  "is used). Here also at exactly N: the incumbent among the trainings complete within the run's "
                  "first N steps (median regret).", ""]
        lines += strict_table(cs, data, evo)
    lines += ["## Same best as without pruning, with how many fewer steps", "",
              "Target: the median final regret of evohpo without pruning at budget N. Steps with pruning: the fewest "
              "steps after which the median over seeds of evohpo + ASHA's best-so-far regret (complete trainings "
              "only) is at or below the target. Ratio = steps without / steps with (goal: >= 3x).", ""]
    lines += ratio_lines
    lines += ["## Steps used", "",
              "Median steps used (max over seeds); median trainings started (distinct configurations) / completed "
              "to R. evohpo stops starting trainings once the budget is used and lets running ones finish (overshoot "
              "< R per worker); it is scored at what it spent. The serial methods stop at the budget exactly.", ""]
    lines += steps_table(cs, data, [m for m in methods if m in cs_methods(cs)])
    summ = summary(cs, data)
    summ["uniform"] = summary(cu, data)
    summ["steps_ratio"] = ratios
    return "\n".join(lines) + "\n", summ


def cs_methods(cs: dict) -> set[str]:
    return {m for (_, _, m) in cs}

