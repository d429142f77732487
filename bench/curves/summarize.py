"""Print landscape statistics of the learning-curve tables that matter for early stopping (used for README.md).

    .venv/bin/python bench/curves/summarize.py [name ...]          # one block per table
    .venv/bin/python bench/curves/summarize.py --markdown          # the README's summary tables

Per table: size, R, min / median / max of the mean final value, the best configuration, the best mean value at
a few early steps, Spearman's rank correlation over configurations between the mean value at step s and the mean
final value (how predictive an early step is), how many of the 10 best final configurations are in the top third
at step s (curve crossing: a low count means early stopping at s discards future winners), the seed noise (mean
over configurations of the per-seed standard deviation) at step 1 and at R, the share of configurations whose mean
curve ends more than 0.01 above its own minimum (they degrade late: overfitting or divergence), the share of bad
plateaus (final >= 0.85), and two budget-matched sanity baselines on single-run values (one stored seed per
configuration, ``single_run_curve``; regret = the incumbent's mean final - best):

- screen: train every configuration 1 step, continue the K = ceil(N / R) best to R; the incumbent is the lowest
  single-run final among them. Budget N + K (R - 1) steps.
- SH: successive halving with eta = 3 over all N configurations, rungs 1, 3, 9, ... and R (a configuration
  continued from rung r to r' pays r' - r steps); incumbent = the lowest single-run final at R.
- random: n = budget // R configurations drawn without replacement, each trained to R, same budget as each of the
  two above; incumbent = the lowest single-run final.

Medians (and means) over benchmark seeds 0..BENCH_SEEDS-1 (numpy default_rng(seed) for random search).
"""

from __future__ import annotations

import math
import os
import statistics
import sys

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench/
from curves.curves import CurveTable, load_curves, names  # noqa: E402

BENCH_SEEDS = 100
TOP = 10


def early_steps(t: CurveTable) -> list[int]:
    return [s for s in (1, 3, 9, 27) if s < t.max_steps]


class Arrays:
    """The table as arrays: mean[N, R], per-seed[N, S, R], in grid order."""

    def __init__(self, t: CurveTable) -> None:
        self.t = t
        self.params = t.configurations()
        self.per_seed = np.array([[t.curve(p, seed=s) for s in range(t.seeds)] for p in self.params])
        self.mean = self.per_seed.mean(axis=1)
        self.final = self.mean[:, -1]

    def single(self, bench_seed: int) -> np.ndarray:
        """[N, R]: each configuration's single-run curve for ``bench_seed``."""
        idx = [self.t.seed_index(p, bench_seed) for p in self.params]
        return self.per_seed[np.arange(len(idx)), idx]


def rank_corr(a: Arrays, step: int) -> float:
    return float(spearmanr(a.mean[:, step - 1], a.final).statistic)


def top_in(a: Arrays, step: int, frac: float) -> int:
    """How many of the TOP best final configurations (ties by grid order) are in the top ``frac`` at ``step``
    (fewer than frac * N configurations strictly better there)."""
    top = np.argsort(a.final, kind="stable")[:TOP]
    col = a.mean[:, step - 1]
    return int(sum((col < col[i]).sum() < frac * len(col) for i in top))


def best_rank(a: Arrays, step: int) -> int:
    """How many configurations are strictly better at ``step`` than the best final one (first in grid order)."""
    col = a.mean[:, step - 1]
    return int((col < col[int(np.argmin(a.final))]).sum())


def late_degradation(a: Arrays) -> float:
    """Share of configurations whose mean curve gets below 0.5 and ends more than 0.01 above its own minimum."""
    lo = a.mean.min(axis=1)
    return float(np.mean((lo < 0.5) & (a.final - lo > 0.01)))


def seed_noise(a: Arrays) -> tuple[np.ndarray, np.ndarray]:
    """Per step: mean and median over configurations of the per-configuration std over seeds."""
    sd = a.per_seed.std(axis=1)
    return sd.mean(axis=0), np.median(sd, axis=0)


def screen(a: Arrays, bench_seed: int) -> tuple[float, int]:
    """(regret, budget in steps) of: all configurations 1 step, the K best continued to R."""
    n, r = a.mean.shape
    k = math.ceil(n / r)
    sr = a.single(bench_seed)
    keep = np.argsort(sr[:, 0], kind="stable")[:k]
    inc = keep[np.argmin(sr[keep, -1])]
    return float(a.final[inc] - a.final.min()), n + k * (r - 1)


def rungs(r: int, eta: int = 3) -> list[int]:
    out, s = [], 1
    while s < r:
        out.append(s)
        s *= eta
    return out + [r]


