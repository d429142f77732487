"""Cost of one ask + tell of the pure core against the size of the island's archive.

    python bench/core.py [--rounds 7] [--block 100] [--propagator NAME] [--choices]

Fills an evolver's archive with N evaluated individuals (N = 10^2 ... 10^5), then times blocks of ask+tell
pairs at each size in turn, several rounds, and reports the fastest block per size (the one least disturbed
by other work on the machine). Goal: flat within 1.5x across the range (no O(n) work per step). The GA by
default; ``--propagator auto --choices`` times the default on a space of eight choices (the screened portfolio).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from evohpo import Choice, Evolver, Float, Individual, Int
from evohpo.core.strategies import make_propagator
from evohpo.testing.functions import get

SIZES = (100, 1_000, 10_000, 100_000)


def space() -> dict:
    """A mixed 6-D space: four floats (one log), an int and a choice."""
    s = dict(get("sphere", 4).space)
    s["lr"] = Float(1e-5, 1e-1, log=True)
    s["layers"] = Int(1, 8)
    s["act"] = ("relu", "tanh", "gelu", "silu")
    return s


def choices() -> dict:
    """Eight choices of 3 to 12 values (691,200 configurations), four of them ordered numbers."""
    return {"opt": Choice(["sgd", "adam", "rmsprop", "adamw"]), "lr": Choice([10.0 ** (-k / 2) for k in range(10)]),
            "width": Choice([2 ** k for k in range(4, 12)]), "act": Choice(["relu", "tanh", "gelu", "silu", "elu"]),
            "depth": Choice(list(range(1, 13))), "norm": Choice(["none", "batch", "layer"]),
            "dropout": Choice([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]), "aug": Choice(["none", "flip", "crop", "both", "mix",
                                                                             "auto"])}


def prefilled(n: int, seed: int, propagator: str | None = None, choice_space: bool = False) -> Evolver:
    sp = choices() if choice_space else space()
    prop = make_propagator(propagator, sp, 16) if propagator else None
    ev = Evolver(sp, prop, pop_size=16, seed=seed, name="bench")
    rng = np.random.default_rng(seed)
    for i in range(n):
        ev.add(Individual(id=f"peer-{i}", params=ev.space.sample(rng), loss=float(rng.random())))
    return ev


def time_block(ev: Evolver, n: int) -> float:
    """Microseconds per ask+tell over ``n`` pairs."""
    t0 = time.perf_counter()
    for _ in range(n):
        p = ev.ask()
        ev.tell(p, sum(v for v in p.values() if isinstance(v, (int, float))))
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="rounds; each times a block at every size in turn")
    ap.add_argument("--block", type=int, default=100, help="ask+tell pairs per block")
    ap.add_argument("--propagator", help="a strategy by name (default: the GA)")
    ap.add_argument("--choices", action="store_true", help="a space of eight choices instead of the mixed one")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "core.md")
    args = ap.parse_args()
    evolvers = {n: prefilled(n, seed=n, propagator=args.propagator, choice_space=args.choices) for n in SIZES}
    times: dict[int, list[float]] = {n: [] for n in SIZES}
    for _ in range(args.rounds):  # sizes interleaved, so a burst of load elsewhere hits all of them alike
        for n, ev in evolvers.items():
            times[n].append(time_block(ev, args.block))
    rows = [(n, min(ts)) for n, ts in times.items()]  # the least disturbed block of each size
    base = rows[0][1]
    lines = ["| archive size | µs per ask+tell (fastest block) | vs 10^2 |", "|---:|---:|---:|"]
    lines += [f"| {n:,} | {us:.1f} | {us / base:.2f}x |" for n, us in rows]
    worst = max(us for _, us in rows) / min(us for _, us in rows)
    lines.append(f"\nmax/min across sizes: {worst:.2f}x (goal: <= 1.5x)")
    what = f"{args.propagator or 'the GA'} on {'eight choices' if args.choices else 'the mixed 6-D space'}"
    table = f"{what}\n\n" + "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
