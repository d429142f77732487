"""Optimizer overhead benchmark: evohpo vs Propulate 1.2.2 on a zero-cost objective, side by side.

    python bench/overhead.py            # full run (~8 min on 2 busy cores); writes bench/results/overhead.md
    python bench/overhead.py --quick    # a smaller run (~2 min)
    python bench/overhead.py --quick --baseline 8e15be0 --no-propulate  # evohpo now vs commit 8e15be0

Every measurement is one ``mpiexec -n R python -m mpi4py bench/overhead.py --worker ...`` subprocess (with a
timeout: a hang is reported, never fatal). The evohpo side runs from a snapshot of ``evohpo/`` taken at start
(first on the workers' ``PYTHONPATH``), so edits during a run do not mix versions. ``--baseline REF`` (a git
commit) runs every evohpo measurement also from a read-only ``git archive`` of REF, right before or after the
current one (alternating), and the report puts the baseline's columns and the current/baseline throughput ratio
next to the current ones: for showing that a restructuring changed nothing.

Propulate runs in a separate clean venv built by ``bench/_peers.py`` (default ``bench/.peers-venv``), with its
tutorial defaults: ``pop_size = 2 x ranks`` and ``propulate.utils.get_default_propagator``; its checkpoint
writes are switched off (a subclass keeps the dump-token messages, so its communication is unchanged, but skips
the pickle writes; Propulate 1.2.2 has no switch for that).

Measured, the same way on both sides, by wrapping the loss function (5-D sphere from
``evohpo.testing.functions``, imported from the source tree on the Propulate side):

- evaluations/s: evaluations of all ranks / the longest per-rank wall time of the optimize call
  (evohpo: ``optimize``; Propulate: ``Propulator(...)``, ``propulate()``, ``summarize(debug=0)``);
- last/first 10%: per-evaluation time = gap between consecutive calls of the loss on one rank; mean over the
  last 10% of a rank's gaps / mean over its first 10%; the largest over ranks;
- idle fraction, with 10-100 ms evaluations (``time.sleep``, uniform, seeded per rank, the same draws on
  both sides): 1 - time inside the loss summed over ranks / (ranks x longest wall time).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from _common import (
    ROOT,
    evohpo_functions,
    git_dirty,
    git_head,
    mpi_command,
    quiet_propulator,
    run_marked,
    snapshot_evohpo,
    versions,
    worker_env,
    write_report,
)

HERE = Path(__file__).resolve().parent
MARK = "@@OVERHEAD-RESULT "
DIM = 5

GOAL_RATIO = 1.3
GOAL_SPEEDUP = 10.0
GOAL_IDLE = 0.03
GOAL_CKPT = 0.10
CKPT_PAIRS = 3  # checkpoint off/on pairs; the median slowdown is reported
PROPULATE_ONE_RANK = "skipped: hangs on 1 rank under MPICH (blocking self-send of its checkpoint token)"


# ---------------------------------------------------------------------------------------------------------------
# Worker side: runs inside mpiexec, one process per rank. Imports only the stdlib at module level, so the same
# file serves evohpo's venv and the clean peers' venv.
# ---------------------------------------------------------------------------------------------------------------

def _sphere_loss(side: str):
    """The 5-D sphere ``loss(params)`` and its space, from ``evohpo.testing.functions`` on both sides: on the
    Propulate side the source tree is put on ``sys.path`` (evohpo is not installed there; the module and
    ``import evohpo`` need only numpy)."""
    p = evohpo_functions(None if side == "evohpo" else ROOT).get("sphere", DIM)
    return p.loss, p.space


class Recorder:
    """Wraps a loss: start time of each call, total time inside; optionally sleeps 10-100 ms per call first."""

    def __init__(self, loss: Any, sleep_rng: random.Random | None = None) -> None:
        self.loss, self.sleep_rng = loss, sleep_rng
        self.starts: list[float] = []
        self.inside = 0.0
        self.t0 = self.last_end = 0.0  # start of the optimize call (set by the runner), end of the last call

    def __call__(self, params: Any, *rest: Any) -> float:
        t0 = time.perf_counter()
        self.starts.append(t0)
        if self.sleep_rng is not None:
            time.sleep(self.sleep_rng.uniform(0.010, 0.100))
        value = self.loss(params)
        self.last_end = time.perf_counter()
        self.inside += self.last_end - t0
        return value

    def stats(self, wall: float) -> dict[str, Any]:
        gaps = [b - a for a, b in zip(self.starts, self.starts[1:])]
        k = max(1, len(gaps) // 10)
        first = sum(gaps[:k]) / k if gaps else float("nan")
        last = sum(gaps[-k:]) / k if gaps else float("nan")
        med_first = statistics.median(gaps[:k]) if gaps else float("nan")
        med_last = statistics.median(gaps[-k:]) if gaps else float("nan")
        return {"wall": wall, "n": len(self.starts), "inside": self.inside, "first": first, "last": last,
                "span": self.last_end - self.t0 if self.starts else 0.0,
                "ratio": last / first if gaps and first > 0 else float("nan"),
                "ratio_median": med_last / med_first if gaps and med_first > 0 else float("nan")}


def _run_evohpo(args: argparse.Namespace, rec: Recorder, space: Any, comm: Any) -> float:
    from evohpo import optimize  # before the clock: the name loads the optimizer on first use

    kwargs: dict[str, Any] = {"checkpoint": args.checkpoint} if args.checkpoint else {}
    if args.task == "sleep":  # the same total, as a shared budget: fast workers take over from slow ones
        kwargs["max_evaluations"] = args.generations * comm.Get_size()
    else:
        kwargs["generations"] = args.generations
    comm.Barrier()
    t0 = rec.t0 = time.perf_counter()
    optimize(rec, space, seed=args.seed, progress_interval=1e9, **kwargs)
    return time.perf_counter() - t0


def _run_propulate(args: argparse.Namespace, rec: Recorder, space: Any, comm: Any) -> float:
    from propulate.utils import get_default_propagator

    Propulator = quiet_propulator(bool(args.checkpoint))  # pickles off unless --checkpoint; the token travels
    rank = comm.rank
    rng = random.Random(args.seed + rank)  # as in Propulate's tutorials
    pop_size = 2 * comm.size
    path = args.checkpoint or tempfile.mkdtemp(prefix=f"propulate-{rank}-")
    propagator = get_default_propagator(pop_size, space, rng=rng)
    comm.Barrier()
    t0 = rec.t0 = time.perf_counter()
    propulator = Propulator(rec, propagator, rng=rng, island_comm=comm, generations=args.generations,
                            checkpoint_path=path)
    propulator.propulate(logging_interval=10**9, debug=0)
    propulator.summarize(top_n=1, debug=0)
    wall = time.perf_counter() - t0
    if not args.checkpoint:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
    return wall


def worker(args: argparse.Namespace) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    loss, space = _sphere_loss(args.worker)
    sleep_rng = random.Random(1_000_003 * (args.seed + 1) + comm.rank) if args.task == "sleep" else None
    rec = Recorder(loss, sleep_rng)
    run = _run_evohpo if args.worker == "evohpo" else _run_propulate
    profiler = None
    if args.profile and comm.rank == 0:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    wall = run(args, rec, space, comm)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    stats = comm.gather(rec.stats(wall), root=0)
    if comm.rank == 0:
        print(MARK + json.dumps({"ranks": stats}), flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Driver side: launches the workers, collects, prints and writes the tables.
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Run:
    """One measurement: either per-rank stats or a reason why there are none."""

    side: str
    ranks: int
    generations: int
    task: str = "zero"
    checkpoint: bool = False
    per_rank: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    elapsed: float = 0.0  # wall time of the whole subprocess, startup included

    @property
    def ok(self) -> bool:
        return self.reason is None and bool(self.per_rank)

    @property
    def wall(self) -> float:
        return max(r["wall"] for r in self.per_rank)

    @property
    def evaluations(self) -> int:
        return sum(r["n"] for r in self.per_rank)

    @property
    def rate(self) -> float:
        return self.evaluations / self.wall

    @property
    def ratio(self) -> float:
        return max(r["ratio"] for r in self.per_rank)

    @property
    def ratio_median(self) -> float:
        return max(r.get("ratio_median", float("nan")) for r in self.per_rank)

    @property
    def idle(self) -> float:
        return 1.0 - sum(r["inside"] for r in self.per_rank) / (self.ranks * self.wall)

    @property
    def idle_end(self) -> float:
        """The part of ``idle`` after a rank's last evaluation ended (waiting for the slowest, shutdown)."""
        return sum(self.wall - r["span"] for r in self.per_rank) / (self.ranks * self.wall)


