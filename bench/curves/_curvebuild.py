"""Shared helpers for the learning-curve builders: resumable progress, compact JSON output.

(Named apart from bench/tables/_build.py, which make_cnn_digits.py imports as the top-level ``_build``.)

Like bench/tables/_build.py (whose grid/key/read_partial are reused), but a row stores, per seed, the
validation error after every step 1..R instead of one final value. Builders append one JSON line per
finished configuration to ``<out>.partial.jsonl``; an interrupted run resumes where it stopped, and the
table JSON is written (and the partial file removed) once every point of the grid is present.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench/
from tables._build import grid, key, read_partial, write_table  # noqa: E402

DIGITS = 5  # decimals kept per curve value (validation sets of 540-599 samples: errors step by ~0.0017)
DIVERGED = 0.9  # error of a training whose outputs are not finite, from that step on (chance level, 10 classes)

__all__ = ["DIGITS", "DIVERGED", "build_curves", "finish_curve", "grid", "key", "read_partial"]


def finish_curve(errors: list[float]) -> list[float]:
    """A curve as stored: rounded; a non-finite value, and every value after one, scores DIVERGED."""
    out: list[float] = []
    dead = False
    for e in errors:
        dead = dead or not math.isfinite(e)
        out.append(DIVERGED if dead else round(float(e), DIGITS))
    return out


def build_curves(
    *,
    name: str,
    description: str,
    space: dict[str, list[Any]],
    seeds: int,
    max_steps: int,
    evaluate: Callable[[dict[str, Any], int], tuple[list[float], float]],
    out: str,
    order: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    log_every: int = 25,
) -> dict[str, Any]:
    """Train every configuration of ``space`` with ``seeds`` seeds and write the curve table to ``out``.

    ``evaluate(params, seed) -> (curve, seconds)``: the validation error after each of the ``max_steps`` steps
    and the wall seconds that training took (a share of a batched training where trainings are batched).
    ``order`` optionally permutes the grid (e.g. group by group); it must hold exactly the grid's points.
    """
    names = list(space)
    points = list(grid(space))
    if order is not None:
        if sorted(key(p, names) for p in order) != sorted(key(p, names) for p in points):
            raise ValueError("order must be a permutation of the grid")
        points = order
    partial = out + ".partial.jsonl"
    done = read_partial(out, names)
    n_done = sum(key(p, names) in done for p in points)  # the partial file may hold rows of a larger grid
    if done:
        print(f"resuming: {n_done}/{len(points)} configurations already done", flush=True)
    t_start = time.perf_counter()
    n_new = 0
    with open(partial, "a") as f:
        for params in points:
            k = key(params, names)
            if k in done:
                continue
            curves, secs = [], []
            for s in range(seeds):
                c, dt = evaluate(params, s)
                if len(c) != max_steps:
                    raise ValueError(f"{params} seed {s}: curve of length {len(c)}, expected {max_steps}")
                curves.append(finish_curve(c))
                secs.append(dt)
            row = {"params": params, "curves": curves,
                   "train_seconds": round(statistics.fmean(secs) / max_steps, 5)}  # per step, mean over seeds
            done[k] = row
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
            f.flush()
            n_new += 1
            n_done += 1
            if n_new % log_every == 0 or n_done == len(points):
                el = time.perf_counter() - t_start
                left = (len(points) - n_done) * el / n_new
                final = statistics.fmean(c[-1] for c in curves)
                print(f"{n_done}/{len(points)} done, {el:.0f}s elapsed, ~{left:.0f}s left "
                      f"(last: {params} -> step 1 {statistics.fmean(c[0] for c in curves):.4f}, "
                      f"final {final:.4f})", flush=True)
    rows = [done[key(p, names)] for p in grid(space)]  # canonical grid order
    table = write_table(out, partial, name, description, space, seeds, {"max_steps": max_steps, **(extra or {})},
                        rows)
    finals = sorted(statistics.fmean(c[-1] for c in r["curves"]) for r in rows)
    total = sum(r["train_seconds"] * max_steps * seeds for r in rows)
    print(f"wrote {out}: {len(rows)} configurations x {seeds} seeds x {max_steps} steps, "
          f"{os.path.getsize(out)} bytes; final mean error min {finals[0]:.4f} median "
          f"{statistics.median(finals):.4f} max {finals[-1]:.4f}; summed training time {total:.0f}s", flush=True)
    return table
