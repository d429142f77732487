"""Results as tables: one row per evaluation (pandas) and the text summary of ``evohpo summary``."""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..core.goal import Goal
from ..core.individual import FAILED, PRUNED, Individual
from ..core.reporting import BUDGET_USED
from .learning import step_counts

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .load import Results

PARAM_PREFIX = "param."
COLUMNS = ("id", "island", "lives_on", "rank", "generation", "status", "loss", "step", "start", "end",
           "duration", "error")


def check_metric(metric: str) -> None:
    """ValueError unless ``metric`` can name the table's value column: not another fixed column, no prefix."""
    if metric != "loss" and (metric in COLUMNS or metric.startswith(PARAM_PREFIX)):
        raise ValueError(f"metric={metric!r} names a column of the results table; choose another name (not one of "
                         f"{', '.join(c for c in COLUMNS if c != 'loss')}, nor starting with {PARAM_PREFIX!r})")


def to_dataframe(results: Results) -> pd.DataFrame:
    """One row per finished evaluation, by end time.

    Columns: id, island (ran on), lives_on (island now, after migrations), rank, generation, status (ok,
    failed or pruned), loss (NaN when failed; a pruned training's is its last reported value), then the metric's
    column when its name is not "loss" (the value as the objective returned it: loss is minus it when
    maximizing), step (the highest step it reported with ``evohpo.report``; empty when it reported none), start
    and end (Unix seconds), duration (s), error (None unless failed), then one ``param.<name>`` column per
    hyperparameter (prefixed so that a parameter called e.g. "rank" cannot collide with a fixed column). With
    the metric "loss", the loss column holds the value. A pruned row's value is not a final one: ``best`` and
    the summary's tables rank ok trainings only.
    """
    import pandas as pd

    goal = results.goal
    names = results.param_names()
    columns = list(COLUMNS)
    if goal.metric != "loss":
        columns.insert(columns.index("loss") + 1, goal.metric)
    rows = []
    for ind in results.individuals:
        row: dict[str, Any] = {
            "id": ind.id, "island": results.ran_on(ind), "lives_on": ind.island, "rank": ind.rank,
            "generation": ind.generation, "status": ind.status, "step": ind.step,
            "start": ind.start, "end": ind.end, "duration": ind.end - ind.start, "error": ind.error}
        loss = ind.loss if ind.breeds else math.nan  # ok, or pruned with its last reported value
        row["loss"] = loss
        row[goal.metric] = goal.value(loss)  # the loss column itself for the metric "loss"
        for n in names:
            row[PARAM_PREFIX + n] = ind.params.get(n)
        rows.append(row)
    df = pd.DataFrame(rows, columns=[*columns, *(PARAM_PREFIX + n for n in names)])
    df["step"] = df["step"].astype("Int64")  # an int, or empty (<NA>) when it reported none
    return df



def summary(results: Results, top: int = 10) -> str:
    """A text report: the search, the counts, the ``top`` best and the best of each island."""
    c = results.counts
    lines = [f"evohpo results: {results.directory}"]
    if results.space is not None:
        lines.append("  space: " + ", ".join(f"{n}={p!r}" for n, p in results.space.items()))
    if results.meta:
        k = results.meta.get("ranks_per_worker") or 1
        ranks = f"workers: {results.meta.get('ranks')} of {k} ranks each" if k > 1 else \
            f"ranks: {results.meta.get('ranks')}"
        lines.append(f"  islands: {results.meta.get('islands')}, {ranks}")
    lines.append(f"  goal: {results.goal} ({results.goal.better})")
    lines.append(f"  status: {_status(results)}; elapsed {_duration(results.elapsed)}")
    lines.append(f"  evaluations: {c['evaluations']} finished ({c['ok']} ok, {c['failed']} failed, "
                 f"{c['pruned']} pruned), {c['in_flight']} in flight, {c['interrupted']} interrupted")
    lines += _steps(results)
    lines += _pruned_why(results)
    if results.torn:
        lines.append(f"  note: skipped the torn last line of {results.torn} journal(s) (still being written, "
                     "or cut short by a crash)")
    problems = results.problems
    if problems:
        lines.append(f"  damaged: {len(problems)} record(s) or journal(s) left out (first: {problems[0]}); "
                     f"python -m evohpo repair {results.directory} sets them aside")
    errors = Counter(_last_line(i.error) for i in results.individuals if i.status == FAILED)
    for err, k in errors.most_common(3):
        lines.append(f"  failed x{k}: {err}")
    if len(errors) > 3:
        lines.append(f"  ... and {len(errors) - 3} other errors")
    best = results.best(top)
    lines.append("")
    if not best:
        lines.append("no ok evaluation yet")
        return "\n".join(lines)
    lines.append(f"top {len(best)} of {c['ok']} ok:")
    lines += _table(best, results.param_names(), first="rank", numbers=range(1, len(best) + 1), goal=results.goal)
    by_island = results.islands()
    if len(by_island) > 1 or results.n_islands > 1:
        lines.append("")
        lines.append("best per island:")
        lines += _table(list(by_island.values()), results.param_names(), first="island",
                        numbers=list(by_island), island=False, goal=results.goal)
    return "\n".join(lines)