def launch(python: Path, side: str, ranks: int, generations: int, *, task: str = "zero", checkpoint: bool = False,
           timeout: float, seed: int = 0, log: Any = None, tree: Path | None = None) -> Run:
    """Run one worker job under mpiexec (the mpiexec next to ``python``); a timeout or failure becomes a reason.
    ``side``: evohpo, baseline (both run evohpo, from the snapshot ``tree``) or propulate."""
    run = Run(side, ranks, generations, task, checkpoint)
    tmp = tempfile.mkdtemp(prefix=f"overhead-{side}-") if checkpoint else None
    args = ["--worker", "propulate" if side == "propulate" else "evohpo", "--task", task,
            "--generations", str(generations), "--seed", str(seed)]
    if tmp:
        args += ["--checkpoint", str(Path(tmp) / "ckpt")]
    what = f"{side:9s} {ranks} x {generations:5d} {task}{' ckpt' if checkpoint else ''}"
    if log:
        print(f"  {what} ...", end="", file=log, flush=True)
    t0 = time.perf_counter()
    out = run_marked(mpi_command(python, ranks, Path(__file__).resolve(), *args), MARK, timeout=timeout, cwd=ROOT,
                     env=worker_env(tree))
    run.elapsed = time.perf_counter() - t0
    if tmp:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    if out.reason is not None:
        run.reason = out.reason
    elif out.returncode == 0 and out.records:
        run.per_rank = out.records[-1]["ranks"]
    else:
        run.reason = out.failure()
    if log:
        print(f" {run.elapsed:6.1f} s  " + (f"{run.rate:9.1f} evals/s" if run.ok else run.reason), file=log,
              flush=True)
    return run


