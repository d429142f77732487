"""The simulator against real MPI on this machine: predicted against measured idle time and throughput.

    .venv/bin/python bench/sim_validate.py [--quick] [--ranks 2,4,8,16] [--repeats 3]

For each number of ranks (and 2 islands at 8 ranks and more), ``mpiexec -n N python -m mpi4py bench/_sim_rank.py``
runs ``evohpo.optimize`` on the 5-D sphere whose loss sleeps 10-100 ms, each duration drawn as the simulator draws
it (``Durations("uniform", 0.055, 0.818)``, the rank's ``np.random.default_rng([seed, rank, 7])``, one draw per
evaluation); ``evohpo.sim.simulate`` runs the same search (same budget, seed, options, durations) in virtual time
with the measured cost model (``evohpo/sim/costs.json``) and ``cpu="measured"``. Both sides time the search from
the call of ``optimize`` (after a barrier, after an untimed warm-up search that does the lazy imports) to its
return. Idle = 1 - (time in the loss's sleep) / (ranks x wall), wall = the slowest rank's; throughput =
evaluations / wall. Every configuration runs ``--repeats`` times on each side; the tables show the median run.

Both sides use one snapshot of ``evohpo/`` (copied at the start into a temporary folder), so that edits made to the
tree meanwhile reach neither. Writes ``bench/results/sim_validation.md`` and ``bench/results/sim_validation.json``
(``--quick``: prints only); ``--from-json FILE`` writes the report again from saved numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _common import ROOT, cpu_model, kill, mpi_command, snapshot_evohpo, worker_env

HERE = Path(__file__).resolve().parent
RANK_SCRIPT = HERE / "_sim_rank.py"
COSTS = ROOT / "evohpo" / "sim" / "costs.json"
DURATIONS = ("uniform", 0.055, 0.818)  # 10 to 100 ms
GOAL_PP = 1.0  # agreement wanted, in percentage points of idle
SIM_TRIES = 5  # a simulation that reports a hang is run again (see SIM_HANGS)
SIM_HANGS: list[dict[str, Any]] = []  # the simulations that reported a hang, run again


# -- helpers ------------------------------------------------------------------------------------------------------

def cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def evohpo_version() -> str:
    """The commit of the tree and whether ``evohpo/`` differs from it (read-only git commands)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=30).stdout.strip() or "?"
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "evohpo"], cwd=ROOT, capture_output=True,
                               timeout=30).returncode != 0
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return f"commit {head}" + (" with uncommitted changes to evohpo/" if dirty else "")