def _pruned_why(results: Results) -> list[str]:
    """Why the pruned trainings stopped: by the pruner's rule, or where the search's step budget ran out (none for
    a search without pruned trainings; journals written before the reason was kept count as not recorded)."""
    whys = [i.error for i in results.individuals if i.status == PRUNED]
    if not whys:
        return []
    budget = sum(BUDGET_USED in w for w in whys if w)
    unknown = sum(not w for w in whys)
    parts = [f"{len(whys) - budget - unknown} by the pruner", f"{budget} where the step budget ran out"]
    parts += [f"{unknown} without a recorded reason"] if unknown else []
    return [f"  pruned: {', '.join(parts)}"]


def _steps(results: Results) -> list[str]:
    """The steps the trainings reported (``evohpo.report``): in all and per training, what pruning saved, and how
    many trainings reached each step; nothing for a search without reports."""
    curves = results.curves()
    steps = []
    for ind in results.individuals:
        step = ind.step if ind.step is not None else (curves[ind.id].last_step if ind.id in curves else None)
        if step is not None:
            steps.append(step)
    if not steps:
        return [f"  steps: {sum(c.last_step for c in curves.values()):,} so far, by {len(curves):,} unfinished "
                "training(s)"] if curves else []
    n, total, full = len(steps), sum(steps), max(steps)
    stated = (results.meta or {}).get("max_steps")  # the search's max_steps, when meta.json records it
    if isinstance(stated, int) and not isinstance(stated, bool) and stated > full:
        full = stated
    lines = [f"  steps: {total:,} in all, {total / n:.1f} per training ({n:,} trainings reported)"]
    if results.counts["pruned"]:
        lines.append(f"  pruning saved {1 - total / (n * full):.0%} of the steps ({n * full:,} if every training had "
                     f"run to step {full:,})")
    lines.append("  trainings that reached step " + ", ".join(f"{s:,}: {k:,}" for s, k in step_counts(steps)))
    return lines


def _status(results: Results) -> str:
    """Finished (with why), stopped before finishing (with why: resume to go on), or running."""
    state = results.state
    if state.finished:
        return state.describe()
    if state.ended:
        return f"stopped, resumable ({state.describe()})"
    return "running, or stopped before finishing"


def _duration(seconds: float) -> str:
    """1.2 s, 3 min 4 s, 5 h 06 min."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _last_line(text: str | None) -> str:
    """The last non-blank line of an error text (for a traceback: the exception)."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    msg = lines[-1] if lines else "(no error text)"
    return msg if len(msg) <= 100 else msg[:97] + "..."


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else str(v)
    return str(v)


def _table(inds: list[Individual], names: list[str], first: str, numbers: Any, island: bool = True,
           goal: Goal | None = None) -> list[str]:
    """Aligned text rows: first column, the metric's value, id, island (where it lives now), then the parameters."""
    goal = goal or Goal()
    header = ["#" if first == "rank" else first, goal.metric, "id", *(["island"] if island else []), *names]
    rows = [[str(k), _cell(goal.value(i)), i.id, *([str(i.island)] if island else []),
             *(_cell(i.params.get(n, "")) for n in names)] for k, i in zip(numbers, inds)]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *rows]]