def _fmt_rate(run: Run | None) -> str:
    if run is None:
        return "-"
    return f"{run.rate:,.0f}" if run.ok else run.reason


def _fmt_ratio(run: Run | None) -> str:
    if run is None:
        return "-"
    return f"{run.ratio:.2f} / {run.ratio_median:.2f}" if run.ok else "n/a"


def _fmt_idle(run: Run) -> str:
    if not run.ok:
        return run.reason
    return f"{_fmt_pct(run.idle)} ({_fmt_pct(run.idle - run.idle_end)} + {_fmt_pct(run.idle_end)})"


def _fmt_wall(run: Run) -> str:
    return f"{run.wall:.2f}" if run.ok else "-"


def _fmt_pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


class Propulate:
    """Propulate runs: skips 1 rank and runs over the evaluation cap (with a quadratic time estimate)."""

    def __init__(self, python: Path | None, reason: str | None, cap: int, timeout: float, log: Any) -> None:
        self.python, self.reason, self.cap, self.timeout, self.log = python, reason, cap, timeout, log
        self.done: list[Run] = []

    def skip_reason(self, ranks: int, generations: int) -> str | None:
        if self.python is None:
            return f"n/a ({self.reason})"
        if ranks == 1:
            return PROPULATE_ONE_RANK
        total = ranks * generations
        if total > self.cap:
            return f"skipped (too slow: {self.estimate(total)}; cap {self.cap:,} evaluations)"
        return None

    def estimate(self, total: int) -> str:
        """Propulate's cost per evaluation grows with the population, so its run time grows ~ total^2."""
        base = [r for r in self.done if r.ok and r.task == "zero" and not r.checkpoint]
        if not base:
            return "expected time unknown"
        ref = max(base, key=lambda r: r.evaluations)
        secs = ref.wall * (total / ref.evaluations) ** 2
        return f"~{secs:,.0f} s expected, from {ref.ranks} x {ref.generations} in {ref.wall:.0f} s"

    def run(self, ranks: int, generations: int, **kw: Any) -> Run:
        reason = self.skip_reason(ranks, generations)
        if reason is not None:
            if self.log:
                print(f"  propulate {ranks} x {generations:5d}: {reason}", file=self.log, flush=True)
            return Run("propulate", ranks, generations, reason=reason, **kw)
        run = launch(self.python, "propulate", ranks, generations, timeout=self.timeout, log=self.log, **kw)
        self.done.append(run)
        return run


def plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {"ranks": [1, 2, 4], "generations": [200, 1000], "extra": [(4, 500)], "idle_ranks": [2, 4],
                "idle_evals": 30, "ckpt": (4, 500)}
    return {"ranks": [1, 2, 4, 8], "generations": [500, 5000], "extra": [(4, 2000)], "idle_ranks": [2, 4, 8],
            "idle_evals": 100, "ckpt": (4, 2000)}


@dataclass
class Sources:
    """A snapshot of ``evohpo/`` that evohpo-side workers run from (first on their ``PYTHONPATH``)."""

    name: str  # how the report names it
    tree: Path
    sha: str  # content hash of its Python files


class Row(NamedTuple):
    """One setting's runs: evohpo (the current sources), Propulate, and the baseline's evohpo (with --baseline)."""

    evo: Run
    pro: Run | None
    base: Run | None = None


class Evohpo:
    """evohpo runs from the current sources and, with a baseline, from the baseline's too, one side's runs right
    after the other's; which side goes first alternates from call to call, so drifting load hits both alike."""

    def __init__(self, python: Path, current: Sources, baseline: Sources | None, timeout: float, log: Any) -> None:
        self.python, self.timeout, self.log = python, timeout, log
        self.sides = [("evohpo", current)] + ([("baseline", baseline)] if baseline else [])
        self.calls = 0

    def runs(self, ranks: int, generations: int, *variants: dict[str, Any]) -> dict[str, list[Run]]:
        """Per side, one run per ``variants`` entry (``launch`` keywords; none: one plain run), back to back."""
        sides = self.sides[::-1] if self.calls % 2 else self.sides
        self.calls += 1
        return {side: [launch(self.python, side, ranks, generations, tree=src.tree, timeout=self.timeout,
                              log=self.log, **kw) for kw in (variants or ({},))] for side, src in sides}

    def run(self, ranks: int, generations: int, **kw: Any) -> tuple[Run, Run | None]:
        """The current run and the baseline's (None without a baseline)."""
        out = self.runs(ranks, generations, kw)
        return out["evohpo"][0], out["baseline"][0] if "baseline" in out else None


def _sources(dest: Path, ref: str | None) -> Sources:
    """Snapshot the working tree (``ref`` None) or commit ``ref`` into ``dest``."""
    try:
        sha = snapshot_evohpo(dest, ref)
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"--baseline {ref}: git archive failed: {e.stderr.decode(errors='replace').strip()}") from None
    if ref is None:
        name = f"working tree at HEAD {git_head()}" + (" with uncommitted changes" if git_dirty() else "")
    else:
        commit = git_head(ref)
        name = ref if commit.startswith(ref) or ref.startswith(commit) else f"{ref} ({commit})"
    return Sources(name, dest, sha)


def driver(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="overhead-evohpo-") as tmp:
        current = _sources(Path(tmp) / "current", None)
        baseline = _sources(Path(tmp) / "baseline", args.baseline) if args.baseline else None
        measure(args, current, baseline)


