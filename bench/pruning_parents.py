"""Which trainings may be parents when some were pruned: an ablation on the learning-curve tables.

    python bench/pruning_parents.py            # writes bench/results/pruning-parents.md
    python bench/pruning_parents.py --quick

evohpo ranks the breeding pool with complete trainings first, then pruned ones by the step they reached, then
by value (``core.population.rank_key``): "by fidelity". The alternative, "complete only", breeds from trainings
that ran to their end and nothing else (until enough exist, the GA's children come from a smaller pool). Both
run the same search (one worker in-process, ASHA, the default strategy and the GA) at the same step budget on
every table of ``bench/curves``, 10 seeds; the score is the regret of the best complete training (its table mean
at the last step minus the table's best).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import evohpo  # noqa: E402
from bench.curves.curves import load_curves, names  # noqa: E402
from evohpo.core.individual import Individual  # noqa: E402


def run(table, seed: int, budget: int, propagator: str, rule: str) -> float:
    R = table.max_steps

    def loss(params: dict) -> float:
        curve = table.single_run_curve(params, seed)
        for step in range(1, R + 1):
            evohpo.report(step, curve[step - 1])
        return curve[-1]

    patch = mock.patch.object(Individual, "breeds", property(lambda self: self.ok)) if rule == "complete only" \
        else mock.patch.object(Individual, "breeds", Individual.breeds)
    with patch:
        r = evohpo.optimize(loss, table.space, max_steps=R, step_budget=budget, seed=seed, propagator=propagator,
                            progress_interval=1e9)
    return table.regret(table.final(r.best.params)) if r.best is not None else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=float, default=20.0, help="step budget in units of max_steps")
    p.add_argument("--out", default=str(HERE / "results" / "pruning-parents.md"))
    args = p.parse_args()
    seeds = 2 if args.quick else args.seeds
    import logging

    logging.getLogger("evohpo").setLevel(logging.WARNING)
    rules = ("by fidelity", "complete only")
    rows, raw = [], {}
    for name in names()[: 1 if args.quick else None]:
        table = load_curves(name)
        budget = int(args.budget * table.max_steps)
        for propagator in ("ga+cmaes", "ga"):
            meds = []
            for rule in rules:
                regrets = [run(table, s, budget, propagator, rule) for s in range(seeds)]
                raw[f"{name}/{propagator}/{rule}"] = regrets
                meds.append(statistics.median(regrets))
            rows.append((name, propagator, budget, *meds))
            print(rows[-1], flush=True)
    lines = [f"# Parents when trainings are pruned ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"One worker in-process, ASHA (eta 3, min_reports 6), step budget {args.budget:g} x max_steps, "
             f"seeds 0-{seeds - 1}; median regret of the best complete training (lower is better). "
             "`python bench/pruning_parents.py`.", "",
             "| table | strategy | step budget | by fidelity (evohpo) | complete only |", "|---|---|---:|---:|---:|"]
    wins = 0
    for name, prop, budget, a, b in rows:
        lines.append(f"| {name} | {prop} | {budget:,} | {a:.4f} | {b:.4f} |")
        wins += (a < b) - (a > b)
    lines += ["", f"By fidelity better minus worse: {wins:+d} of {len(rows)} rows."]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