def successive_halving(a: Arrays, bench_seed: int, eta: int = 3) -> tuple[float, int]:
    """(regret, budget in steps) of successive halving over all configurations, rungs 1, eta, eta^2, ..., R."""
    n, r = a.mean.shape
    sr = a.single(bench_seed)
    alive = np.arange(n)
    spent, prev = 0, 0
    for step in rungs(r, eta):
        spent += len(alive) * (step - prev)
        prev = step
        if step == r:
            break
        order = alive[np.argsort(sr[alive, step - 1], kind="stable")]
        alive = order[:max(1, len(alive) // eta)]
    inc = alive[np.argmin(sr[alive, -1])]
    return float(a.final[inc] - a.final.min()), spent


def random_search(a: Arrays, bench_seed: int, budget: int) -> float:
    n, r = a.mean.shape
    m = max(1, min(n, budget // r))
    pick = np.random.default_rng(bench_seed).choice(n, size=m, replace=False)
    sr = a.single(bench_seed)
    inc = pick[np.argmin(sr[pick, -1])]
    return float(a.final[inc] - a.final.min())


def baselines(a: Arrays) -> dict[str, tuple[float, float, int]]:
    """{method: (median regret, mean regret, budget in steps)}."""
    out = {}
    for label, fn in (("screen", screen), ("SH", successive_halving)):
        regs, rs = [], []
        budget = 0
        for b in range(BENCH_SEEDS):
            reg, budget = fn(a, b)
            regs.append(reg)
            rs.append(random_search(a, b, budget))
        out[label] = (statistics.median(regs), statistics.fmean(regs), budget)
        out[f"random@{label}"] = (statistics.median(rs), statistics.fmean(rs), budget)
    return out


def summarize(t: CurveTable) -> str:
    a = Arrays(t)
    steps = early_steps(t)
    noise, noise_med = seed_noise(a)
    secs = sum(t.train_seconds(p) or 0.0 for p in a.params) * t.max_steps * t.seeds
    base = baselines(a)
    lines = [
        f"## {t.name}",
        f"- size: {t.size} configurations x {t.seeds} seeds x R = {t.max_steps} steps ({t.meta.get('step', 'step')});"
        " levels: " + ", ".join(f"{k} {len(v)}" for k, v in t.levels.items()),
        f"- mean final: min {t.best:.4f}, median {t.median:.4f}, max {t.worst:.4f}; best: {t.best_params}",
        "- within 0.002 / 0.005 / 0.01 of the best final: "
        + " / ".join(str(int((a.final <= a.final.min() + e).sum())) for e in (0.002, 0.005, 0.01)),
        "- best mean at step: " + ", ".join(f"{s}: {t.best_at(s):.4f}" for s in [*steps, t.max_steps]),
        "- Spearman(step s, final): " + ", ".join(f"s={s}: {rank_corr(a, s):.3f}" for s in steps),
        f"- top-{TOP} final in the top third / ninth at step s: "
        + ", ".join(f"s={s}: {top_in(a, s, 1 / 3)} / {top_in(a, s, 1 / 9)}" for s in steps),
        "- configurations better than the best final one at step s: "
        + ", ".join(f"s={s}: {best_rank(a, s)}" for s in steps),
        f"- seed noise (mean / median per-configuration std): step 1 {noise[0]:.4f} / {noise_med[0]:.4f}, "
        f"final {noise[-1]:.4f} / {noise_med[-1]:.4f}",
        f"- late degradation (curve below 0.5, ends > 0.01 above its minimum): {late_degradation(a):.1%}; "
        f"final >= 0.85: {np.mean(a.final >= 0.85):.1%}",
        "- baselines (median / mean regret over benchmark seeds, budget in steps): "
        + "; ".join(f"{k} {v[0]:.4f} / {v[1]:.4f} ({v[2]})" for k, v in base.items()),
        f"- summed training time (train_seconds x R x seeds): {secs:.0f}s",
    ]
    return "\n".join(lines)


def markdown(tables: list[CurveTable]) -> str:
    """The README's two summary tables."""
    rows = ["| table | N | R | best final | median final | Spearman s=1 / 3 / 9 | "
            f"top-{TOP} in top third s=1 / 3 / 9 | top-{TOP} in top ninth s=1 / 3 / 9 | "
            "seed noise step 1 / final | late degradation | final >= 0.85 |",
            "|---" * 11 + "|"]
    base_rows = ["| table | screen (1 step, top ceil(N/R) to R) | random, same budget | SH eta=3 "
                 "| random, same budget |",
                 "|---|---|---|---|---|"]
    for t in tables:
        a = Arrays(t)
        noise, _ = seed_noise(a)
        rows.append(f"| {t.name} | {t.size} | {t.max_steps} | {t.best:.4f} | {t.median:.4f} | "
                    + " / ".join(f"{rank_corr(a, s):.2f}" for s in (1, 3, 9)) + " | "
                    + " / ".join(str(top_in(a, s, 1 / 3)) for s in (1, 3, 9)) + " | "
                    + " / ".join(str(top_in(a, s, 1 / 9)) for s in (1, 3, 9))
                    + f" | {noise[0]:.4f} / {noise[-1]:.4f} | {late_degradation(a):.0%} | "
                    f"{np.mean(a.final >= 0.85):.0%} |")
        b = baselines(a)
        base_rows.append(f"| {t.name} | " + " | ".join(
            f"{b[k][0]:.4f} / {b[k][1]:.4f} ({b[k][2]} steps)" for k in ("screen", "random@screen", "SH", "random@SH"))
            + " |")
    return "\n".join(rows) + "\n\nRegret, median / mean over benchmark seeds 0-" + str(BENCH_SEEDS - 1) \
        + " (single-run values):\n\n" + "\n".join(base_rows)


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--markdown" in args:
        args.remove("--markdown")
        print(markdown([load_curves(nm) for nm in args or names()]))
    else:
        for nm in args or names():
            print(summarize(load_curves(nm)))
            print()