def measure(args: argparse.Namespace, current: Sources, baseline: Sources | None) -> None:
    """Run every measurement, then print and write the report."""
    t_start = time.perf_counter()
    load_before = os.getloadavg()
    cfg = plan(args.quick)
    log = sys.stderr
    evo_py = Path(sys.executable)

    peers_python, peers_reason = None, None
    if args.no_propulate:
        peers_reason = "--no-propulate"
    else:
        import _peers

        print(f"peers' venv: {args.peers_venv}", file=log, flush=True)
        try:
            peers_python = _peers.ensure_venv(args.peers_venv, _peers.PROPULATE)
        except Exception as e:  # no PyPI, pip failure: report, keep the evohpo side
            peers_reason = f"peers' venv failed: {type(e).__name__}: {e}"[:200]
    prop = Propulate(peers_python, peers_reason, args.propulate_cap, args.timeout, log)
    evo = Evohpo(evo_py, current, baseline, args.timeout, log)

    # Zero-cost throughput: one table per evaluations-per-worker setting.
    settings: dict[int, list[int]] = {g: list(cfg["ranks"]) for g in cfg["generations"]}
    for r, g in cfg["extra"]:
        settings.setdefault(g, [])
        if r not in settings[g]:
            settings[g].append(r)
    order = sorted((r * g, r, g) for g, rs in settings.items() for r in rs)
    results: dict[tuple[int, int], Row] = {}
    print("zero-cost throughput:", file=log, flush=True)
    for _, r, g in order:  # increasing total, so Propulate's time estimates come from the biggest run so far
        cur, base = evo.run(r, g)
        results[(r, g)] = Row(cur, prop.run(r, g), base)

    print("idle fraction, 10-100 ms evaluations:", file=log, flush=True)
    idle: dict[int, Row] = {}
    for r in cfg["idle_ranks"]:
        n = cfg["idle_evals"]
        cur, base = evo.run(r, n, task="sleep")
        idle[r] = Row(cur, prop.run(r, n, task="sleep"), base)

    print("checkpoint on vs off:", file=log, flush=True)
    cr, cg = cfg["ckpt"]
    pairs: dict[str, list[tuple[Run, Run]]] = {}  # off then on, several times: the load drifts between runs
    for _ in range(CKPT_PAIRS):
        for side, (ck_off, ck_on) in evo.runs(cr, cg, {}, {"checkpoint": True}).items():
            if not ck_on.ok:
                ck_on.reason = f"n/a ({ck_on.reason})"
            pairs.setdefault(side, []).append((ck_off, ck_on))
    p_off = results[(cr, cg)].pro if (cr, cg) in results else None
    p_on = prop.run(cr, cg, checkpoint=True) if args.propulate_checkpoint else None

    elapsed = time.perf_counter() - t_start
    md = report(args, cfg, settings, results, idle, Checkpoint(pairs["evohpo"], p_off, p_on, pairs.get("baseline")),
                elapsed, load_before, evo_py, peers_python, current, baseline)
    out = write_report(md, args.out)
    print(f"wrote {out} ({elapsed:.0f} s in all)", file=log)


@dataclass
class Checkpoint:
    """The checkpoint off/on runs: evohpo's pairs, Propulate's off and on runs, the baseline's pairs."""

    pairs: list[tuple[Run, Run]]
    p_off: Run | None
    p_on: Run | None
    base_pairs: list[tuple[Run, Run]] | None = None


