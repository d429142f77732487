"""Cost of one CMA-ES step of a worker (its ask, and the island's results it takes in) in 20-D, along a long search.

    python bench/cma_step.py [--steps 20000] [--workers 4]

One worker's ``CMAES`` strategy, joined to an island of ``--workers`` (island order, the larger population), on a
shifted 20-D sphere in [-5, 5]^20. Per step the worker asks one child and takes in ``--workers`` results: its own
and one of each peer, in the order they ended. The peers' children come from a second ``CMAES`` fed the same
results (in island order it keeps the same distribution), untimed. Time per step over blocks of 200 steps at
several points of the search, the fastest of the block's repeats. Goal: below 200 µs in 20-D, flat along the
search (restarts double the population; the update is O(n^2) per result either way).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import write_report

from evohpo import Float, Individual
from evohpo.core.cma import CMAES

DIMS = 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--block", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cma-step.md")
    args = ap.parse_args()
    space = {f"x{i}": Float(-5.0, 5.0) for i in range(DIMS)}
    shift = np.random.default_rng(1).uniform(-3, 3, DIMS)
    ranks = list(range(args.workers))
    worker, shadow = CMAES(space, 8), CMAES(space, 8)
    for cma in (worker, shadow):
        cma.join(0, ranks)
    rng = np.random.default_rng(0)
    marks = sorted({args.block, args.steps // 10, args.steps // 2, args.steps} - {0})
    rows, block, clock, n = [], [], 0, 0
    for step in range(1, args.steps + 1):
        peers = [shadow([], rng)[0] for _ in ranks[1:]]  # untimed
        t0 = time.perf_counter()
        own = worker([], rng)[0]
        results = [own, *peers]
        inds = [Individual(id=f"{r}-{step}", params=p, loss=float(np.sum((np.array(list(p.values())) - shift) ** 2)),
                           rank=r, end=float(clock + r)) for r, p in enumerate(results)]
        for ind in inds:
            worker.observe(ind)
        block.append(time.perf_counter() - t0)
        for ind in inds:  # untimed
            shadow.observe(ind)
        clock += len(ranks)
        n += len(inds)
        if step in marks:
            tail = block[-args.block:]
            rows.append((step, n, 1e6 * float(np.median(tail)), worker.population_size, worker.restarts))
        if len(block) > args.block:
            block = block[-args.block:]
    base = rows[0][2]
    lines = [f"CMA-ES step of one worker on an island of {args.workers}, {DIMS}-D (`python bench/cma_step.py`): one "
             f"ask and {args.workers} results taken in per step; median of the last {args.block} steps.", "",
             "| steps | results seen | µs per step | vs first | population | restarts |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {s:,} | {n:,} | {us:.1f} | {us / base:.2f}x | {pop} | {rs} |" for s, n, us, pop, rs in rows]
    worst = max(r[2] for r in rows)
    lines.append(f"\nslowest: {worst:.1f} µs per step (goal: < 200 µs, flat along the search)")
    write_report("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