def load_costs(wait: float, path: str | None = None) -> Any:
    """The cost model in ``path``; else the measured one, waiting up to ``wait`` seconds (polling every minute) for
    ``costs.json``."""
    from evohpo.sim import CostModel

    if path is not None:
        return CostModel.load(path)
    deadline = time.monotonic() + wait
    while not COSTS.is_file() and time.monotonic() < deadline:
        print(f"waiting for {COSTS} (bench/mpi_costs.py writes it) ...", file=sys.stderr, flush=True)
        time.sleep(min(60.0, max(0.0, deadline - time.monotonic())))
    if not COSTS.is_file():
        raise SystemExit(f"{COSTS} is missing: run `python bench/mpi_costs.py` first (or pass --wait-costs)")
    return CostModel.load(COSTS)


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median idle (the lower middle one of an even number)."""
    ordered = sorted(runs, key=lambda r: r["idle"])
    return ordered[(len(ordered) - 1) // 2]


# -- the real side ------------------------------------------------------------------------------------------------

def real_run(ranks: int, islands: int, cfg: dict[str, Any], env: dict[str, str], timeout: float,
             tmp: Path) -> dict[str, Any]:
    """One ``mpiexec -n ranks`` search; its measurements (``analyze_real``)."""
    out, err = tmp / f"real-{ranks}-{islands}.json", tmp / f"real-{ranks}-{islands}.err"
    out.unlink(missing_ok=True)
    job = {**cfg, "islands": islands, "max_evaluations": cfg["per_rank"] * ranks}
    cmd = mpi_command(Path(sys.executable), ranks, RANK_SCRIPT, json.dumps(job), str(out))
    with open(err, "w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=stderr, stderr=stderr, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill(proc)
            raise SystemExit(f"mpiexec -n {ranks} ran past {timeout:g} s; its output:\n{err.read_text()}") from None
    if rc != 0 or not out.is_file():
        raise SystemExit(f"mpiexec -n {ranks} failed with exit status {rc}; its output:\n{err.read_text()[-4000:]}")
    return analyze_real(json.loads(out.read_text(encoding="utf-8")))


def analyze_real(data: dict[str, Any]) -> dict[str, Any]:
    """Idle, its parts, throughput and the gaps between evaluations of one real run (every rank's record)."""
    recs = data["ranks"]
    n = len(recs)
    wall = max(r["end"] - r["start"] for r in recs)
    total = n * wall
    sleep = drawn = end_idle = runq = sleep_runq = 0.0
    gaps: list[float] = []
    gap_cpu = gap_runq = 0.0
    first = first_cpu = first_runq = end_cpu = end_runq = 0.0
    evaluations = 0
    for r in recs:
        ev = sorted(r["evals"])  # (start, end, drawn, cpu0, cpu1, runq0, runq1)
        s0, c0, q0 = r["start_stamp"]
        evaluations += len(ev)
        sleep += sum(e[1] - e[0] for e in ev)
        drawn += sum(e[2] for e in ev)
        sleep_runq += sum(e[6] - e[5] for e in ev)
        runq += r["runq"]
        end_idle += wall - (ev[-1][1] - s0 if ev else 0.0)
        if ev:
            first, first_cpu, first_runq = first + ev[0][0] - s0, first_cpu + ev[0][3] - c0, first_runq + ev[0][5] - q0
            end_cpu += c0 + r["cpu"] - ev[-1][4]
            end_runq += q0 + r["runq"] - ev[-1][6]
        for a, b in zip(ev, ev[1:]):
            gaps.append(b[0] - a[1])
            gap_cpu += b[3] - a[4]
            gap_runq += b[5] - a[6]
    util = sleep / total
    ng, ne = max(len(gaps), 1), max(evaluations, 1)
    return {
        "ranks": n, "evaluations": evaluations, "wall": wall, "throughput": evaluations / wall,
        "utilization": util, "idle": 1.0 - util, "idle_start": first / total, "idle_end": end_idle / total,
        "idle_between": 1.0 - util - (first + end_idle) / total,
        "overshoot": (sleep - drawn) / total, "drawn_utilization": drawn / total,
        "runq_idle": (runq - sleep_runq) / total, "runq_sleep": sleep_runq / total,
        "gap_ms": 1e3 * statistics.fmean(gaps) if gaps else 0.0, "gap_cpu_ms": 1e3 * gap_cpu / ng,
        "gap_runq_ms": 1e3 * gap_runq / ng, "gaps_runq_ms_per_rank": 1e3 * gap_runq / n,
        "sleep_runq_ms_per_rank": 1e3 * sleep_runq / n,
        "cpu_load": sum(r["process_cpu"] for r in recs) / wall,
        "first_gap_ms": 1e3 * first / n, "first_cpu_ms": 1e3 * first_cpu / n, "first_runq_ms": 1e3 * first_runq / n,
        "sleep_runq_ms": 1e3 * sleep_runq / ne,
        "end_wall_ms": 1e3 * end_idle / n, "end_cpu_ms": 1e3 * end_cpu / n, "end_runq_ms": 1e3 * end_runq / n,
        "cpu_per_evaluation_ms": 1e3 * sum(r["cpu"] for r in recs) / ne,
        "process_cpu_per_evaluation_ms": 1e3 * sum(r["process_cpu"] for r in recs) / ne,
        "start_skew_ms": 1e3 * (max(r["start"] for r in recs) - min(r["start"] for r in recs)),
        "per_rank_evaluations": [len(r["evals"]) for r in sorted(recs, key=lambda r: r["rank"])],
        "reason": recs[0]["reason"], "mpi": " ".join(data.get("mpi", "").split()),
    }


def calibrate(cfg: dict[str, Any], env: dict[str, str], timeout: float, tmp: Path, costs: Any) -> dict[str, Any]:
    """The optimizer's CPU between two evaluations on one process: real with sleeping evaluations, real with
    evaluations that return at once, and simulated (ms, medians)."""
    out = tmp / "calibrate.json"
    cmd = mpi_command(Path(sys.executable), 1, RANK_SCRIPT, json.dumps({**cfg, "calibrate": 2}), str(out))
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, timeout=timeout, capture_output=True)
    found = json.loads(out.read_text(encoding="utf-8"))
    sims = [sim_run(1, 1, cfg, costs)["gap_ms"] for _ in range(3)]
    found["simulated"] = statistics.median(sims)
    found["runs"]["simulated"] = sims
    return found


