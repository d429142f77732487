"""Why the best observed accuracy favours searches with more complete trainings: run.py's search replayed.

    python bench/pruning_luck.py             # writes bench/results/pruning-luck.md (a few minutes on 2 cores)
    python bench/pruning_luck.py --seeds 4 --epochs 9 --per-worker 20

The CNN learning-curve table (``bench/curves``: 336 configurations of a CNN on digits, 3 real trainings each) cut
to ``--epochs`` epochs (each of a list: 5, 9, 15 and 27), searched as ``run.py`` does: 4 workers in ``evohpo.sim``
(durations uniform +-30%), each training reports its validation error after every epoch and scores the best epoch's.
Without pruning: ``--per-worker`` trainings per worker (10 and 20); with ASHA (the default rule): a step budget of a
third of those epochs. The grid shows where ASHA at a third of the epochs finds as good a best observed value as the
search without pruning: only with enough rungs (longer trainings) and enough trainings. Each search sees one
stored training per configuration (``single_run_curve``), as a real search sees one training of each.

Two scores per search: the best observed value (what ``bench/pruning_cnn.py`` reports for real trainings, the
minimum over every complete training's one noisy run) and the regret of the configuration it returns (its final
error averaged over the table's 3 trainings minus the table's best), which no single lucky run decides.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _common import write_report

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def search(pruner: str, seed: int, epochs: int, per_worker: int) -> dict:
    """One replayed search; its best observed error, the regret of what it returns, its epochs and trainings."""
    import evohpo
    from bench.curves.curves import load_curves
    from evohpo.sim import simulate
    from evohpo.sim.durations import Durations

    table = load_curves("cnn_digits_curves")

    def loss(params: dict) -> float:
        best = 1.0
        for step, value in enumerate(table.single_run_curve(params, seed)[:epochs], 1):
            best = min(best, value)
            evohpo.report(step, value)
        return best

    options: dict = {"progress_interval": 1e9, "max_steps": epochs}
    if pruner == "none":
        options.update(generations=per_worker, pruner="none")
    else:
        options.update(generations=None, step_budget=4 * per_worker * epochs // 3, pruner=pruner)
    kept: list = []
    simulate(4, durations=Durations("uniform", 1.0, 0.3), loss=loss, space=table.space, cpu=0.001, seed=seed,
             options=options, keep=lambda rank, result: kept.append(result) if rank == 0 else None)
    result = kept[0]
    return {"pruner": pruner, "seed": seed, "epochs": epochs, "per_worker": per_worker,
            "observed": result.best.loss, "steps": result.n_steps,
            "trainings": result.n_evaluations, "regret": table.regret(table.final(result.best.params))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--epochs", default="5,9,15,27", help="comma list: the most epochs per training (at most 27)")
    p.add_argument("--per-worker", default="10,20", help="comma list: trainings per worker without pruning")
    p.add_argument("--out", default=str(HERE / "results" / "pruning-luck.md"))
    args = p.parse_args()
    t0 = time.time()
    settings = [(int(e), int(w)) for e in args.epochs.split(",") for w in args.per_worker.split(",")]
    jobs = [(pr, s, e, w) for e, w in settings for pr in ("none", "asha") for s in range(args.seeds)]
    with ProcessPoolExecutor(2) as pool:
        runs = list(pool.map(search, *zip(*jobs)))
    lines = [f"# The best observed accuracy and the configuration returned, with and without pruning "
             f"({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"`{' '.join(['python bench/pruning_luck.py', *sys.argv[1:]])}`: run.py's search replayed on the CNN "
             f"curve table, 4 simulated workers, {args.seeds} seeds, {time.time() - t0:.0f} s. Validation error "
             "(1 - accuracy; the table's validation set has 540 images, one image = 0.00185); medians over the seeds "
             "(the mean too for the best observed error: its medians move in steps of one image). ASHA gets a third "
             "of the epochs the search without pruning trains.", "",
             "| epochs per training | trainings per worker (none) | pruner | epochs (median) | trainings | "
             "best observed error | mean | regret of the configuration returned |",
             "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for e, w in settings:
        for pruner in ("none", "asha"):
            rs = [r for r in runs if r["pruner"] == pruner and r["epochs"] == e and r["per_worker"] == w]
            lines.append(f"| {e} | {w} | {pruner} | {statistics.median(r['steps'] for r in rs):.0f} | "
                         f"{statistics.median(r['trainings'] for r in rs):.0f} | "
                         f"{statistics.median(r['observed'] for r in rs):.5f} | "
                         f"{statistics.mean(r['observed'] for r in rs):.5f} | "
                         f"{statistics.median(r['regret'] for r in rs):.5f} |")
    write_report("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
