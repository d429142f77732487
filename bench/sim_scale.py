"""evohpo on 64 to 16,384 simulated workers (``evohpo.sim``): utilization, where the idle time goes, messages and
the optimizer's CPU per evaluation, for islands of 8 to 1,024 workers and evaluations of median 10 s and 600 s;
then solution quality at equal evaluations for three island sizes.

    python bench/sim_scale.py            # the tables in bench/results/sim-scale.md (+ .json, + the figure)
    python bench/sim_scale.py --quick    # a small run (seconds)

Every row runs the real ``optimize`` on every simulated worker: the optimizer's CPU time is measured on this
machine (its thread's CPU time), messages cost what ``evohpo/sim/costs.json`` (measured with MPI here) says.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from evohpo.sim import CostModel, Durations, simulate
from evohpo.testing import functions

OUT = Path(__file__).parent / "results"
SPREAD = 0.5  # lognormal: the slowest of 100 evaluations takes ~3x the median, of 10,000 ~7x
# (workers, workers per island, evaluations per worker): what one core simulates in minutes (a worker handles every
# result of its island: ~45 us each, so the simulator's work per evaluation grows with the island)
FULL = [(64, 8, 16), (256, 8, 16), (1024, 8, 8), (4096, 8, 6), (16384, 8, 3),
        (64, 64, 16), (256, 64, 8), (1024, 64, 4), (4096, 64, 2), (16384, 64, 2),
        (1024, 1024, 2)]
QUICK = [(64, 8, 4), (256, 8, 2), (64, 64, 2)]
LONG = (4096, 8, 100_000, 60.0)  # 100,000 evaluations on 4,096 workers, median 60 s: the utilization and speed goals
PROBLEMS = ["sphere", "rosenbrock", "rastrigin", "rot_ellipsoid"]


def scale_rows(configs: list[tuple[int, int, int]], medians: list[float], costs: CostModel) -> list[dict[str, Any]]:
    rows = []
    for workers, size, per in configs:
        for median in medians:
            r = simulate(workers, workers // size, max_evaluations=per * workers, costs=costs, seed=1,
                         durations=Durations("lognormal", median, SPREAD), options={"propagator": "ga"})
            row = {"workers": workers, "island": size, "median_s": median, "per_worker": per, **r.to_dict(False),
                   "loop_utilization": 1.0 - r.idle_between - r.idle_receive}
            rows.append(row)
            print(f"{workers:6d} workers, islands of {size:4d}, median {median:4g} s: utilization "
                  f"{r.utilization:.2%} (loop {row['loop_utilization']:.3%}), {r.messages_per_evaluation:.1f} msgs "
                  f"and {r.cpu_per_evaluation * 1e3:.2f} ms CPU per evaluation; simulated in {r.real:.0f} s",
                  flush=True)
    return rows


def long_row(costs: CostModel, quick: bool) -> dict[str, Any]:
    workers, size, total, median = (256, 8, 5000, 60.0) if quick else LONG
    r = simulate(workers, workers // size, max_evaluations=total, costs=costs, seed=2,
                 durations=Durations("lognormal", median, SPREAD), options={"propagator": "ga"})
    print(f"long: {workers} workers, {total:,} evaluations, median {median:g} s: utilization {r.utilization:.2%}, "
          f"simulated in {r.real:.0f} s", flush=True)
    return {"workers": workers, "island": size, "median_s": median, "per_worker": round(total / workers, 1),
            **r.to_dict(False), "loop_utilization": 1.0 - r.idle_between - r.idle_receive}


def quality_rows(workers: int, sizes: list[int], seeds: int, per: int, costs: CostModel) -> list[dict[str, Any]]:
    """Median final regret at equal evaluations, by island size (the same seeds and durations for each)."""
    rows = []
    for name in PROBLEMS:
        problem = functions.get(name, 5)
        for size in sizes:
            regrets = []
            for seed in range(seeds):
                r = simulate(workers, workers // size, max_evaluations=per * workers, costs=costs, seed=seed,
                             problem=name, dim=5, durations=Durations("lognormal", 60, SPREAD), cpu=1e-3)
                regrets.append(problem.regret(r.best) if r.best is not None else math.inf)
            rows.append({"problem": name, "island": size, "median_regret": statistics.median(regrets),
                         "regrets": regrets})
            print(f"quality {name:14s} islands of {size:4d}: median regret {statistics.median(regrets):.4g}",
                  flush=True)
    return rows


def render(rows: list[dict[str, Any]], long: dict[str, Any], quality: list[dict[str, Any]], costs: CostModel,
           command: str, quality_setup: str) -> str:
    lines = [
        "# evohpo on thousands of simulated workers", "",
        f"Written by `{command}` ({time.strftime('%Y-%m-%d')}, {platform.python_implementation()} "
        f"{platform.python_version()}). Each row runs the real `optimize` on every simulated worker (`evohpo.sim`):"
        " the optimizer's CPU is measured here (thread CPU time), each message costs what the MPI cost model says "
        f"({_model(costs)}). Evaluations: lognormal times (sigma {SPREAD}), 5-D sphere, "
        "`propagator=\"ga\"`, a shared `max_evaluations` of the given number per worker.", "",
        "*utilization*: the share of all workers' time spent evaluating, over the whole run; *end*: the share spent "
        "after a worker's last evaluation until the last worker finished (the last evaluations straggling: it shrinks "
        "as 1/evaluations per worker, whatever the scheduler); *loop*: 1 - (between + receive), what the worker loop "
        "itself costs, the part that would limit a long run.", "",
        "| workers | island | median | evals/worker | utilization | end | between | receive | loop | msgs/eval | "
        "bytes/eval | CPU/eval | simulated in |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows + [long]:
        lines.append(
            f"| {r['workers']:,} | {r['island']} | {r['median_s']:g} s | {r['per_worker']} | {r['utilization']:.2%} "
            f"| {r['idle_end']:.2%} | {r['idle_between']:.4%} | {r['idle_receive']:.4%} | "
            f"{r['loop_utilization']:.3%} | {r['messages_per_evaluation']:.1f} | {r['bytes_per_evaluation']:,.0f} | "
            f"{r['cpu_per_evaluation'] * 1e3:.2f} ms | {r['real']:.0f} s |")
    lines += ["", f"Solution quality at equal evaluations ({quality_setup}): median final regret over seeds.", "",
              "| problem | " + " | ".join(f"islands of {s}" for s in sorted({q['island'] for q in quality})) + " |",
              "|---|" + "---:|" * len({q['island'] for q in quality})]
    for name in dict.fromkeys(q["problem"] for q in quality):
        cells = [f"{q['median_regret']:.3g}" for q in sorted((q for q in quality if q["problem"] == name),
                                                               key=lambda q: q["island"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _model(c: CostModel) -> str:
    return (f"`evohpo/sim/costs.json`: latency {c.latency * 1e6:.2f} µs, receive {c.receive * 1e6:.2f} µs + "
            f"{c.receive_per_byte * 1e9:.1f} ns/B, post {c.post * 1e6:.2f} µs, wake {c.wake * 1e3:.3f} ms per "
            f"evaluation; measured on {c.machine}")


def figure(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for median, marker in ((10.0, "o"), (600.0, "s")):
        for size in sorted({r["island"] for r in rows}):
            pts = sorted((r["workers"], r) for r in rows if r["island"] == size and r["median_s"] == median)
            if not pts:
                continue
            ws = [w for w, _ in pts]
            axes[0].plot(ws, [100 * (1 - r["loop_utilization"]) for _, r in pts], marker=marker,
                         label=f"islands of {size}, median {median:g} s")
            axes[1].plot(ws, [r["cpu_per_evaluation"] * 1e3 for _, r in pts], marker=marker,
                         label=f"islands of {size}, median {median:g} s")
    for ax, title in ((axes[0], "loop idle (between + receive), %"), (axes[1], "optimizer CPU per evaluation, ms")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("simulated workers")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small run, for a check (seconds)")
    args = ap.parse_args()
    costs = CostModel.load()
    configs, medians = (QUICK, [10.0]) if args.quick else (FULL, [10.0, 600.0])
    rows = scale_rows(configs, medians, costs)
    long = long_row(costs, args.quick)
    workers, sizes, seeds, per = (32, [32, 8], 2, 4) if args.quick else (128, [128, 64, 8], 5, 8)
    quality = quality_rows(workers, sizes, seeds, per, costs)
    setup = f"{workers} workers, {per} evaluations each, {seeds} seeds, 5-D, default strategy"
    command = "python bench/sim_scale.py" + (" --quick" if args.quick else "")
    stem = "sim-scale-quick" if args.quick else "sim-scale"
    OUT.mkdir(exist_ok=True)
    (OUT / f"{stem}.md").write_text(render(rows, long, quality, costs, command, setup))
    (OUT / f"{stem}.json").write_text(json.dumps({"rows": rows, "long": long, "quality": quality}, indent=1))
    figure(rows, OUT / f"{stem}.png")
    print(f"wrote {OUT / stem}.md, .json, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
