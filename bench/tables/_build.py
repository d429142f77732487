"""Shared helpers for the table builders: grid enumeration, resumable progress, JSON output.

Every table is the full product of its levels. Builders append one JSON line per finished
configuration to ``<out>.partial.jsonl`` so an interrupted run resumes where it stopped; when
every point of the grid is present the compact table JSON is written and the partial file removed.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any


def grid(space: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    names = list(space)
    for combo in itertools.product(*(space[n] for n in names)):
        yield dict(zip(names, combo))


def key(params: dict[str, Any], names: list[str]) -> str:
    return json.dumps([params[n] for n in names])


def read_partial(out: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """The finished rows of an interrupted build of ``out``, by ``key``; empty when there is none."""
    done: dict[str, dict[str, Any]] = {}
    partial = out + ".partial.jsonl"
    if os.path.exists(partial):
        with open(partial) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a kill
                    continue
                done[key(row["params"], names)] = row
    return done


def write_table(out: str, partial: str, name: str, description: str, space: dict[str, list[Any]], seeds: int,
                extra: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Write a finished table to ``out`` atomically (compact JSON), remove its ``partial`` file; return the table."""
    table = {
        "name": name,
        "description": description,
        "metric": "val_error",
        "space": space,
        "ordered": {n: all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)
                    for n, vals in space.items()},
        "seeds": seeds,
        **extra,
        "rows": rows,
    }
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(table, f, separators=(",", ":"))
    os.replace(tmp, out)
    os.remove(partial)
    return table


def build(
    *,
    name: str,
    description: str,
    space: dict[str, list[Any]],
    seeds: int,
    evaluate: Callable[[dict[str, Any], int], float],
    out: str,
    order: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    log_every: int = 25,
    seconds: Callable[[dict[str, Any]], float] | None = None,
) -> dict[str, Any]:
    """Evaluate every configuration of ``space`` with ``seeds`` seeds and write the table to ``out``.

    ``evaluate(params, seed) -> val_error``. ``order`` optionally permutes the grid (e.g. interleaved
    so that a partial run covers the space evenly); it must hold exactly the grid's points.
    ``seconds(params)`` optionally gives the per-seed training time (when evaluations are batched).
    """
    names = list(space)
    points = list(grid(space))
    if order is not None:
        if sorted(key(p, names) for p in order) != sorted(key(p, names) for p in points):
            raise ValueError("order must be a permutation of the grid")
        points = order
    partial = out + ".partial.jsonl"
    done = read_partial(out, names)
    if done:
        print(f"resuming: {len(done)}/{len(points)} configurations already done", flush=True)
    t_start = time.perf_counter()
    n_new = 0
    with open(partial, "a") as f:
        for params in points:
            k = key(params, names)
            if k in done:
                continue
            t0 = time.perf_counter()
            errs = [float(evaluate(params, s)) for s in range(seeds)]
            dt = time.perf_counter() - t0
            per_seed = seconds(params) if seconds else dt / seeds
            row = {"params": params, "val_error": [round(e, 6) for e in errs],
                   "mean": round(statistics.fmean(errs), 6), "train_seconds": round(per_seed, 4)}
            done[k] = row
            f.write(json.dumps(row) + "\n")
            f.flush()
            n_new += 1
            if n_new % log_every == 0 or len(done) == len(points):
                el = time.perf_counter() - t_start
                rate = el / n_new
                left = (len(points) - len(done)) * rate
                print(f"{len(done)}/{len(points)} done, {el:.0f}s elapsed, ~{left:.0f}s left "
                      f"(last: {params} -> {row['mean']:.4f})", flush=True)
    rows = [done[key(p, names)] for p in grid(space)]  # canonical grid order
    means = sorted(r["mean"] for r in rows)
    table = write_table(out, partial, name, description, space, seeds, extra or {}, rows)
    total = sum(r["train_seconds"] * seeds for r in rows)
    print(f"wrote {out}: {len(rows)} configurations x {seeds} seeds, {os.path.getsize(out)} bytes; "
          f"mean error min {means[0]:.4f} median {statistics.median(means):.4f} max {means[-1]:.4f}; "
          f"summed training time {total:.0f}s", flush=True)
    return table