def median_pair(pairs: list[tuple[Run, Run]]) -> tuple[Run, Run, float | None, list[float]]:
    """The off/on pair with the median slowdown (off rate / on rate - 1), that slowdown and all measured ones."""
    measured = sorted((off.rate / on.rate - 1, k) for k, (off, on) in enumerate(pairs) if off.ok and on.ok)
    if not measured:
        return *pairs[0], None, []
    slow, k = measured[len(measured) // 2]
    return *pairs[k], slow, [x for x, _ in measured]


def _table(header: list[str], rows: list[list[str]], left: int = 0) -> list[str]:
    """A Markdown table, its first ``left`` columns left-aligned, the others right-aligned."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * left + "---:|" * (len(header) - left),
            *("| " + " | ".join(row) + " |" for row in rows)]


def _speed(a: Run | None, b: Run | None, digits: int = 1) -> str:
    return f"{a.rate / b.rate:.{digits}f}x" if a is not None and b is not None and a.ok and b.ok else "-"


def report(args: argparse.Namespace, cfg: dict[str, Any], settings: dict[int, list[int]],
           results: dict[tuple[int, int], Row], idle: dict[int, Row], ckpt: Checkpoint, elapsed: float,
           load_before: tuple[float, ...], evo_py: Path, peers_python: Path | None, current: Sources,
           baseline: Sources | None = None) -> str:
    """The Markdown report; with a baseline, its columns next to the current evohpo's."""
    b = baseline is not None
    lines = [f"# Optimizer overhead: evohpo vs Propulate{' (--quick)' if args.quick else ''}", ""]
    lines += [f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}; load average before {load_before[0]:.2f}, "
              f"after {os.getloadavg()[0]:.2f}; whole run {elapsed:.0f} s.",
              f"evohpo side: {current.name}, sources sha256 {current.sha} "
              f"({versions(evo_py, ['evohpo', 'mpi4py', 'mpich', 'numpy'])}).",
              f"Propulate side: {versions(peers_python, ['propulate', 'mpi4py', 'mpich', 'numpy'])}."
              if peers_python else "Propulate side: not available.",
              ""]
    if b:
        lines[-1:-1] = [f"Baseline: evohpo at {baseline.name}, sources sha256 {baseline.sha}, from a read-only "
                        "`git archive` (same venv, same worker); every evohpo measurement ran on both, one right "
                        "after the other (which went first alternating); current/baseline = the ratio of their "
                        "evals/s."]
    if load_before[0] > (os.cpu_count() or 1):
        lines += [f"**The machine was busy** (load average {load_before[0]:.1f} on {os.cpu_count()} cores before "
                  "the run): absolute rates are noisy; the two sides of a row ran back to back, so their ratio is "
                  "steadier.", ""]
    lines += ["Zero-cost objective: 5-D sphere (`evohpo.testing.functions`); evohpo `optimize(generations=G, seed=0)` "
              "with defaults; Propulate `Propulator` with tutorial defaults (pop_size = 2 x ranks, "
              "`get_default_propagator`), checkpoint writes off. evals/s = evaluations of all ranks / longest "
              "per-rank wall time of the optimize call. last/first 10% = mean gap between consecutive loss calls "
              "over a rank's last 10% / its first 10%, largest over ranks (1.0 = no slowdown as the search grows); "
              "after the slash the same with median gaps, which a rare long pause (another process, or CPython's "
              "full garbage collection, whose cost grows with the archive) does not move.",
              ""]
    ratio_head = "last/first 10% (mean / median)"
    for g in sorted(settings):
        header = ["ranks", "evals/worker", "evohpo evals/s", *(["baseline evals/s", "current/baseline"] if b else []),
                  "Propulate evals/s", "speedup", f"evohpo {ratio_head}", *([f"baseline {ratio_head}"] if b else []),
                  f"Propulate {ratio_head}"]
        rows = []
        for r in sorted(settings[g]):
            x = results[(r, g)]
            rows.append([str(r), f"{g:,}", _fmt_rate(x.evo),
                         *([_fmt_rate(x.base), _speed(x.evo, x.base, 2)] if b else []), _fmt_rate(x.pro),
                         _speed(x.evo, x.pro), _fmt_ratio(x.evo), *([_fmt_ratio(x.base)] if b else []),
                         _fmt_ratio(x.pro)])
        lines += [f"## {g:,} evaluations per worker", "", *_table(header, rows), ""]

    n = cfg["idle_evals"]
    header = ["ranks", "evals/worker", "evohpo idle", *(["baseline idle"] if b else []), "Propulate idle",
              "evohpo wall s", *(["baseline wall s"] if b else []), "Propulate wall s"]
    rows = [[str(r), str(n), _fmt_idle(x.evo), *([_fmt_idle(x.base)] if b else []), _fmt_idle(x.pro),
             _fmt_wall(x.evo), *([_fmt_wall(x.base)] if b else []), _fmt_wall(x.pro)] for r, x in sorted(idle.items())]
    lines += [f"## Idle fraction, random 10-100 ms evaluations ({n} per worker)", "",
              "1 - time inside the loss summed over ranks / (ranks x longest wall time of the optimize call); "
              "the same seeded sleep times on both sides. The same total budget: evohpo as "
              "`max_evaluations = ranks x evals/worker` (shared: a worker that runs out asks its peers for "
              "unstarted evaluations), Propulate as `generations` per worker (it has no total budget).", "",
              *_table(header, rows),
              "", "(a + b): a = idle between a rank's evaluations (the optimizer's own work), b = idle after its "
              "last evaluation (waiting for the slowest rank, and shutdown).",
              ""]

    ck_off, ck_on, slow, measured = median_pair(ckpt.pairs)
    if b:
        bk_off, bk_on, b_slow, b_measured = median_pair(ckpt.base_pairs)
    header = ["ranks x evals/worker", "evohpo off evals/s", "evohpo on evals/s", "evohpo slowdown",
              *(["baseline off evals/s", "baseline on evals/s", "baseline slowdown"] if b else []),
              "Propulate off evals/s", "Propulate on evals/s"]
    row = [f"{ck_off.ranks} x {ck_off.generations:,}", _fmt_rate(ck_off), _fmt_rate(ck_on),
           _fmt_pct(slow) if slow is not None else "n/a",
           *([_fmt_rate(bk_off), _fmt_rate(bk_on), _fmt_pct(b_slow) if b_slow is not None else "n/a"] if b else []),
           _fmt_rate(ckpt.p_off), _fmt_rate(ckpt.p_on)]
    lines += ["## Checkpoint on vs off, zero-cost objective", "",
              f"evohpo: `optimize(..., checkpoint=<fresh tmp dir>)` (per-rank append-only journals) vs no "
              f"checkpoint, run back to back, {len(ckpt.pairs)} times; the table shows the pair with the median "
              "slowdown (all pairs: " + (", ".join(_fmt_pct(x) for x in measured) or "none measured")
              + ("; baseline: " + (", ".join(_fmt_pct(x) for x in b_measured) or "none measured") if b else "")
              + "). Propulate: its pickle of the whole population, rewritten by the "
              "worker holding the dump token every generation, vs writes off.", "",
              *_table(header, [row], left=1), ""]

    lines += ["## Goals", ""]
    evo_runs = [(k, x.evo) for k, x in sorted(results.items()) if x.evo.ok]
    if evo_runs:
        worst_k, worst = max(evo_runs, key=lambda kv: kv[1].ratio)
        bad = [f"{r} x {g:,}" for (r, g), e in evo_runs if e.ratio > GOAL_RATIO]
        med = max(e.ratio_median for _, e in evo_runs)
        lines.append(f"- evohpo last/first 10% <= {GOAL_RATIO}: {_mark(not bad)} (worst {worst.ratio:.2f} at "
                     f"{worst_k[0]} x {worst_k[1]:,}" + (f"; over the goal at {', '.join(bad)}" if bad else "")
                     + f"; with median gaps at most {med:.2f})")
    cmp_r, cmp_g = cfg["extra"][0]
    x = results.get((cmp_r, cmp_g))
    if x is not None and x.evo.ok and x.pro is not None and x.pro.ok:
        sp = x.evo.rate / x.pro.rate
        lines.append(f"- >= {GOAL_SPEEDUP:.0f}x Propulate's throughput at {cmp_r} ranks x {cmp_g:,}: "
                     f"{_mark(sp >= GOAL_SPEEDUP)} ({sp:.1f}x: {x.evo.rate:,.0f} vs {x.pro.rate:,.0f} evals/s)")
    else:
        lines.append(f"- >= {GOAL_SPEEDUP:.0f}x Propulate's throughput at {cmp_r} x {cmp_g:,}: not measured")
    idles = [(r, x.evo.idle) for r, x in sorted(idle.items()) if x.evo.ok]
    if idles:
        worst_idle = max(v for _, v in idles)
        lines.append(f"- idle <= {_fmt_pct(GOAL_IDLE)} with 10-100 ms evaluations: {_mark(worst_idle <= GOAL_IDLE)} "
                     f"({', '.join(f'{r} ranks {_fmt_pct(v)}' for r, v in idles)})")
    if slow is not None:
        lines.append(f"- checkpoint on <= {_fmt_pct(GOAL_CKPT)} slower: {_mark(slow <= GOAL_CKPT)} "
                     f"({_fmt_pct(slow)})")
    else:
        lines.append(f"- checkpoint on <= {_fmt_pct(GOAL_CKPT)} slower: not measured: {ck_on.reason or ck_off.reason}")
    lines.append("")

    if b:
        lines += ["## Current vs baseline", "", *_versus(results, idle, slow, b_slow), ""]

    lines += ["## Runs", "", "Per run: longest per-rank wall time of the optimize call, subprocess time (startup "
              "included), mean gap between loss calls in the first and last 10% (worst rank).", ""]
    every = [x for row in results.values() for x in row] + [x for row in idle.values() for x in row]
    every += [x for pair in ckpt.pairs + (ckpt.base_pairs or []) for x in pair] + [ckpt.p_on]
    rows = []
    for x in every:
        if x is None or not x.ok:
            continue
        worst = max(x.per_rank, key=lambda s: s["ratio"])
        task = x.task + (" + checkpoint" if x.checkpoint else "")
        rows.append([x.side, f"{x.ranks} x {x.generations:,}", task, f"{x.evaluations:,}", f"{x.wall:.2f}",
                     f"{x.elapsed:.1f}", f"{1e3 * worst['first']:.3f}", f"{1e3 * worst['last']:.3f}"])
    lines += _table(["side", "ranks x evals/worker", "task", "evaluations", "wall s", "subprocess s", "first 10% ms",
                     "last 10% ms"], rows, left=2)
    lines.append("")
    return "\n".join(lines)