# -- the simulated side -------------------------------------------------------------------------------------------

def sim_run(ranks: int, islands: int, cfg: dict[str, Any], costs: Any, cpu: str | float = "measured") -> dict[str, Any]:
    """One simulated search; the same measurements as ``analyze_real`` where the simulator has them."""
    from evohpo.sim import Durations, SimulationError, simulate

    for attempt in range(SIM_TRIES):
        try:
            rep = simulate(ranks, islands, max_evaluations=cfg["per_rank"] * ranks,
                           durations=Durations(*cfg["durations"]), problem=cfg["problem"], dim=cfg["dim"],
                           costs=costs, cpu=cpu, seed=cfg["seed"], options=cfg["options"])
            break
        except SimulationError as e:  # Engine.block's race with the termination exchange (see the report)
            SIM_HANGS.append({"ranks": ranks, "islands": islands, "cpu": cpu, "error": str(e)})
            if attempt == SIM_TRIES - 1:
                raise
    by_rank: dict[int, list[tuple[float, float]]] = {}
    for rank, _, start, end, _ in rep.trace:
        by_rank.setdefault(rank, []).append((start, end))
    gaps, first = [], 0.0
    for ev in by_rank.values():
        ev.sort()
        first += ev[0][0]
        gaps += [b[0] - a[1] for a, b in zip(ev, ev[1:])]
    return {
        "ranks": ranks, "evaluations": rep.evaluations, "wall": rep.wall, "throughput": rep.evaluations / rep.wall,
        "utilization": rep.utilization, "idle": rep.idle, "idle_start": first / (ranks * rep.wall),
        "idle_end": rep.idle_end, "idle_between": rep.idle_between + rep.idle_receive - first / (ranks * rep.wall),
        "idle_receive": rep.idle_receive,
        "gap_ms": 1e3 * statistics.fmean(gaps) if gaps else 0.0, "first_gap_ms": 1e3 * first / ranks,
        "end_wall_ms": 1e3 * rep.idle_end * rep.wall,
        "cpu_per_evaluation_ms": 1e3 * rep.cpu_per_evaluation,
        "messages_per_evaluation": rep.messages_per_evaluation,
        "per_rank_evaluations": [len(by_rank.get(r, [])) for r in range(ranks)],
        "reason": rep.reason, "real_seconds": rep.real,
    }


# -- the report ---------------------------------------------------------------------------------------------------

def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def pp(x: float) -> str:
    return f"{100 * x:+.2f}"


def label(r: dict[str, Any]) -> str:
    return f"{r['ranks']}/{r['islands']}"


