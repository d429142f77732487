"""Step accounting and scoring, shared by every method (standard library only: it runs in evohpo's venv and in the
peers' venv alike).

- ``StepMeter``: the trainings of one run on a learning-curve table. ``meter.open(params)`` starts a training that
  replays the configuration's single-run curve (``table.single_run_curve(params, seed)``); ``training.advance(s)``
  trains it up to step ``s`` and charges every new step to the budget, one at a time. Once the budget is used, the
  next step raises ``BudgetExhausted`` (the steps charged before it count): a method never trains more than its
  budget. A training that reaches ``max_steps`` is complete; the meter keeps every completion with the steps used
  when it completed.
- ``score``: the incumbent of a run is the complete training with the lowest observed final value (the first to
  complete on ties); its regret is the table's mean final value of that configuration minus ``table.best``.
  ``trajectory`` gives the best-so-far regret against steps used.
- ``one_step_top_k`` (the baseline of Egele et al. 2023) and ``random_full`` (random search at full fidelity).
"""

from __future__ import annotations

import bisect
import json
import math
import random
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class BudgetExhausted(Exception):  # noqa: N818 (a stop signal, not an error)
    """Raised by ``Training.advance`` when a step is asked for after the budget is used."""


def params_key(params: Mapping[str, Any], names: Sequence[str]) -> str:
    """A configuration as a canonical string (its values in ``names`` order, JSON)."""
    return json.dumps([_plain(params[n]) for n in names])