def _versus(results: dict[tuple[int, int], Row], idle: dict[int, Row], slow: float | None,
            b_slow: float | None) -> list[str]:
    """Summary lines of the current evohpo against the baseline."""
    ratios = [x.evo.rate / x.base.rate for x in results.values() if x.evo.ok and x.base is not None and x.base.ok]
    out = []
    if ratios:
        geo = math.exp(statistics.fmean(math.log(q) for q in ratios))
        out.append(f"- zero-cost throughput, current / baseline: geometric mean {geo:.2f}x over {len(ratios)} "
                   f"settings (from {min(ratios):.2f}x to {max(ratios):.2f}x)")
    for label, pick in (("current", lambda x: x.evo), ("baseline", lambda x: x.base)):
        runs = [pick(x) for x in results.values() if pick(x) is not None and pick(x).ok]
        if runs:
            out.append(f"- {label} last/first 10%: worst {max(r.ratio for r in runs):.2f} (mean gaps), "
                       f"{max(r.ratio_median for r in runs):.2f} (median gaps)")
    for label, pick in (("current", lambda x: x.evo), ("baseline", lambda x: x.base)):
        parts = [f"{r} ranks {_fmt_pct(pick(x).idle)}" for r, x in sorted(idle.items())
                 if pick(x) is not None and pick(x).ok]
        if parts:
            out.append(f"- {label} idle with 10-100 ms evaluations: {', '.join(parts)}")
    out.append(f"- checkpoint slowdown: current {_fmt_pct(slow) if slow is not None else 'n/a'}, baseline "
               f"{_fmt_pct(b_slow) if b_slow is not None else 'n/a'}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run")
    parser.add_argument("--out", default=str(HERE / "results" / "overhead.md"))
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per mpiexec run")
    parser.add_argument("--peers-venv", default=str(HERE / ".peers-venv"))
    parser.add_argument("--no-propulate", action="store_true", help="evohpo side only")
    parser.add_argument("--baseline", default=None, metavar="REF",
                        help="also run evohpo from git commit REF (read-only git archive), interleaved with the "
                        "current runs; the report shows both")
    parser.add_argument("--propulate-cap", type=int, default=16_000,
                        help="skip Propulate runs over this many evaluations in total (too slow)")
    parser.add_argument("--no-propulate-checkpoint", dest="propulate_checkpoint", action="store_false",
                        help="skip the Propulate checkpoint-on run")
    # worker mode (inside mpiexec)
    parser.add_argument("--worker", choices=["evohpo", "propulate"], help=argparse.SUPPRESS)
    parser.add_argument("--task", choices=["zero", "sleep"], default="zero", help=argparse.SUPPRESS)
    parser.add_argument("--generations", type=int, default=500, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile", default=None, help="worker mode: cProfile rank 0 into this file")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