def explain(result: dict[str, Any]) -> list[str]:
    """Paragraphs on where measurement and prediction differ, from the numbers."""
    rows, ncores, cal = result["rows"], result["cores"], result["calibration"]
    mean = result["mean_duration"]

    def within(key: str) -> str:
        good = [label(r) for r in rows if abs(r[key]) <= GOAL_PP]
        bad = [label(r) for r in rows if abs(r[key]) > GOAL_PP]
        return f"within {GOAL_PP:g} pp: {', '.join(good) or 'none'}; not within: {', '.join(bad) or 'none'}"

    over = [r for r in rows if r["ranks"] > ncores]
    out = [f"Ranks/islands {within('diff_pp')}. With the real ranks' CPU given to the simulator: "
           f"{within('real_cpu_diff_pp')}. "
           + ("The measured idle is higher than predicted in every row. " if all(r["diff_pp"] > 0 for r in rows)
              else "") + "The parts:", ""]
    extra = [r["measured"]["gap_cpu_ms"] - r["predicted"]["gap_ms"] for r in rows]
    ratio = [r["measured"]["gap_cpu_ms"] / max(r["predicted"]["gap_ms"], 1e-9) for r in rows]
    cpu_rows = "; ".join(
        f"{label(r)}: {r['measured']['gap_cpu_ms']:.2f} ms real against {r['predicted']['gap_ms']:.2f} ms simulated, "
        f"{r['diff_pp']:+.2f} pp becoming {r['real_cpu_diff_pp']:+.2f} pp, the part between evaluations "
        f"{pct(r['measured']['idle_between'])} % measured against {pct(r['predicted']['idle_between'])} % "
        f"predicted and {pct(r['real_cpu']['idle_between'])} % with the real CPU" for r in rows)
    out.append(
        "1. **The optimizer's CPU between two evaluations** (every row). The simulator measures the optimizer's "
        "code where it runs it: all workers back to back in one process, warm, and adds the cost model's `wake` "
        "per evaluation (measured by `bench/mpi_costs.py` on one process). A real rank runs it right after a "
        f"sleep of {1e3 * mean:.0f} ms on average, cold: on one process without peers the same code takes "
        f"{cal['sleeping']:.3f} ms of CPU between two sleeping evaluations and {cal['at_once']:.3f} ms between "
        f"evaluations that return at once ({cal['simulated']:.3f} ms simulated), "
        f"{cal['sleeping'] / max(cal['at_once'], 1e-9):.1f}x. CPU per gap, the difference of idle before and after "
        f"running the simulator with `cpu=` that real CPU per evaluation, and the idle between evaluations: "
        f"{cpu_rows}. The real ranks' extra CPU per gap is {min(extra):.2f}-{max(extra):.2f} ms, "
        f"{min(ratio):.1f}-{max(ratio):.1f}x the simulated: closer to a constant per wake-up than to a factor, so "
        "`simulate(cpu_scale=...)` would not fit every row with one value.")
    left = [r for r in over if abs(r["real_cpu_diff_pp"]) > GOAL_PP]
    if over:
        runq_rows = "; ".join(
            f"{label(r)}: {pct(r['measured']['runq_idle'])} % of the ranks' time (per rank "
            f"{r['measured']['first_runq_ms']:.0f} ms at the start, {r['measured']['gaps_runq_ms_per_rank']:.0f} ms in "
            f"the gaps, {r['measured']['end_runq_ms']:.0f} ms at the end; and "
            f"{r['measured']['sleep_runq_ms_per_rank']:.0f} ms after sleeps, counted as evaluating), the ranks' own "
            f"CPU demand {r['measured']['cpu_load']:.2f} cores, {r['real_cpu_diff_pp']:+.2f} pp left with the real "
            "CPU" for r in over)
        out.append(
            f"2. **Waiting for a core** (rows {', '.join(label(r) for r in over)}: more ranks than the machine's "
            f"{ncores} cores, which are shared with other work besides, load average {result['load_before']:.1f}-"
            f"{result['load_after']:.1f}). The simulator gives each worker a core of its own. "
            "`/proc/thread-self/schedstat` counts the time a rank's main thread was runnable but not running; outside "
            f"the sleeps it was: {runq_rows}. A rank waits for a core each time it wakes up (after an evaluation's "
            "sleep, and at the end after each polling pause of `Transport.wait`) and finds both cores taken; the "
            "more ranks, the more wake-ups meet, most densely at the start and the end, where all ranks are awake "
            "together. A delay on one rank costs the others too: the slowest rank sets the wall, so the ranks that "
            "finish first wait for it (the part at the end)."
            + (f" Where more than {GOAL_PP:g} pp is left once the CPU is right ({', '.join(map(label, left))}), what "
               "is left is of the size of this waiting (within a factor of 2)." if left and all(
                   0.5 <= r["real_cpu_diff_pp"] / max(100 * r["measured"]["runq_idle"], 1e-9) <= 2 for r in left)
               else ""))
    start = "; ".join(f"{label(r)}: {r['measured']['first_gap_ms']:.1f} ms ({r['measured']['first_cpu_ms']:.1f} ms "
                      f"CPU, {r['measured']['first_runq_ms']:.1f} ms waiting for a core) against "
                      f"{r['predicted']['first_gap_ms']:.1f} ms, "
                      f"{pp(r['measured']['idle_start'] - r['predicted']['idle_start'])} pp" for r in rows)
    apart = max(abs(a - b) for r in rows
                for a, b in zip(r["measured"]["per_rank_evaluations"], r["predicted"]["per_rank_evaluations"]))
    end = "; ".join(f"{label(r)}: {r['measured']['end_wall_ms']:.0f} ms ({r['measured']['end_runq_ms']:.0f} ms "
                    f"waiting for a core) against {r['predicted']['end_wall_ms']:.0f} ms, "
                    f"{pp(r['measured']['idle_end'] - r['predicted']['idle_end'])} pp" for r in rows)
    out.append(
        "3. **Fixed costs at the start and the end of a search.** From the call of `optimize` to the first "
        f"evaluation: {start}. Not modelled there: the `Dup` of the communicator (a collective), starting the "
        "stop-listener thread, the first poll of MPI. From each rank's last evaluation to the slowest rank's return "
        "(the wait for the last evaluations of the shared budget included, which the simulator reproduces: a "
        f"rank's number of evaluations differs between the two sides by at most {apart} in these rows): {end}. "
        "Besides waiting for a core, the "
        "real end pays the polling pauses of `Transport.wait` (0.1 ms doubling to 1 ms), the blocking reduction "
        "of the result and `comm.Free`. These are costs per search, not per evaluation: here they weigh on runs "
        f"of {rows[0]['measured']['wall']:.1f} s; in a search of minutes-long evaluations they vanish.")
    out.append(
        "4. **The sleeps run long.** `time.sleep` returned later than asked (the sleep overshoot column: timer "
        "slack, the wake-up, and with more ranks than cores the wait for a core after it, the gaps table's "
        "'sleep end late' column). The measured idle counts that as evaluating (time in the loss); counting only "
        "the drawn durations as evaluating would raise the measured idle by the overshoot column and widen every "
        "difference.")
    spread = "; ".join(f"{label(r)}: measured {min(x['idle'] for x in r['measured_runs']) * 100:.2f}-"
                       f"{max(x['idle'] for x in r['measured_runs']) * 100:.2f} %, predicted "
                       f"{min(x['idle'] for x in r['predicted_runs']) * 100:.2f}-"
                       f"{max(x['idle'] for x in r['predicted_runs']) * 100:.2f} %" for r in rows)
    out.append(f"5. **Noise.** Idle over the {result['repeats']} run(s) of each row: {spread}. The simulator varies "
               "too: with `cpu=\"measured\"` its charged CPU is measured anew in each run on this shared machine, "
               "and a different CPU time can reorder the end of the shared budget (which rank runs the last "
               "evaluations).")
    hangs = result["sim_hangs"]
    out.append(
        "6. **A simulator bug met on the way, fixed meanwhile** (commit 219ce35; this run's simulations: "
        f"{len(hangs)} reported a hang, and the bench would run such a simulation again). Before it, "
        "`Engine.block` woke a blocking worker at the end of the termination exchange only if "
        "`self.closed_at > self.now()`; under `cpu=\"measured\"` `now()` advances with real time between the "
        "worker's last `finished()` check (in `SimTransport.wait`) and that comparison, so when `closed_at` fell "
        "in between (a window of microseconds) the worker parked with nothing to wake it and the run ended in "
        "`SimulationError: N simulated workers wait forever`, the others waiting in the final collective. Seen "
        "on this machine with that engine: 2 of 207 simulations of 16 workers x 10 evaluations with this cost "
        "model, 83 of 1569 of 2 workers x 30 with a hand-made model whose collective takes 20 µs. 219ce35 wakes "
        "the worker at `closed_at` whenever it is set (at once if it passed); with it, 0 of 2160 of the latter.")
    return out