def _plain(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v


@dataclass
class Completion:
    """A training that ran to ``max_steps``: steps used by the run when it completed, its observed final value."""

    used: int
    observed: float
    params: dict[str, Any]
    at: float = 0.0  # a clock reading (MPI runs: time.monotonic(), to merge the ranks' completions)


class Training:
    """One training of one configuration: it replays the single-run curve, a step at a time, charged to its meter."""

    def __init__(self, meter: StepMeter, params: dict[str, Any], curve: list[float], done: int = 0) -> None:
        self.meter, self.params, self.curve = meter, params, curve
        self.step = done  # steps trained so far

    @property
    def value(self) -> float:
        """The observed value after the steps trained so far (NaN before the first)."""
        return self.curve[self.step - 1] if self.step else math.nan

    def advance(self, to_step: int) -> float:
        """Train up to ``to_step`` (at most ``max_steps``), charging each new step; the value there (a training
        already past ``to_step`` costs nothing).
        ``BudgetExhausted`` when the budget runs out first (the steps trained until then are charged)."""
        to_step = min(int(to_step), len(self.curve))
        while self.step < to_step:
            self.meter.charge()
            self.step += 1
            if self.step == len(self.curve):
                self.meter.complete(self)
        return self.curve[to_step - 1] if to_step >= 1 else math.nan


class StepMeter:
    """Counts the steps of one run (one method, table, benchmark seed) against ``budget`` (None: no limit).

    ``keep=True`` keeps each configuration's training so that opening it again continues it (a user who keeps a
    checkpoint per configuration); by default every ``open`` is a new training from step 0. ``stamp=True`` records
    ``time.monotonic()`` at every step (MPI runs: the ranks' steps are merged by time)."""

    def __init__(self, table: Any, seed: int, budget: int | None, *, keep: bool = False, stamp: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.table, self.seed, self.budget = table, int(seed), budget
        self.max_steps = int(table.max_steps)
        self.names = list(table.levels) if hasattr(table, "levels") else list(table.space)
        self.keep, self.stamp, self.clock = keep, stamp, clock
        self.used = 0
        self.trainings = 0  # opened
        self.opened: set[str] = set()  # distinct configurations opened
        self.completions: list[Completion] = []
        self.step_times: list[float] = []
        self._kept: dict[str, Training] = {}

    @property
    def left(self) -> int | None:
        return None if self.budget is None else self.budget - self.used

    def open(self, params: Mapping[str, Any]) -> Training:
        """A training of ``params``: a new one from step 0, or (``keep``) the one opened before, where it stopped."""
        p = {n: _plain(params[n]) for n in self.names}
        self.trainings += 1
        key = params_key(p, self.names)
        self.opened.add(key)
        if self.keep:
            tr = self._kept.get(key)
            if tr is None:
                tr = self._kept[key] = Training(self, p, self.table.single_run_curve(p, self.seed))
            return tr
        return Training(self, p, self.table.single_run_curve(p, self.seed))

    def charge(self) -> None:
        """One step more; ``BudgetExhausted`` when the budget is used."""
        if self.budget is not None and self.used >= self.budget:
            raise BudgetExhausted(f"budget of {self.budget} steps used")
        self.used += 1
        if self.stamp:
            self.step_times.append(self.clock())

    def complete(self, tr: Training) -> None:
        self.completions.append(Completion(self.used, tr.curve[-1], dict(tr.params), self.clock() if self.stamp
                                           else 0.0))

    def part(self) -> dict[str, Any]:
        """This meter's record, for merging across MPI ranks (``merge``)."""
        return {"used": self.used, "trainings": self.trainings, "opened": sorted(self.opened),
                "step_times": self.step_times,
                "completions": [(c.at, c.observed, c.params) for c in self.completions]}


def merge(parts: Sequence[Mapping[str, Any]]) -> tuple[int, int, list[Completion]]:
    """The ranks' ``StepMeter.part()`` as one run: (steps used, trainings, completions in time order, each with the
    steps all ranks had used by its time)."""
    times = sorted(t for p in parts for t in p["step_times"])
    comps = sorted((c for p in parts for c in p["completions"]), key=lambda c: c[0])
    out = [Completion(bisect.bisect_right(times, at), observed, dict(params), at) for at, observed, params in comps]
    return sum(p["used"] for p in parts), sum(p["trainings"] for p in parts), out


def incumbent(completions: Iterable[Completion]) -> Completion | None:
    """The complete training with the lowest observed final value; the first to complete on ties."""
    best = None
    for c in completions:
        if best is None or c.observed < best.observed:
            best = c
    return best


def trajectory(table: Any, completions: Iterable[Completion]) -> list[tuple[int, float]]:
    """``(steps used, regret)`` each time the incumbent changes (the best-so-far regret is that of the last pair at
    or before a step count; infinite before the first)."""
    out: list[tuple[int, float]] = []
    best = math.inf
    for c in completions:
        if c.observed < best:
            best = c.observed
            r = table.regret(table.final(c.params))
            if out and out[-1][0] == c.used:
                out[-1] = (c.used, r)
            else:
                out.append((c.used, r))
    return out


def score(table: Any, used: int, trainings: int, completions: list[Completion],
          distinct: int | None = None) -> dict[str, Any]:
    """One run's result: the incumbent's regret (None without a complete training), its observed and mean final
    values, steps used, trainings opened (and distinct configurations among them) and completed, and the best-so-far
    trajectory."""
    inc = incumbent(completions)
    rec: dict[str, Any] = {"steps": used, "trainings": trainings, "distinct": distinct, "completed": len(completions),
                           "trajectory": [[s, round(r, 6)] for s, r in trajectory(table, completions)]}
    if inc is None:
        return {**rec, "regret": None, "incumbent": None}
    mean = table.final(inc.params)
    return {**rec, "regret": table.regret(mean), "incumbent": inc.params, "observed": inc.observed,
            "incumbent_mean": mean, "incumbent_at": inc.used}


def regret_at(traj: Sequence[Sequence[float]], steps: float) -> float:
    """The best-so-far regret after ``steps`` steps of a trajectory (inf before its first complete training)."""
    i = bisect.bisect_right([s for s, _ in traj], steps)
    return traj[i - 1][1] if i else math.inf


def steps_to_reach(trajs: Sequence[Sequence[Sequence[float]]], target: float) -> int | None:
    """The fewest steps after which the median over runs of the best-so-far regret is <= ``target`` (None: never
    within the runs' steps). Runs are step functions: only their breakpoints need checking."""
    points = sorted({int(s) for t in trajs for s, _ in t})
    for s in points:
        if statistics.median(regret_at(t, s) for t in trajs) <= target + 1e-12:
            return s
    return None


# -- serial baselines ----------------------------------------------------------------------------------------------

def _shuffled(table: Any, seed: int) -> list[dict[str, Any]]:
    configs = table.configurations()
    random.Random(seed).shuffle(configs)
    return configs


def top_k_split(budget: int, max_steps: int, size: int) -> tuple[int, int]:
    """(M, K) of the one-step baseline: M = min(budget // 2, size) configurations screened for 1 step, then the
    K = min(M, (budget - M) // (max_steps - 1)) best continued to ``max_steps``: M + K (R - 1) <= budget."""
    m = min(budget // 2, size)
    k = min(m, (budget - m) // (max_steps - 1)) if max_steps > 1 else m
    return m, max(0, k)


def one_step_top_k(meter: StepMeter) -> dict[str, Any]:
    """Train M random distinct configurations 1 step each, keep the K best (lowest value after 1 step, first on
    ties), train those to the end (continuing their trainings); ``top_k_split`` chooses M and K."""
    m, k = top_k_split(meter.budget, meter.max_steps, meter.table.size)
    screened = []
    try:
        for i, p in enumerate(_shuffled(meter.table, meter.seed)[:m]):
            tr = meter.open(p)
            screened.append((tr.advance(1), i, tr))
        for _, _, tr in sorted(screened, key=lambda x: x[:2])[:k]:
            tr.advance(meter.max_steps)
    except BudgetExhausted:
        pass
    return {"screened": m, "kept": k}


def random_full(meter: StepMeter) -> dict[str, Any]:
    """Random search at full fidelity: distinct configurations in random order, each trained to the end, until the
    budget is used (the last one may stop short)."""
    try:
        for p in _shuffled(meter.table, meter.seed):
            meter.open(p).advance(meter.max_steps)
    except BudgetExhausted:
        pass
    return {}



def single_run_floor(table: Any, seeds: Iterable[int]) -> list[float]:
    """Per benchmark seed, the regret of training every configuration of the grid to the end once and keeping the
    lowest observed final value (the first in grid order on ties): what judging by single runs costs at best."""
    out = []
    configs = table.configurations()
    for seed in seeds:
        best = min(range(len(configs)), key=lambda i: (table.single_run_curve(configs[i], seed)[-1], i))
        out.append(table.regret(table.final(configs[best])))
    return out


def resume_pruned(table: Any, seed: int, left: int, pruned: Sequence[tuple[dict[str, Any], int, float]],
                  start: int) -> list[Completion]:
    """What-if: spend ``left`` steps continuing pruned trainings ``(params, step reached, last value)`` to the end,
    furthest first (then lowest value), each from where it stopped; the completions, their ``used`` counted from
    ``start`` (the steps spent before)."""
    meter = StepMeter(table, seed, max(0, left))
    try:
        for params, step, _ in sorted(pruned, key=lambda x: (-x[1], x[2])):
            tr = meter.open(params)
            tr.step = int(step)  # paid for in the search
            tr.advance(meter.max_steps)
    except BudgetExhausted:
        pass
    return [Completion(start + c.used, c.observed, c.params, c.at) for c in meter.completions]