def markdown(result: dict[str, Any]) -> str:
    """The report."""
    rows, c = result["rows"], result["costs"]
    head = ["| ranks | islands | evaluations | measured idle % | predicted idle % | difference pp | measured eval/s "
            "| predicted eval/s | eval/s difference % | measured idle % of the runs | predicted idle % of the runs "
            "| predicted with the real CPU: idle % | its difference pp |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|"]
    for r in rows:
        m, p, f = r["measured"], r["predicted"], r["real_cpu"]
        reps = ", ".join(pct(x["idle"]) for x in r["measured_runs"])
        preps = ", ".join(pct(x["idle"]) for x in r["predicted_runs"])
        head.append(f"| {r['ranks']} | {r['islands']} | {m['evaluations']} | {pct(m['idle'])} | {pct(p['idle'])} | "
                    f"{r['diff_pp']:+.2f} | {m['throughput']:.1f} | {p['throughput']:.1f} | "
                    f"{100 * (m['throughput'] / p['throughput'] - 1):+.1f} | {reps} | {preps} | "
                    f"{pct(f['idle'])} | {r['real_cpu_diff_pp']:+.2f} |")
    parts = ["| ranks | islands | side | idle % | at the start % | between evaluations % | at the end % | "
             "waiting for a core % | sleep overshoot % | wall s |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        m, p = r["measured"], r["predicted"]
        parts.append(f"| {r['ranks']} | {r['islands']} | measured | {pct(m['idle'])} | {pct(m['idle_start'])} | "
                     f"{pct(m['idle_between'])} | {pct(m['idle_end'])} | {pct(m['runq_idle'])} | "
                     f"{pct(m['overshoot'])} | {m['wall']:.3f} |")
        parts.append(f"| | | predicted | {pct(p['idle'])} | {pct(p['idle_start'])} | {pct(p['idle_between'])} "
                     f"(receive {pct(p['idle_receive'])}) | {pct(p['idle_end'])} | | | {p['wall']:.3f} |")
        f = r["real_cpu"]
        parts.append(f"| | | predicted, real CPU | {pct(f['idle'])} | {pct(f['idle_start'])} | "
                     f"{pct(f['idle_between'])} | {pct(f['idle_end'])} | | | {f['wall']:.3f} |")
    gaps = ["| ranks | islands | gap ms measured | of it CPU | of it waiting for a core | gap ms predicted | CPU "
            "ms/evaluation over `optimize` measured | predicted | sleep end late for a core ms | first gap ms "
            "measured / predicted | end phase ms/rank measured / predicted | start skew ms |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|"]
    for r in rows:
        m, p = r["measured"], r["predicted"]
        gaps.append(f"| {r['ranks']} | {r['islands']} | {m['gap_ms']:.3f} | {m['gap_cpu_ms']:.3f} | "
                    f"{m['gap_runq_ms']:.3f} | {p['gap_ms']:.3f} | {m['cpu_per_evaluation_ms']:.3f} | "
                    f"{p['cpu_per_evaluation_ms']:.3f} | {m['sleep_runq_ms']:.3f} | {m['first_gap_ms']:.1f} / "
                    f"{p['first_gap_ms']:.1f} | {m['end_wall_ms']:.1f} / {p['end_wall_ms']:.1f} | "
                    f"{m['start_skew_ms']:.2f} |")
    where = Path(result["costs_file"]["path"])
    where = where.relative_to(ROOT) if where.is_relative_to(ROOT) else where
    model = (f"latency {c['latency'] * 1e6:.2f} µs, bandwidth {c['bandwidth'] / 1e9:.2f} GB/s, serialize "
             f"{c['serialize'] * 1e6:.2f} µs + {c['serialize_per_byte'] * 1e9:.3f} ns/B, post {c['post'] * 1e6:.2f} "
             f"µs, receive {c['receive'] * 1e6:.2f} µs + {c['receive_per_byte'] * 1e9:.3f} ns/B, empty poll "
             f"{c['empty_poll'] * 1e6:.2f} µs, collective {c['collective'] * 1e6:.2f} µs per stage, wake "
             f"{c.get('wake', 0.0) * 1e3:.3f} ms per evaluation")
    md = [
        "# The simulator against real MPI", "",
        f"Written by `{result['command']}` on {result['date']} in {result['elapsed']:.0f} s; load average "
        f"{result['load_before']:.2f} before and {result['load_after']:.2f} after (the machine is shared with other "
        "work).", "",
        f"Machine: {result['machine']}; {result['mpi']}. evohpo: {result.get('evohpo', '?')} (one snapshot for "
        "both sides).", "",
        f"Cost model: `{where}` (written {result['costs_file']['modified']}; measured on "
        f"{c.get('machine') or 'an unnamed machine'}): {model}.", "",
        f"Search: `evohpo.optimize` on the 5-D sphere, {result['per_rank']} evaluations per rank "
        f"(`max_evaluations` = {result['per_rank']} x ranks, shared among the ranks), seed {result['seed']}, options "
        f"`{json.dumps(result['options'])}` (the default propagator), islands=2 also at 8 ranks and more; every "
        f"evaluation sleeps a duration drawn as the simulator draws it: `Durations{tuple(result['durations'])}` "
        "(10-100 ms, mean 55 ms), the rank's `np.random.default_rng([seed, rank, 7])`, one draw per evaluation. "
        f"Measured: `mpiexec -n N python -m mpi4py bench/_sim_rank.py`, {result['repeats']} run(s) per row; "
        f"predicted: `simulate(N, islands, cpu=\"measured\", ...)` with the same arguments, {result['repeats']} "
        "run(s). "
        "Each side's row is its run with the median idle. Both time `optimize` from its call to its return (the "
        "real ranks after a barrier and an untimed warm-up search on `COMM_SELF` that does the lazy imports, the "
        "simulator after a warm-up simulation); wall = the slowest rank's. Measured idle = 1 - (time in the "
        "loss's `time.sleep`) / (ranks x wall), throughput = evaluations / wall.", "",
        "## Idle and throughput", "",
        "Difference = measured - predicted idle, in percentage points. The last two columns: the simulator run "
        "again with `cpu=` the real ranks' mean CPU time between two evaluations (from the same real run, a "
        "constant per evaluation) instead of its own measurement: what is left of the difference once the "
        "optimizer's CPU is right.", "", *head, "",
        "## Where the idle time goes", "",
        "Shares of ranks x wall. At the start: from the call of `optimize` to each rank's first evaluation; at the "
        "end: from each rank's last evaluation to the slowest rank's return (waiting for the last evaluations of "
        "the shared budget, termination, the final reduction); between evaluations: the rest (the optimizer's CPU, "
        "sends, receives; the simulator's modelled receive cost in brackets); predicted, real CPU: the simulation with "
        "`cpu=` the real CPU per gap (no CPU at the start and the end then). Waiting for a core: the time the "
        "ranks' main threads were runnable but not running outside their sleeps, wherever it fell "
        "(`/proc/thread-self/schedstat`). Sleep overshoot: how much longer `time.sleep` took than drawn, counted "
        "as evaluating (the simulator sleeps exactly).", "", *parts, "",
        "## Gaps between evaluations", "",
        "Per rank, the mean over consecutive evaluations: the wall time from one evaluation's end to the next one's "
        "start, the main thread's CPU time in it (`time.thread_time`) and its time waiting for a core; CPU per "
        "evaluation over `optimize`: the main thread's CPU over the whole call / evaluations (measured) against "
        "the simulator's charged CPU per evaluation; sleep end late: mean time a sleep's end waited for a core; "
        "first gap: from the call of `optimize` to the first evaluation; end phase: from the last evaluation to the "
        "slowest rank's return; start skew: how far apart the ranks left the barrier.", "", *gaps, "",
        "## The optimizer's CPU: warm in the simulator, cold on a real rank", "",
    ]
    cal = result["calibration"]
    md += [
        f"One process, no peers (`mpiexec -n 1`, `optimize` on `COMM_SELF`, {result['per_rank']} evaluations, the "
        "median over the gaps, 2 runs each): the main thread's CPU between two evaluations is "
        f"{cal['sleeping']:.3f} ms when the evaluations sleep the drawn 10-100 ms and {cal['at_once']:.3f} ms when "
        f"they return at once; `simulate(1, ...)` charges {cal['simulated']:.3f} ms between two evaluations (3 "
        f"runs). The same Python code runs {cal['sleeping'] / max(cal['at_once'], 1e-9):.1f}x slower after a "
        "sleep: while a rank sleeps, other processes take over its caches, branch predictors and TLB entries (and "
        "an idle core may have to come back to speed).", "",
        "## Why they differ", "", *explain(result), "",
    ]
    return "\n".join(md) + "\n"


# -- driver -------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    """Run the real and the simulated searches, print and write the report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 and 4 ranks, 1 repeat, 30 evaluations per rank")
    p.add_argument("--ranks", help="comma-separated rank counts (default 2,4,8,16)")
    p.add_argument("--repeats", type=int, help="runs per configuration and side (default 3; --quick 1)")
    p.add_argument("--per-rank", type=int, help="evaluations per rank (default 60; --quick 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per mpiexec run")
    p.add_argument("--wait-costs", type=float, default=1200.0, help="seconds to wait for evohpo/sim/costs.json")
    p.add_argument("--costs", help="a cost model JSON instead of evohpo/sim/costs.json")
    p.add_argument("--from-json", help="only write the report again from the numbers of an earlier run")
    p.add_argument("--out-md", help="the report (default bench/results/sim_validation.md; --quick: none)")
    p.add_argument("--out-json", help="the numbers (default bench/results/sim_validation.json; --quick: none)")
    args = p.parse_args(argv)
    ranks = [int(x) for x in args.ranks.split(",")] if args.ranks else ([2, 4] if args.quick else [2, 4, 8, 16])
    repeats = args.repeats or (1 if args.quick else 3)
    per_rank = args.per_rank or (30 if args.quick else 60)
    configs = [(n, 1) for n in ranks] + [(n, 2) for n in ranks if n >= 8]
    if not args.quick:
        args.out_md = args.out_md or str(ROOT / "bench" / "results" / "sim_validation.md")
        args.out_json = args.out_json or str(ROOT / "bench" / "results" / "sim_validation.json")
    if args.from_json:
        md = markdown(json.loads(Path(args.from_json).read_text(encoding="utf-8")))
        print(md)
        if args.out_md:
            Path(args.out_md).write_text(md, encoding="utf-8")
            print(f"wrote {args.out_md}", file=sys.stderr)
        return
    command = "python bench/sim_validate.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))

    with tempfile.TemporaryDirectory(prefix="sim-validate-") as tmp_name:
        tmp = Path(tmp_name)
        snap = tmp / "src"
        version = evohpo_version()
        snapshot_evohpo(snap, None)
        sys.path.insert(0, str(snap))  # the simulator runs the same snapshot as the ranks
        costs = load_costs(args.wait_costs, args.costs)
        from evohpo.sim import Durations

        durations = asdict(Durations(*DURATIONS))
        cfg = {"problem": "sphere", "dim": 5, "durations": list(durations.values()), "seed": args.seed,
               "per_rank": per_rank, "warmup": 30, "options": {"progress_interval": 5}}
        env = worker_env(snap)
        t0, load_before = time.perf_counter(), os.getloadavg()[0]
        sim_run(2, 1, {**cfg, "per_rank": 20}, costs)  # warm-up: lazy imports, first calls
        real: dict[tuple[int, int], list[dict[str, Any]]] = {c: [] for c in configs}
        sim: dict[tuple[int, int], list[dict[str, Any]]] = {c: [] for c in configs}
        fixed: dict[tuple[int, int], list[dict[str, Any]]] = {c: [] for c in configs}
        cal = calibrate(cfg, env, args.timeout, tmp, costs)
        print(f"one process: {cal['sleeping']:.3f} ms CPU between sleeping evaluations, {cal['at_once']:.3f} ms "
              f"between instant ones, {cal['simulated']:.3f} ms simulated", file=sys.stderr, flush=True)
        for rep in range(repeats):  # interleaved, so that a noisy minute hits every configuration alike
            for n, isl in configs:
                m = real_run(n, isl, cfg, env, args.timeout, tmp)
                s = sim_run(n, isl, cfg, costs)
                f = sim_run(n, isl, cfg, costs, cpu=m["gap_cpu_ms"] * 1e-3)
                real[(n, isl)].append(m)
                sim[(n, isl)].append(s)
                fixed[(n, isl)].append(f)
                print(f"[{rep + 1}/{repeats}] {n:2d} ranks {isl} island(s): idle measured {pct(m['idle'])} % "
                      f"predicted {pct(s['idle'])} % (with the real CPU {pct(f['idle'])} %); eval/s "
                      f"{m['throughput']:.1f} / {s['throughput']:.1f}", file=sys.stderr, flush=True)
        elapsed, load_after = time.perf_counter() - t0, os.getloadavg()[0]

    rows = []
    for n, isl in configs:
        m, s, f = median_run(real[(n, isl)]), median_run(sim[(n, isl)]), median_run(fixed[(n, isl)])
        rows.append({"ranks": n, "islands": isl, "max_evaluations": per_rank * n, "measured": m, "predicted": s,
                     "diff_pp": 100 * (m["idle"] - s["idle"]), "real_cpu": f, "real_cpu_diff_pp":
                     100 * (m["idle"] - f["idle"]), "measured_runs": real[(n, isl)], "predicted_runs": sim[(n, isl)],
                     "real_cpu_runs": fixed[(n, isl)]})
    import mpi4py
    import numpy

    result = {
        "command": command, "date": time.strftime("%Y-%m-%d %H:%M"), "elapsed": elapsed,
        "load_before": load_before, "load_after": load_after, "cores": cores(),
        "machine": (f"{platform.system()} {platform.release()} {platform.machine()}, {cpu_model()}, {cores()} "
                    f"cores; Python {platform.python_version()}, numpy {numpy.__version__}, mpi4py "
                    f"{mpi4py.__version__}"),
        "evohpo": version, "mpi": rows[0]["measured"]["mpi"] if rows else "",
        "costs": {k: v for k, v in costs.to_dict().items() if k != "rows"},
        "per_rank": per_rank, "repeats": repeats, "seed": args.seed, "options": cfg["options"],
        "durations": cfg["durations"], "mean_duration": durations["median"],
        "goal_pp": GOAL_PP, "calibration": cal, "sim_hangs": SIM_HANGS,
        "costs_file": {"path": str(args.costs or COSTS), "modified": time.strftime(
            "%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(args.costs or COSTS)))}, "rows": rows,
    }
    md = markdown(result)
    print(md)
    for path, text in ((args.out_md, md), (args.out_json, json.dumps(result, indent=1) + "\n")):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
            print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
